"""Atomiton compatibility of `shell-command` and `image`: parameters, validation, blend modes."""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from conductor.model.loader import load_blueprint_file
from conductor.validation import find_warnings, validate
from nodes.base import NodeContext, NodeEnvironment
from nodes.blending import PORTER_DUFF, SEPARABLE, composite
from nodes.errors import NodeError
from nodes.image import ImageNode, ImageParameters
from nodes.registry import NodeRegistry
from nodes.shell_command import ShellCommandNode, ShellCommandParameters
from tests.conftest import ATOMITON_FLOWS
from tests.unit.blueprints import blueprint, node

# Section 9: operation's enum and blendMode's enum, as Atomiton's schema lists them.
ATOMITON_OPERATIONS = ["overlay", "merge", "composite", "blend"]
ATOMITON_BLEND_MODES = [
    "clear", "source", "over", "in", "out", "atop", "dest", "dest-over", "dest-in", "dest-out",
    "dest-atop", "xor", "add", "saturate", "multiply", "screen", "overlay", "darken", "lighten",
    "color-dodge", "color-burn", "hard-light", "soft-light", "difference", "exclusion",
]  # fmt: skip


def error_fields(model: type[Any], parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The locations of the validation errors of `parameters`."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(parameters)
    return [error["loc"] for error in caught.value.errors()]


def shell(**parameters: Any) -> ShellCommandParameters:
    return ShellCommandParameters.model_validate(parameters)


def run_shell(root: Path, **parameters: Any) -> dict[str, Any]:
    """Run `shell-command` directly (the e2e suite covers the worker)."""
    context = NodeContext(
        execution_id="exec-1",
        node_id="shell",
        inputs={},
        deadline=time.monotonic() + 10,
        environment=NodeEnvironment(files_root=root, allow_shell=True),
    )
    return dict(ShellCommandNode().run(shell(**parameters), context))


# --- shell-command: parameters ----------------------------------------------------------------


def test_program_and_args_are_passed_as_they_are() -> None:
    assert shell(program="echo", args=["a b", "$HOME"]).argv() == ["echo", "a b", "$HOME"]
    assert shell(program="/opt/my tools/run").argv() == ["/opt/my tools/run"]  # not split
    assert shell(command="echo 'a b'", args=["c"]).argv() == ["echo", "a b", "c"]


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"program": ""},  # Atomiton's definition default fails its validation too
        {"program": "echo", "command": "echo"},
        {"program": 5},
    ],
)
def test_a_missing_or_bad_program_is_an_error_naming_program(parameters: dict[str, Any]) -> None:
    assert error_fields(ShellCommandParameters, parameters) == [("program",)]


def test_args_accept_json_text_of_an_array_of_strings() -> None:
    assert shell(program="echo", args='["a", "b c"]').args == ["a", "b c"]
    assert shell(program="echo", args="[]").args == []


@pytest.mark.parametrize("args", ['{"a": "b"}', "not json", '"a"', 7, {"a": "b"}, [["a"]]])
def test_args_of_another_shape_are_an_error_naming_args(args: Any) -> None:
    assert error_fields(ShellCommandParameters, {"program": "echo", "args": args})[0][0] == "args"


def test_atomitons_defaults() -> None:
    params = shell(program="echo")
    assert (params.args, params.stdin, params.captureOutput, params.timeout) == (
        [],
        None,
        True,
        30000,
    )


def test_non_zero_exits_are_returned_with_program_and_raised_with_command() -> None:
    assert shell(program="echo").throws() is False  # Atomiton: returned in the output
    assert shell(command="echo").throws() is True  # Conductor's own form keeps failing loudly
    assert shell(program="echo", throwOnError=True).throws() is True
    assert shell(command="echo", throwOnError=False).throws() is False


def test_every_atomiton_parameter_and_input_key_is_known() -> None:
    names = ShellCommandNode.parameter_names()
    assert {"program", "args", "stdin", "captureOutput", "timeout"} <= names
    assert {"workingDirectory", "environment"} <= names  # read from the input in Atomiton


def test_the_schema_says_program_or_command_is_required() -> None:
    schema = ShellCommandNode.json_schema()
    assert schema["oneOf"] == [{"required": ["program"]}, {"required": ["command"]}]
    assert {"program", "args", "command", "workingDirectory", "cwd"} <= set(schema["properties"])


def test_atomitons_definition_defaults_bring_no_warning(registry: NodeRegistry) -> None:
    defaults = {"enabled": True, "timeout": 30000, "retries": 1, "args": [], "captureOutput": True}
    plan = blueprint([node("run", "shell-command", program="echo", **defaults)])
    assert validate(plan, registry) == []
    assert find_warnings(plan, registry) == []


def test_program_must_be_literal(registry: NodeRegistry) -> None:
    plan = blueprint([node("run", "shell-command", program="{{$input.tool}}", args=["x"])])
    problems = validate(plan, registry)
    assert [problem.path for problem in problems] == ["nodes[0].parameters.program"]
    assert "literal" in problems[0].message
    args_from_input = [node("run", "shell-command", program="echo", args="{{$input.args}}")]
    assert validate(blueprint(args_from_input), registry) == []


def test_a_program_that_is_not_found_fails_without_retry(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="not found on the worker's PATH") as caught:
        run_shell(tmp_path, program="no-such-program-here")
    assert caught.value.retryable is False
    with pytest.raises(NodeError, match=r"'\./missing\.sh' not found"):
        run_shell(tmp_path, program="./missing.sh")


def test_a_relative_program_runs_from_the_working_directory(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "hello.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho hello from $0\n")
    script.chmod(0o755)
    output = run_shell(tmp_path, program="./hello.sh", workingDirectory="bin")
    assert output["stdout"] == "hello from ./hello.sh\n"


def test_loader_variables_are_dropped_from_env_too(tmp_path: Path) -> None:
    env = {"LD_LIBRARY_PATH": "/tmp", "DYLD_INSERT_LIBRARIES": "x", "KEPT": "1"}
    lines = run_shell(tmp_path, program="env", env=env)["stdout"].splitlines()
    assert "KEPT=1" in lines
    assert not [line for line in lines if line.startswith(("LD_", "DYLD_"))]


def test_throw_on_error_with_program_fails_the_node(tmp_path: Path) -> None:
    with pytest.raises(NodeError, match="exited with code 3"):
        run_shell(tmp_path, program="sh", args=["-c", "exit 3"], throwOnError=True)


# --- image: parameters ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [*ATOMITON_BLEND_MODES, "normal"])
def test_every_atomiton_blend_mode_is_accepted(mode: str) -> None:
    assert ImageParameters.model_validate({"blendMode": mode}).blendMode == mode


def test_atomitons_operations_and_defaults() -> None:
    for operation in ATOMITON_OPERATIONS:
        assert ImageParameters.model_validate({"operation": operation}).operation == operation
    params = ImageParameters()
    assert (params.operation, params.quality, params.position, params.opacity) == (
        "overlay", 90, "center", 1.0,
    )  # fmt: skip
    assert (params.blendMode, params.fit, params.width, params.height) == ("over", None, None, None)
    assert (params.blur, params.sharpen, params.grayscale) == (None, False, False)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"operation": "explode"}, "operation"),
        ({"images": "a.png"}, "images"),  # no JSON-string form, as in Atomiton
        ({"images": '["a.png"]'}, "images"),
        ({"images": [1]}, "images"),
        ({"output": 5}, "output"),
        ({"width": 0}, "width"),
        ({"width": 800.5}, "width"),  # Sharp needs integers
        ({"height": -1}, "height"),
        ({"format": "tiff"}, "format"),
        ({"quality": 0}, "quality"),
        ({"quality": 101}, "quality"),
        ({"quality": 85.5}, "quality"),
        ({"fit": "stretch"}, "fit"),
        ({"position": "middle"}, "position"),
        ({"blendMode": "burn"}, "blendMode"),
        ({"opacity": 1.5}, "opacity"),
        ({"opacity": -0.1}, "opacity"),
        ({"blur": 100.5}, "blur"),
        ({"blur": -1}, "blur"),
        ({"sharpen": "maybe"}, "sharpen"),
        ({"grayscale": [True]}, "grayscale"),
    ],
)
def test_image_parameters_out_of_range_name_their_field(
    parameters: dict[str, Any], field: str
) -> None:
    assert error_fields(ImageParameters, parameters)[0][0] == field


def test_whole_numbers_written_as_floats_are_accepted() -> None:
    params = ImageParameters.model_validate({"width": 800.0, "height": 600.0, "quality": 85.0})
    assert (params.width, params.height, params.quality) == (800, 600, 85)


def test_image_references_may_be_mappings_with_path_and_empty() -> None:
    images = [None, "", {"path": "a.png", "size": 3}, "b.png"]
    assert ImageParameters.model_validate({"images": images}).images == images


def test_an_empty_output_means_the_default_file() -> None:
    assert ImageParameters.model_validate({"output": ""}).outputPath is None
    assert ImageParameters.model_validate({"output": "x/y.png"}).outputPath == "x/y.png"


def test_atomitons_image_definition_defaults_bring_no_warning(registry: NodeRegistry) -> None:
    defaults = {
        "enabled": True, "timeout": 30000, "retries": 1, "operation": "overlay", "quality": 90,
        "position": "center", "opacity": 1, "blendMode": "normal", "outputFormat": "png",
        "backgroundColor": "#ffffff", "maintainAspectRatio": True, "padding": 0,
    }  # fmt: skip
    plan = blueprint([node("img", "image", **defaults)])
    assert validate(plan, registry) == []  # blendMode "normal" fails Atomiton's own validation
    assert find_warnings(plan, registry) == []


def test_the_image_processor_flows_image_nodes_validate_without_warnings(
    registry: NodeRegistry,
) -> None:
    flow = load_blueprint_file(ATOMITON_FLOWS / "image-processor.flow.yaml")
    assert validate(flow, registry) == []
    image_paths = [f"nodes[{i}]" for i, n in enumerate(flow.nodes) if n.type == "image"]
    assert len(image_paths) == 2
    warnings = [w for w in find_warnings(flow, registry) if w.path.startswith(tuple(image_paths))]
    assert warnings == []


def test_image_input_keys_are_known() -> None:
    names = ImageNode.parameter_names()
    assert {"operation", "images", "output", "width", "height", "format", "quality"} <= names
    assert {"fit", "position", "blendMode", "opacity", "blur", "sharpen", "grayscale"} <= names


def run_image(root: Path, inputs: dict[str, Any] | None = None, **parameters: Any) -> Any:
    """Run `image` directly on the files root `root`."""
    context = NodeContext(
        execution_id="exec-1",
        node_id="image",
        inputs=inputs or {},
        deadline=time.monotonic() + 10,
        environment=NodeEnvironment(files_root=root),
    )
    return ImageNode().run(ImageParameters.model_validate(parameters), context)


def test_merge_needs_two_images_and_overlay_an_overlay(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4), "red").save(tmp_path / "a.png")
    with pytest.raises(NodeError, match="'merge' needs at least 2 images in `images`"):
        run_image(tmp_path, operation="merge", images=["a.png", None, ""])
    with pytest.raises(NodeError, match="'overlay' needs an overlay image"):
        run_image(tmp_path, inputs={"baseImage": "a.png"})  # the default operation
    with pytest.raises(NodeError, match="no input image"):
        run_image(tmp_path, operation="composite", images=[None, {"size": 1}])


def test_merge_takes_its_base_from_images_not_from_base_image(tmp_path: Path) -> None:
    Image.new("RGB", (8, 8), "red").save(tmp_path / "a.png")
    Image.new("RGB", (2, 2), "blue").save(tmp_path / "b.png")
    Image.new("RGB", (30, 30), "white").save(tmp_path / "other.png")
    inputs = {"baseImage": "other.png"}
    output = run_image(
        tmp_path, inputs, operation="merge", images=["a.png", "b.png"], output="m.png"
    )
    assert (output["width"], output["height"]) == (8, 8)


# --- image: blend modes -----------------------------------------------------------------------


def _soft_d(b: float) -> float:
    return ((16 * b - 12) * b + 4) * b if b <= 0.25 else math.sqrt(b)


SEPARABLE_REFERENCE: dict[str, Callable[[float, float], float]] = {
    "multiply": lambda a, b: a * b,
    "screen": lambda a, b: a + b - a * b,
    "overlay": lambda a, b: 2 * a * b if b <= 0.5 else 1 - 2 * (1 - a) * (1 - b),
    "darken": min,
    "lighten": max,
    "color-dodge": lambda a, b: min(1.0, b / (1 - a)) if a < 1 else 1.0,
    "color-burn": lambda a, b: 1 - min(1.0, (1 - b) / a) if a > 0 else 0.0,
    "hard-light": lambda a, b: 2 * a * b if a <= 0.5 else 1 - 2 * (1 - a) * (1 - b),
    "soft-light": lambda a, b: (
        b - (1 - 2 * a) * b * (1 - b) if a <= 0.5 else b + (2 * a - 1) * (_soft_d(b) - b)
    ),
    "difference": lambda a, b: abs(a - b),
    "exclusion": lambda a, b: a + b - 2 * a * b,
}


def _porter_duff_factors(mode: str, aa: float, ab: float) -> tuple[float, float]:
    saturate = min(1.0, (1 - ab) / aa) if aa else 1.0
    return {
        "clear": (0, 0), "source": (1, 0), "over": (1, 1 - aa), "normal": (1, 1 - aa),
        "in": (ab, 0), "out": (1 - ab, 0), "atop": (ab, 1 - aa), "dest": (0, 1),
        "dest-over": (1 - ab, 1), "dest-in": (0, aa), "dest-out": (0, 1 - aa),
        "dest-atop": (1 - ab, aa), "xor": (1 - ab, 1 - aa), "add": (1, 1), "saturate": (saturate, 1),
    }[mode]  # fmt: skip


def reference_pixel(mode: str, top: tuple[int, ...], below: tuple[int, ...]) -> tuple[int, ...]:
    """Cairo's definition of `mode`, one pixel, in plain floats."""
    a, b = [c / 255 for c in top[:3]], [c / 255 for c in below[:3]]
    aa, ab = top[3] / 255, below[3] / 255
    if mode in SEPARABLE_REFERENCE:
        alpha = aa + ab - aa * ab
        f = SEPARABLE_REFERENCE[mode]
        colours = [
            (1 - ab) * x * aa + (1 - aa) * y * ab + aa * ab * f(x, y)
            for x, y in zip(a, b, strict=True)
        ]
    else:
        fa, fb = _porter_duff_factors(mode, aa, ab)
        alpha = min(1.0, fa * aa + fb * ab)
        colours = [fa * x * aa + fb * y * ab for x, y in zip(a, b, strict=True)]
    if alpha == 0:
        return (0, 0, 0, 0)
    rgb = [max(0, min(255, math.floor(255 * c / alpha + 0.5))) for c in colours]
    return (*rgb, math.floor(alpha * 255 + 0.5))


def test_the_blend_table_covers_atomitons_modes_exactly() -> None:
    assert set(PORTER_DUFF) | set(SEPARABLE) == {*ATOMITON_BLEND_MODES, "normal"}


@pytest.mark.parametrize("mode", ATOMITON_BLEND_MODES)
def test_each_blend_mode_follows_its_definition(mode: str) -> None:
    rng = random.Random(mode)
    alphas = [0, 1, 64, 128, 200, 255]
    pairs = [
        (
            (*(rng.randrange(256) for _ in range(3)), rng.choice(alphas)),
            (*(rng.randrange(256) for _ in range(3)), rng.choice(alphas)),
        )
        for _ in range(300)
    ] + [((0, 0, 0, 255), (255, 255, 255, 255)), ((255, 255, 255, 255), (0, 0, 0, 255))]
    top, below = Image.new("RGBA", (len(pairs), 1)), Image.new("RGBA", (len(pairs), 1))
    for index, (upper, lower) in enumerate(pairs):
        top.putpixel((index, 0), upper)
        below.putpixel((index, 0), lower)
    result = composite(below, top, mode)
    for index, (upper, lower) in enumerate(pairs):
        got = result.getpixel((index, 0))
        assert isinstance(got, tuple)
        expected = reference_pixel(mode, upper, lower)
        if expected[3] == 0:  # no colour where nothing is left
            got, expected = got[3:], expected[3:]
        assert all(abs(g - e) <= 1 for g, e in zip(got, expected, strict=True)), (
            mode, upper, lower, got, expected,
        )  # fmt: skip
