"""`image`: resize, crop, overlay, filter and convert images inside the files root (Pillow).

One operation per node, then Atomiton's optional filters (`blur`, `sharpen`, `grayscale`), then
the output format. As in Atomiton, `width`/`height` on an operation other than `resize` and `crop`
resize the image first. Atomiton's compositing operations (`overlay`, `merge`, `composite`,
`blend`, and Conductor's `watermark`) all lay their layers on the base with `blendMode`,
`opacity` and `position`. Only the first frame of an animated image is processed.
"""

from __future__ import annotations

import os
import secrets
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from PIL import Image, UnidentifiedImageError
from pydantic import AliasChoices, Field, field_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.blending import BlendMode
from nodes.errors import NodeError
from nodes.files import resolve_in_root
from nodes.image_operations import (
    FILTERS,
    MAX_SIDE,
    check_pixels,
    crop,
    finish,
    overlay,
    resize,
)

Operation = Literal[
    "resize", "crop", "overlay", "watermark", "composite", "blend", "merge", "blur", "sharpen",
    "grayscale", "convert",
]  # fmt: skip
Position = Literal[
    "center", "top", "bottom", "left", "right", "top-left", "top-right", "bottom-left",
    "bottom-right",
]  # fmt: skip
Fit = Literal["cover", "contain", "fill", "inside", "outside"]
Format = Literal["jpeg", "jpg", "png", "webp", "gif"]

OVERLAYS = frozenset({"overlay", "watermark", "composite", "blend", "merge"})
PILLOW_FORMATS = {"jpeg": "JPEG", "jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}
SUFFIXES = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}


class ImageParameters(NodeParameters):
    """Parameters of `image` (Atomiton's names, plus those its image-processor flow uses)."""

    operation: Operation = Field(
        default="overlay",
        description="overlay, merge, composite, blend and watermark lay layers on the base",
    )
    path: str | None = Field(
        default=None,
        validation_alias=AliasChoices("path", "inputPath"),
        description="Input image under the files root (alias inputPath); default: the input",
    )
    images: list[str | dict[str, Any] | None] = Field(
        default_factory=list,
        description="Atomiton's image list: the first is the base, the others its layers; an "
        "entry may be a mapping with `path`; empty entries are skipped",
    )
    outputPath: str | None = Field(
        default=None,
        validation_alias=AliasChoices("outputPath", "output"),
        description="Output file or folder under the files root (alias output); absent or "
        "empty: next to the input, named after the operation",
    )
    format: Format | None = Field(
        default=None, description="Output format; default: from outputPath, else the input's"
    )
    quality: int = Field(default=90, ge=1, le=100, description="JPEG and WebP quality")
    width: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    height: int | None = Field(default=None, ge=1, le=MAX_SIDE)
    maintainAspectRatio: bool = Field(
        default=True,
        description="Operation resize without `fit`: true fits inside width x height, false "
        "stretches",
    )
    fit: Fit | None = Field(
        default=None,
        description="How width x height is filled; default cover (operation resize: see "
        "maintainAspectRatio)",
    )
    x: int | None = Field(default=None, ge=0, description="Crop left, or overlay left")
    y: int | None = Field(default=None, ge=0, description="Crop top, or overlay top")
    overlayPath: str | None = Field(
        default=None,
        validation_alias=AliasChoices("overlayPath", "watermarkPath"),
        description="Overlay image under the files root (alias watermarkPath)",
    )
    position: Position = Field(default="center", description="Overlay place; resize gravity")
    opacity: float = Field(default=1.0, ge=0, le=1, description="Overlay opacity")
    scale: float | None = Field(
        default=None, gt=0, le=1, description="Overlay width as a fraction of the image's width"
    )
    margin: int = Field(default=0, ge=0, le=MAX_SIDE, description="Overlay distance from edges")
    blendMode: BlendMode = Field(
        default="over", description="How layers are blended (normal = over)"
    )
    radius: float = Field(default=2.0, ge=0, le=100, description="Blur radius for operation blur")
    blur: float | None = Field(default=None, ge=0, le=100, description="Gaussian blur afterwards")
    sharpen: bool = Field(default=False, description="Sharpen afterwards")
    grayscale: bool = Field(default=False, description="Convert to grayscale afterwards")

    @field_validator("outputPath")
    @classmethod
    def _empty_is_default(cls, value: str | None) -> str | None:
        return value or None  # Atomiton: "" means "pick a file for me"


class ImageNode(Node[ImageParameters]):
    """Process one image from the files root and write the result there."""

    type_name = "image"
    description = "Resize, crop, composite, filter and convert images"
    parameters_model = ImageParameters
    # In Atomiton's definition, dropped by its schema; `format` is the output format.
    editor_parameters = frozenset({"outputFormat", "backgroundColor", "padding"})

    def run(self, params: ImageParameters, context: NodeContext) -> Mapping[str, Any]:
        try:
            return self._process(params, context)
        except OSError as exc:  # a name too long, a file it may not read: no host path shown
            reason = exc.strerror or str(exc) or type(exc).__name__  # strerror: no file name
            raise NodeError(f"image {params.operation} failed: {reason}", retryable=False) from None

    def _process(self, params: ImageParameters, context: NodeContext) -> Mapping[str, Any]:
        root = context.environment.files_root
        source_name, layers = _layers(params, context)
        source = resolve_in_root(root, source_name)
        image = open_image(source, root)
        out_format = _output_format(params, image.format)
        processed = finish(_operate(_workable(image), params, layers, root), params)
        target = _target_path(root, params, source, out_format)
        _save(processed, target, out_format, params.quality)
        metadata = _metadata(target)
        relative = target.relative_to(root.resolve()).as_posix()
        return {
            "result": relative,
            "path": relative,
            "imagePath": relative,
            **{key: metadata[key] for key in ("width", "height", "format", "size")},
            "success": True,
            "metadata": metadata,
        }


def _metadata(path: Path) -> dict[str, Any]:
    """What was written, read back from the file: Atomiton's width, height, format, size."""
    with Image.open(path) as written:
        return {
            "width": written.width,
            "height": written.height,
            "format": (written.format or "").lower(),
            "size": path.stat().st_size,
            "mode": written.mode,
        }


def open_image(path: Path, root: Path | None = None) -> Image.Image:
    """The image at `path`, loaded, refusing decompression bombs before decoding them; a
    missing one is named from the files `root` when given (`assets/mark.png`)."""
    if not path.is_file():
        shown = path.relative_to(root.resolve()).as_posix() if root else path.name
        raise NodeError(f"image {shown!r} not found", retryable=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as image:
                check_pixels(image.width, image.height, path.name)
                image.load()
                return image
        except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
            raise NodeError(f"image {path.name!r} refused: {exc}", retryable=False) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise NodeError(f"cannot read image {path.name!r}: {exc}", retryable=False) from None


def _workable(image: Image.Image) -> Image.Image:
    """L, LA, RGB or RGBA: the modes every filter and blend works on (not P, 1, CMYK, I)."""
    if image.mode in ("L", "LA", "RGB", "RGBA"):
        return image
    transparent = "A" in image.getbands() or "transparency" in image.info
    return image.convert("RGBA" if transparent else "RGB")


def _path_of(value: Any) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("path"), str):
        return str(value["path"])
    return None


def _layers(params: ImageParameters, context: NodeContext) -> tuple[str, list[str]]:
    """The base image and the layers to lay on it (none for the other operations)."""
    listed = [found for found in map(_path_of, params.images) if found]
    if params.operation == "merge":
        if len(listed) < 2:
            raise NodeError(
                "operation 'merge' needs at least 2 images in `images` (the first is the base)",
                retryable=False,
            )
        return listed[0], listed[1:]
    base = _source_path(params, context, listed)
    if params.operation not in OVERLAYS:
        return base, []
    overlay = params.overlayPath or _path_of(context.get_input("overlayImage"))
    from_list = bool(listed) and base == listed[0]  # then the rest of `images` are layers
    layers = [overlay] if overlay else listed[1:] if from_list else []
    if not layers and params.operation in {"overlay", "watermark"}:
        raise NodeError(
            f"operation {params.operation!r} needs an overlay image: set overlayPath "
            "(or watermarkPath), wire one into overlayImage, or list it after the base in images",
            retryable=False,
        )
    return base, layers


def _source_path(params: ImageParameters, context: NodeContext, listed: list[str]) -> str:
    """`path`, else Atomiton's `baseImage` port, else the first of `images`, else the input
    when it is a path or a mapping with `path` (the output of another file node)."""
    found = params.path or _path_of(context.get_input("baseImage"))
    found = found or (listed[0] if listed else None) or _path_of(context.data)
    if found is None:
        raise NodeError(
            "no input image: set `path` (or inputPath) or `images`, or wire a file path into "
            "the node",
            retryable=False,
        )
    return found


def _operate(
    image: Image.Image, params: ImageParameters, layers: list[str], root: Path
) -> Image.Image:
    op = params.operation
    if op == "resize":
        return resize(image, params)
    if op == "crop":
        return crop(image, params)
    if params.width or params.height:  # Atomiton resizes first for every other operation
        image = resize(image, params)
    if op in OVERLAYS:
        for name in layers:
            image = overlay(image, open_image(resolve_in_root(root, name), root), params)
        return image
    return FILTERS[op](image, params)


def _output_format(params: ImageParameters, source_format: str | None) -> str:
    if params.format is not None:
        return PILLOW_FORMATS[params.format]
    if params.outputPath:
        suffix = Path(params.outputPath).suffix.lower().lstrip(".")
        if suffix in PILLOW_FORMATS:
            return PILLOW_FORMATS[suffix]
    source = "JPEG" if source_format == "MPO" else source_format  # camera JPEGs open as MPO
    return source if source in SUFFIXES else "PNG"


def _target_path(root: Path, params: ImageParameters, source: Path, out_format: str) -> Path:
    """`outputPath` (a folder gets a file named after the input), else next to the input,
    with the operation as a suffix: photo.png -> photo-resize.png."""
    name = f"{source.stem}-{params.operation}{SUFFIXES[out_format]}"
    if params.outputPath is None:
        return source.with_name(name)
    target = resolve_in_root(root, params.outputPath)
    if target.is_dir() or params.outputPath.endswith(("/", os.sep)):
        return target / name
    return target


def _save(image: Image.Image, target: Path, out_format: str, quality: int) -> None:
    """Write through a temporary file in the same folder, so a failure leaves no half image."""
    if out_format == "JPEG" and image.mode not in ("RGB", "L", "CMYK"):
        image = _flatten(image)
    options: dict[str, Any] = {"quality": quality} if out_format in ("JPEG", "WEBP") else {}
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    # Created like any new file (0o666 less the umask), unlike mkstemp's 0o600.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            image.save(handle, format=out_format, **options)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _flatten(image: Image.Image) -> Image.Image:
    """JPEG has no alpha: put the image on white."""
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")
