"""`image` end to end: the session worker resizes a fixture image in its files root."""

from __future__ import annotations

import shutil
from pathlib import Path

from PIL import Image

from tests.e2e.conftest import RunBlueprint


def test_an_image_is_resized_then_converted_by_the_worker(
    run_blueprint: RunBlueprint, data_dir: Path, atomiton_data: Path
) -> None:
    files = data_dir / "files"
    (files / "e2e-image").mkdir(parents=True, exist_ok=True)
    shutil.copy(atomiton_data / "sample-photo.png", files / "e2e-image" / "photo.png")
    result = run_blueprint(
        """
id: images
name: Images
nodes:
  - id: resize
    type: image
    parameters: {operation: resize, path: "{{$input.image}}", width: 600, height: 600}
  - id: gray
    type: image
    parameters: {operation: grayscale, format: jpeg, quality: 80, outputPath: e2e-image/out/}
edges: [{source: resize, target: gray}]
""",
        {"image": "e2e-image/photo.png"},
    )
    assert result["status"] == "succeeded", result["error"]
    gray = result["data"]["gray"]
    assert gray["result"] == "e2e-image/out/photo-resize-grayscale.jpg"
    assert (gray["width"], gray["height"], gray["format"]) == (600, 400, "jpeg")
    with Image.open(files / "e2e-image" / "photo-resize.png") as resized:
        assert resized.size == (600, 400)
    with Image.open(files / gray["result"]) as image:
        assert (image.format, image.mode, image.size) == ("JPEG", "L", (600, 400))
