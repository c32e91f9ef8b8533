"""What `image` does to the pixels: resize and crop, overlays blended on the base, filters,
and the pixel limit every result is held to (Pillow)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PIL import Image, ImageFilter, ImageOps

from nodes.blending import composite
from nodes.errors import NodeError

if TYPE_CHECKING:
    from nodes.image import ImageParameters

# Pillow's own default: about 0.25 GiB for a 24-bit image. Larger inputs are refused as
# decompression bombs, and no operation may produce a larger image.
MAX_PIXELS = 89_478_485
MAX_SIDE = 65_535
# Where `position` puts things, as fractions of the free space (x, y).
ANCHORS: dict[str, tuple[float, float]] = {
    "center": (0.5, 0.5), "top": (0.5, 0.0), "bottom": (0.5, 1.0), "left": (0.0, 0.5),
    "right": (1.0, 0.5), "top-left": (0.0, 0.0), "top-right": (1.0, 0.0),
    "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0),
}  # fmt: skip


def check_pixels(width: int, height: int, what: str) -> None:
    """Refuse an image (`what` names it) of more than MAX_PIXELS pixels."""
    if width * height > MAX_PIXELS:
        raise NodeError(
            f"image {what!r} has {width}x{height} pixels, over the limit of {MAX_PIXELS} "
            "(a decompression bomb?)",
            retryable=False,
        )


def blur_filter(image: Image.Image, params: ImageParameters) -> Image.Image:
    """The `blur` operation: `blur` (Atomiton's) or `radius` as the Gaussian radius."""
    radius = params.blur if params.blur is not None else params.radius
    return image.filter(ImageFilter.GaussianBlur(radius))


FILTERS: dict[str, Callable[[Image.Image, ImageParameters], Image.Image]] = {
    "blur": blur_filter,
    "sharpen": lambda image, _: image.filter(ImageFilter.SHARPEN),
    "grayscale": lambda image, _: grayscale(image),
    "convert": lambda image, _: image,  # only the output format changes
}


def finish(image: Image.Image, params: ImageParameters) -> Image.Image:
    """Atomiton's filters, after the operation (each at most once)."""
    if params.blur and params.operation != "blur":
        image = image.filter(ImageFilter.GaussianBlur(params.blur))
    if params.sharpen and params.operation != "sharpen":
        image = image.filter(ImageFilter.SHARPEN)
    if params.grayscale and params.operation != "grayscale":
        image = grayscale(image)
    return image


def resize(image: Image.Image, params: ImageParameters) -> Image.Image:
    width, height = params.width, params.height
    if width is None or height is None:  # one side given: keep the aspect ratio
        ratio = width / image.width if width else (height or image.height) / image.height
        size = (max(1, round(image.width * ratio)), max(1, round(image.height * ratio)))
        check_pixels(*size, "resized")
        return image.resize(size, Image.Resampling.LANCZOS)
    check_pixels(width, height, "resized")
    fit = params.fit or _default_fit(params)
    centering = ANCHORS[params.position]
    if fit == "fill":
        return image.resize((width, height), Image.Resampling.LANCZOS)
    if fit == "inside":
        return ImageOps.contain(image, (width, height), Image.Resampling.LANCZOS)
    if fit == "cover":
        return ImageOps.fit(image, (width, height), Image.Resampling.LANCZOS, centering=centering)
    if fit == "contain":
        return ImageOps.pad(
            image.convert("RGBA"), (width, height), Image.Resampling.LANCZOS, (0, 0, 0, 0),
            centering,
        )  # fmt: skip
    ratio = max(width / image.width, height / image.height)  # outside
    size = (max(width, round(image.width * ratio)), max(height, round(image.height * ratio)))
    check_pixels(*size, "resized")
    return image.resize(size, Image.Resampling.LANCZOS)


def _default_fit(params: ImageParameters) -> str:
    """Atomiton's cover; Conductor's own resize operation follows maintainAspectRatio."""
    if params.operation != "resize":
        return "cover"
    return "inside" if params.maintainAspectRatio else "fill"


def crop(image: Image.Image, params: ImageParameters) -> Image.Image:
    left, top = params.x or 0, params.y or 0
    width = params.width or image.width - left
    height = params.height or image.height - top
    if width <= 0 or height <= 0 or left + width > image.width or top + height > image.height:
        raise NodeError(
            f"crop box x={left} y={top} {width}x{height} is not inside the "
            f"{image.width}x{image.height} image",
            retryable=False,
        )
    return image.crop((left, top, left + width, top + height))


def overlay(base: Image.Image, overlay: Image.Image, params: ImageParameters) -> Image.Image:
    """`overlay` on `base` at `position` (or x/y), scaled, faded by `opacity`, blended."""
    layer = overlay.convert("RGBA")
    if params.scale is not None:
        width = max(1, round(base.width * params.scale))
        height = max(1, round(layer.height * width / layer.width))
        check_pixels(width, height, "scaled overlay")
        layer = layer.resize((width, height), Image.Resampling.LANCZOS)
    if params.opacity < 1:
        layer.putalpha(layer.getchannel("A").point(lambda value: round(value * params.opacity)))
    # The layer covers the whole base, transparent around the overlay: Porter-Duff modes such
    # as `in` or `clear` act on every pixel, as in Sharp. Overflow is clipped.
    full = Image.new("RGBA", base.size, (0, 0, 0, 0))
    full.paste(layer, place(base.size, layer.size, params))
    blended = composite(base.convert("RGBA"), full, params.blendMode)
    if "A" in base.getbands() or blended.getchannel("A").getextrema() != (255, 255):
        return blended
    return blended.convert(base.mode)


def place(
    base: tuple[int, int], layer: tuple[int, int], params: ImageParameters
) -> tuple[int, int]:
    """Top-left corner of the overlay: x/y when given, else `position` inset by `margin`."""
    fx, fy = ANCHORS[params.position]
    free_x = base[0] - layer[0] - 2 * params.margin
    free_y = base[1] - layer[1] - 2 * params.margin
    left = params.x if params.x is not None else params.margin + round(fx * free_x)
    top = params.y if params.y is not None else params.margin + round(fy * free_y)
    return left, top


def grayscale(image: Image.Image) -> Image.Image:
    """Mode L, or LA when the image has transparency worth keeping."""
    if "A" in image.getbands() and image.getchannel("A").getextrema() != (255, 255):
        return image.convert("LA")
    if image.mode == "P" and "transparency" in image.info:
        return image.convert("LA")
    return image.convert("L")
