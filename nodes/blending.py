"""Blend modes of image compositing: the Porter-Duff operators and the PDF separable blend
modes, with Cairo's definitions (the ones libvips, and so Atomiton's Sharp, names).

Every pixel is blended in floating point with premultiplied alpha (Pillow's ImageMath, no
numpy). `a`/`aA` are the layer laid on top, `b`/`aB` the image below.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

from PIL import Image, ImageMath

BlendMode = Literal[
    "clear", "source", "over", "in", "out", "atop", "dest", "dest-over", "dest-in", "dest-out",
    "dest-atop", "xor", "add", "saturate", "multiply", "screen", "overlay", "darken", "lighten",
    "color-dodge", "color-burn", "hard-light", "soft-light", "difference", "exclusion", "normal",
]  # fmt: skip

EPSILON = 1e-6  # stands in for 0 in a divisor; the result is then masked or multiplied by 0
Operand = Any  # PIL.ImageMath's operand: an image that supports arithmetic
Ops = dict[str, Any]  # ImageMath's names: the images and the functions min and max
Factors = Callable[[Ops, Operand, Operand], tuple[Operand, Operand]]

# Porter-Duff: result = Fa * layer + Fb * below (premultiplied), each factor from the alphas.
PORTER_DUFF: dict[str, Factors] = {
    "clear": lambda ops, aA, aB: (0.0, 0.0),
    "source": lambda ops, aA, aB: (1.0, 0.0),
    "over": lambda ops, aA, aB: (1.0, 1 - aA),
    "normal": lambda ops, aA, aB: (1.0, 1 - aA),  # Atomiton's editor name for over
    "in": lambda ops, aA, aB: (aB, 0.0),
    "out": lambda ops, aA, aB: (1 - aB, 0.0),
    "atop": lambda ops, aA, aB: (aB, 1 - aA),
    "dest": lambda ops, aA, aB: (0.0, 1.0),
    "dest-over": lambda ops, aA, aB: (1 - aB, 1.0),
    "dest-in": lambda ops, aA, aB: (0.0, aA),
    "dest-out": lambda ops, aA, aB: (0.0, 1 - aA),
    "dest-atop": lambda ops, aA, aB: (1 - aB, aA),
    "xor": lambda ops, aA, aB: (1 - aB, 1 - aA),
    "add": lambda ops, aA, aB: (1.0, 1.0),
    "saturate": lambda ops, aA, aB: (ops["min"]((1 - aB) / ops["max"](aA, EPSILON), 1.0), 1.0),
}


def _choose(condition: Operand, yes: Operand, no: Operand) -> Operand:
    return condition * yes + (1 - condition) * no


def _hard_light(ops: Ops, a: Operand, b: Operand) -> Operand:
    return _choose(a <= 0.5, 2 * a * b, 1 - 2 * (1 - a) * (1 - b))


def _soft_light(ops: Ops, a: Operand, b: Operand) -> Operand:
    darker = b - (1 - 2 * a) * b * (1 - b)
    return _choose(a <= 0.5, darker, b + (2 * a - 1) * (ops["soft_d"] - b))


def _dodge(ops: Ops, a: Operand, b: Operand) -> Operand:
    return _choose(a < 1, ops["min"](b / ops["max"](1 - a, EPSILON), 1.0), 1.0)


def _burn(ops: Ops, a: Operand, b: Operand) -> Operand:
    return _choose(a > 0, 1 - ops["min"]((1 - b) / ops["max"](a, EPSILON), 1.0), 0.0)


# Separable blend functions f(a, b) of the unpremultiplied colours.
SEPARABLE: dict[str, Callable[[Ops, Operand, Operand], Operand]] = {
    "multiply": lambda ops, a, b: a * b,
    "screen": lambda ops, a, b: a + b - a * b,
    "overlay": lambda ops, a, b: _hard_light(ops, b, a),  # hard-light with the roles swapped
    "darken": lambda ops, a, b: ops["min"](a, b),
    "lighten": lambda ops, a, b: ops["max"](a, b),
    "color-dodge": _dodge,
    "color-burn": _burn,
    "hard-light": _hard_light,
    "soft-light": _soft_light,
    "difference": lambda ops, a, b: abs(a - b),
    "exclusion": lambda ops, a, b: a + b - 2 * a * b,
}

# Soft light's D(b), as a table over 8-bit values: it needs a square root, which ImageMath lacks.
_SOFT_D = [
    round(255 * (((16 * v - 12) * v + 4) * v if v <= 0.25 else math.sqrt(v)))
    for v in (i / 255 for i in range(256))
]


def composite(below: Image.Image, layer: Image.Image, mode: str) -> Image.Image:
    """`layer` blended onto `below` (both RGBA, the same size) with blend mode `mode`."""
    if mode in ("over", "normal"):
        return Image.alpha_composite(below, layer)  # the same operator, natively
    alpha_a = layer.getchannel("A").convert("F")
    alpha_b = below.getchannel("A").convert("F")
    alphas = {"aA": alpha_a, "aB": alpha_b, "aR": _alpha(mode, alpha_a, alpha_b)}
    colours = [
        _band(mode, layer.getchannel(name), below.getchannel(name), alphas) for name in "RGB"
    ]
    return Image.merge("RGBA", [*colours, _to_8bit(alphas["aR"])])


def _alpha(mode: str, alpha_a: Image.Image, alpha_b: Image.Image) -> Image.Image:
    """The result's alpha, 0 to 1."""

    def compute(ops: Ops) -> Operand:
        aA, aB = ops["aA"] / 255, ops["aB"] / 255
        if mode not in PORTER_DUFF:
            return aA + aB - aA * aB
        fa, fb = PORTER_DUFF[mode](ops, aA, aB)
        return ops["min"](fa * aA + fb * aB, 1.0)

    return _evaluate(compute, aA=alpha_a, aB=alpha_b)


def _band(
    mode: str, colour_a: Image.Image, colour_b: Image.Image, alphas: dict[str, Image.Image]
) -> Image.Image:
    """One colour band of the result, unpremultiplied, 8-bit; `alphas` holds the layer's
    (aA), the image below's (aB) and the result's (aR)."""

    def compute(ops: Ops) -> Operand:
        a, b = ops["a"] / 255, ops["b"] / 255
        aA, aB = ops["aA"] / 255, ops["aB"] / 255
        if mode in PORTER_DUFF:
            fa, fb = PORTER_DUFF[mode](ops, aA, aB)
            premultiplied = fa * a * aA + fb * b * aB
        else:
            blended = SEPARABLE[mode]({**ops, "soft_d": ops["soft_d"] / 255}, a, b)
            premultiplied = (1 - aB) * a * aA + (1 - aA) * b * aB + aA * aB * blended
        return 255 * premultiplied / ops["max"](ops["aR"], EPSILON) + 0.5

    soft_d = colour_b.point(_SOFT_D).convert("F")
    images = {"a": colour_a.convert("F"), "b": colour_b.convert("F")}
    images |= alphas
    return _evaluate(compute, soft_d=soft_d, **images).convert("L")  # clips to 0..255


def _to_8bit(unit: Image.Image) -> Image.Image:
    return _evaluate(lambda ops: ops["x"] * 255 + 0.5, x=unit).convert("L")


def _evaluate(expression: Callable[[Ops], Operand], **images: Image.Image) -> Image.Image:
    result = ImageMath.lambda_eval(expression, **images)
    assert isinstance(result, Image.Image)
    return result
