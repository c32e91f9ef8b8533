"""`image`: real pixels from Atomiton's fixture images, confined to the files root."""

from __future__ import annotations

import shutil
import struct
import time
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from PIL import Image, ImageChops
from pydantic import ValidationError

from nodes import image_operations
from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import NodeError
from nodes.files import OutsideFilesRoot
from nodes.image import ImageNode, ImageParameters
from tests.conftest import ATOMITON_FLOWS

PHOTO = "sample-photo.png"  # 1200x800 RGBA, opaque
THUMB = "sample-thumbnail.png"  # 300x200 RGBA, one colour
STEELBLUE = (70, 130, 180)


@pytest.fixture
def root(tmp_path: Path, atomiton_data: Path) -> Path:
    """A files root holding the two fixture images (built by the tests)."""
    files = tmp_path / "files"
    files.mkdir()
    for name in (PHOTO, THUMB):
        shutil.copy(atomiton_data / name, files / name)
    return files


def run(
    root: Path, data: Any = None, inputs: Mapping[str, Any] | None = None, **parameters: Any
) -> Mapping[str, Any]:
    """Run `image` on the files root `root`."""
    context = NodeContext(
        execution_id="exec-1",
        node_id="image",
        inputs=inputs or {},
        data=data,
        deadline=time.monotonic() + 30,
        environment=NodeEnvironment(files_root=root),
    )
    return ImageNode().run(ImageParameters.model_validate(parameters), context)


def written(root: Path, output: Mapping[str, Any]) -> Image.Image:
    """The image the node wrote, loaded."""
    with Image.open(root / output["result"]) as image:
        image.load()
        return image


def changed(before: Image.Image, after: Image.Image) -> tuple[int, int, int, int] | None:
    """The box where the colours of two images differ (None: nowhere)."""
    return ImageChops.difference(before.convert("RGB"), after.convert("RGB")).getbbox()


def rgb(image: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    pixel = image.getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel[:3]


# --- resize ----------------------------------------------------------------------------------


def test_resize_keeps_the_aspect_ratio_inside_the_box(root: Path) -> None:
    output = run(root, operation="resize", path=PHOTO, width=800, height=600)
    assert written(root, output).size == (800, 533)
    assert (output["width"], output["height"]) == (800, 533)
    assert output["result"] == output["path"] == "sample-photo-resize.png"
    assert output["format"] == "png"
    assert output["size"] == (root / output["result"]).stat().st_size
    assert output["success"] is True
    assert output["metadata"] == {
        "width": 800, "height": 533, "format": "png", "size": output["size"], "mode": "RGBA",
    }  # fmt: skip


def test_resize_with_one_side_scales_the_other(root: Path) -> None:
    assert written(root, run(root, operation="resize", path=PHOTO, width=300)).size == (300, 200)
    assert written(root, run(root, operation="resize", path=PHOTO, height=100)).size == (150, 100)


@pytest.mark.parametrize(
    ("extra", "size"),
    [
        ({"maintainAspectRatio": False}, (640, 480)),
        ({"fit": "fill"}, (640, 480)),
        ({"fit": "cover"}, (640, 480)),
        ({"fit": "contain"}, (640, 480)),
        ({"fit": "inside"}, (640, 427)),
        ({"fit": "outside"}, (720, 480)),
    ],
)
def test_resize_fits(root: Path, extra: dict[str, Any], size: tuple[int, int]) -> None:
    output = run(root, operation="resize", path=PHOTO, width=640, height=480, **extra)
    assert written(root, output).size == size


def test_contain_pads_with_transparency(root: Path) -> None:
    image = written(
        root, run(root, operation="resize", path=PHOTO, width=600, height=600, fit="contain")
    )
    assert image.getpixel((300, 0)) == (0, 0, 0, 0)
    assert image.getpixel((300, 300))[3] == 255  # type: ignore[index]


def test_atomitons_resize_node_from_the_image_processor_flow(root: Path) -> None:
    flow = yaml.safe_load((ATOMITON_FLOWS / "image-processor.flow.yaml").read_text())
    node = next(node for node in flow["nodes"] if node["id"] == "image-resize")
    output = run(root, data={"path": PHOTO}, **node["parameters"])
    image = written(root, output)
    assert image.format == "JPEG"
    assert image.size == (800, 533)
    assert output["result"] == "sample-photo-resize.jpg"


# --- crop ------------------------------------------------------------------------------------


def test_crop_cuts_the_box_out(root: Path) -> None:
    output = run(root, operation="crop", path=PHOTO, x=900, y=500, width=200, height=100)
    image = written(root, output)
    assert image.size == (200, 100)
    with Image.open(root / PHOTO) as photo:
        expected = photo.crop((900, 500, 1100, 600))
        assert changed(image, expected) is None


def test_crop_defaults_to_the_rest_of_the_image(root: Path) -> None:
    assert written(root, run(root, operation="crop", path=PHOTO, x=200, y=100)).size == (1000, 700)


def test_a_crop_box_outside_the_image_fails(root: Path) -> None:
    with pytest.raises(NodeError, match="not inside the 1200x800 image") as caught:
        run(root, operation="crop", path=PHOTO, x=1100, y=0, width=200, height=100)
    assert caught.value.retryable is False


# --- overlay ---------------------------------------------------------------------------------


def test_overlay_changes_the_expected_corner_and_nothing_else(root: Path) -> None:
    output = run(
        root, operation="overlay", path=PHOTO, overlayPath=THUMB, position="bottom-right",
        scale=0.125, margin=10,
    )  # fmt: skip
    image = written(root, output)
    with Image.open(root / PHOTO) as photo:
        diff = changed(image, photo)
    box = (1200 - 10 - 150, 800 - 10 - 100, 1200 - 10, 800 - 10)  # 150x100 at 10 px from edges
    assert diff is not None
    assert box[0] <= diff[0] and box[1] <= diff[1]
    assert diff[2] <= box[2] and diff[3] <= box[3]
    assert rgb(image, (box[2] - 1, box[3] - 1)) == STEELBLUE  # was green
    assert rgb(image, (box[2] + 1, box[3] + 1)) != STEELBLUE


def test_watermark_with_atomitons_parameters(root: Path) -> None:
    (root / "assets").mkdir()
    shutil.copy(root / THUMB, root / "assets" / "watermark.png")
    flow = yaml.safe_load((ATOMITON_FLOWS / "image-processor.flow.yaml").read_text())
    node = next(node for node in flow["nodes"] if node["id"] == "image-watermark")
    assert node["parameters"]["watermarkPath"] == "/assets/watermark.png"
    # Rooted paths are refused by nodes.files; the flow's path relative to the files root:
    parameters = {**node["parameters"], "watermarkPath": "assets/watermark.png"}
    output = run(root, data=PHOTO, **parameters)
    assert output["result"] == "sample-photo-watermark.png"
    image = written(root, output)
    with Image.open(root / PHOTO) as photo:
        corner, far = photo.getpixel((1185, 785)), photo.getpixel((10, 790))
        diff = changed(image, photo)
    assert diff is not None and diff[0] >= 1200 - 10 - 300 and diff[1] >= 800 - 10 - 200
    blended = rgb(image, (1185, 785))  # opacity 0.7 of steel blue over green
    assert isinstance(corner, tuple)
    expected = tuple(round(0.7 * s + 0.3 * c) for s, c in zip(STEELBLUE, corner, strict=False))
    assert all(abs(a - b) <= 2 for a, b in zip(blended, expected, strict=True))
    assert image.getpixel((10, 790)) == far


def test_overlay_at_x_and_y(root: Path) -> None:
    image = written(
        root, run(root, operation="overlay", path=PHOTO, overlayPath=THUMB, x=100, y=50)
    )
    with Image.open(root / PHOTO) as photo:
        assert changed(image, photo) == (100, 50, 400, 250)


def test_overlay_from_atomitons_ports(root: Path) -> None:
    inputs = {"baseImage": {"path": PHOTO}, "overlayImage": THUMB}
    output = run(root, inputs=inputs, operation="overlay", position="top-left")
    assert rgb(written(root, output), (299, 199)) == STEELBLUE


def test_merge_lays_the_other_images_on_the_first(root: Path) -> None:
    output = run(root, operation="merge", images=[PHOTO, THUMB], position="bottom-left")
    assert rgb(written(root, output), (0, 799)) == STEELBLUE


def test_overlay_without_an_overlay_image_fails(root: Path) -> None:
    with pytest.raises(NodeError, match="needs an overlay image"):
        run(root, operation="watermark", path=PHOTO)


def test_composite_without_an_overlay_runs_atomitons_pipeline(root: Path) -> None:
    output = run(root, operation="composite", path=PHOTO, width=120, grayscale=True)
    image = written(root, output)
    assert (image.size, image.mode) == ((120, 80), "L")


# --- filters ---------------------------------------------------------------------------------


def test_grayscale_gives_mode_l(root: Path) -> None:
    image = written(root, run(root, operation="grayscale", path=PHOTO))
    assert image.mode == "L"
    assert image.size == (1200, 800)


def test_grayscale_keeps_real_transparency(root: Path) -> None:
    Image.new("RGBA", (10, 10), (255, 0, 0, 128)).save(root / "glass.png")
    assert written(root, run(root, operation="grayscale", path="glass.png")).mode == "LA"


def test_blur_and_sharpen_change_pixels_not_size(root: Path) -> None:
    with Image.open(root / PHOTO) as photo:
        photo.load()
        for operation in ("blur", "sharpen"):
            image = written(root, run(root, operation=operation, path=PHOTO, radius=4))
            assert image.size == photo.size
            assert changed(image, photo) is not None


def test_palette_images_are_filtered_too(root: Path) -> None:
    with Image.open(root / PHOTO) as photo:
        photo.convert("RGB").save(root / "photo.gif")
    output = run(root, operation="blur", path="photo.gif", radius=1)
    assert output["result"] == "photo-blur.gif"
    assert written(root, output).format == "GIF"


def test_atomitons_filter_flags_apply_after_the_operation(root: Path) -> None:
    output = run(
        root, operation="resize", path=PHOTO, width=60, blur=2, sharpen=True, grayscale=True
    )
    assert (written(root, output).size, written(root, output).mode) == ((60, 40), "L")


# --- formats ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pillow", "suffix"),
    [
        ("jpeg", "JPEG", ".jpg"),
        ("jpg", "JPEG", ".jpg"),
        ("webp", "WEBP", ".webp"),
        ("gif", "GIF", ".gif"),
        ("png", "PNG", ".png"),
    ],
)
def test_format_conversion_writes_a_real_file_of_that_format(
    root: Path, fmt: str, pillow: str, suffix: str
) -> None:
    output = run(root, operation="convert", path=PHOTO, format=fmt, quality=80)
    assert output["result"] == f"sample-photo-convert{suffix}"
    with Image.open(root / output["result"]) as image:
        assert image.format == pillow
        assert image.size == (1200, 800)
    assert output["format"] == pillow.lower()


def test_jpeg_output_has_no_alpha(root: Path) -> None:
    image = written(root, run(root, operation="convert", path=PHOTO, format="jpeg"))
    assert image.mode == "RGB"


def test_the_format_follows_the_output_path(root: Path) -> None:
    output = run(root, operation="convert", path=PHOTO, outputPath="out/photo.webp")
    assert output["result"] == "out/photo.webp"
    assert written(root, output).format == "WEBP"


# --- paths -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "parameters"),
    [
        (PHOTO, {}),
        ({"path": PHOTO, "size": 1}, {}),
        (None, {"inputPath": PHOTO}),
        (None, {"images": [PHOTO]}),
    ],
)
def test_the_input_may_come_from_upstream_or_aliases(
    root: Path, data: Any, parameters: dict[str, Any]
) -> None:
    output = run(root, data=data, operation="resize", width=30, **parameters)
    assert written(root, output).size == (30, 20)


def test_output_goes_to_output_path_or_into_an_output_folder(root: Path) -> None:
    output = run(root, operation="resize", path=PHOTO, width=30, output="thumbs/small.png")
    assert output["result"] == "thumbs/small.png"
    (root / "folder").mkdir()
    output = run(root, operation="resize", path=PHOTO, width=30, outputPath="folder")
    assert output["result"] == "folder/sample-photo-resize.png"
    output = run(root, operation="resize", path=PHOTO, width=30, outputPath="new/")
    assert output["result"] == "new/sample-photo-resize.png"


def test_the_input_is_never_overwritten_by_default(root: Path) -> None:
    before = (root / PHOTO).read_bytes()
    run(root, operation="grayscale", path=PHOTO)
    assert (root / PHOTO).read_bytes() == before
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [PHOTO, THUMB, "sample-photo-grayscale.png"]
    )


def test_a_missing_file_fails_without_retry(root: Path) -> None:
    with pytest.raises(NodeError, match="not found") as caught:
        run(root, operation="resize", path="missing.png", width=10)
    assert caught.value.retryable is False


def test_no_input_image_fails(root: Path) -> None:
    with pytest.raises(NodeError, match="no input image"):
        run(root, data={"rows": []}, operation="resize", width=10)


@pytest.mark.parametrize(
    "parameters",
    [
        {"path": f"../{PHOTO}"},
        {"path": PHOTO, "outputPath": "../escaped.png"},
        {"path": PHOTO, "overlayPath": "../../etc/passwd", "operation": "overlay"},
        {"path": "link.png"},
    ],
)
def test_paths_outside_the_root_are_refused(root: Path, parameters: dict[str, Any]) -> None:
    shutil.copy(root / PHOTO, root.parent / PHOTO)
    (root / "link.png").symlink_to(root.parent / PHOTO)
    with pytest.raises(OutsideFilesRoot):
        run(root, **{"operation": "resize", "width": 10, **parameters})
    assert not (root.parent / "escaped.png").exists()


def test_a_file_that_is_not_an_image_fails(root: Path) -> None:
    (root / "notes.png").write_text("not a picture")
    with pytest.raises(NodeError, match=r"cannot read image 'notes\.png'"):
        run(root, operation="resize", path="notes.png", width=10)


# --- limits ----------------------------------------------------------------------------------


def _png_header(width: int, height: int) -> bytes:
    """A PNG that claims `width` x `height` pixels (a decompression bomb's header)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    data = zlib.compress(b"")
    idat = (
        struct.pack(">I", len(data))
        + b"IDAT"
        + data
        + struct.pack(">I", zlib.crc32(b"IDAT" + data))
    )
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat


@pytest.mark.parametrize("side", [10_000, 100_000])  # over our limit; over Pillow's own error
def test_a_decompression_bomb_is_refused(root: Path, side: int) -> None:
    (root / "bomb.png").write_bytes(_png_header(side, side))
    with pytest.raises(NodeError, match="bomb") as caught:
        run(root, operation="resize", path="bomb.png", width=10)
    assert caught.value.retryable is False


def test_the_pixel_limit_is_checked_before_decoding(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(image_operations, "MAX_PIXELS", 1000)
    with pytest.raises(NodeError, match="over the limit of 1000"):
        run(root, operation="grayscale", path=PHOTO)


def test_a_resize_over_the_pixel_limit_is_refused(root: Path) -> None:
    with pytest.raises(NodeError, match="over the limit"):
        run(root, operation="resize", path=PHOTO, width=60_000, height=60_000, fit="fill")


# --- parameters ------------------------------------------------------------------------------


def test_an_unknown_operation_is_a_validation_error_naming_operation() -> None:
    with pytest.raises(ValidationError) as caught:
        ImageParameters.model_validate({"operation": "explode", "path": PHOTO})
    assert [error["loc"] for error in caught.value.errors()] == [("operation",)]


def test_an_alias_and_its_name_together_are_refused() -> None:
    with pytest.raises(ValidationError, match="inputPath"):
        ImageParameters.model_validate({"path": "a.png", "inputPath": "b.png"})


def test_the_schema_lists_the_parameters() -> None:
    properties = ImageNode.json_schema()["properties"]
    assert {"operation", "path", "outputPath", "overlayPath", "width", "height", "format"} <= set(
        properties
    )
