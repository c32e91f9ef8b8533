"""Atomiton's three sample flows run unchanged (examples/atomiton) when their input files exist
under the files root, where their absolute paths (`/data/sample.csv`) point; when a file is
missing, the run fails naming it, never with a validation error about a parameter."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

from PIL import Image

from tests.conftest import REPO
from tests.e2e.conftest import RunBlueprint

FLOWS = REPO / "examples" / "atomiton"
SAMPLE = "name,active,amount\nAda,true,10.5\nBob,false,99\nCy,true,4.5\n"
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
VALIDATION_CODES = {"VALIDATION_FAILED", "INVALID_PARAMETERS", "INVALID_BLUEPRINT"}


def flow(name: str) -> str:
    """The flow's text, exactly as the project holds it."""
    return (FLOWS / f"{name}.flow.yaml").read_text()


def assert_missing_file(result: dict[str, Any], node_id: str, path: str) -> None:
    """The run failed at `node_id` with an error naming `path`, not a validation error."""
    assert result["status"] == "failed", result
    error = result["error"]
    assert error["nodeId"] == node_id
    assert path in error["message"]
    assert error["code"] not in VALIDATION_CODES
    assert "parameters." not in error["message"]


def test_hello_world_runs_unchanged(run_blueprint: RunBlueprint, data_dir: Path) -> None:
    written = data_dir / "files" / ".tmp" / "hello-world-output.txt"
    written.unlink(missing_ok=True)
    result = run_blueprint(flow("hello-world"))
    assert result["status"] == "succeeded", result["error"]
    assert result["executedNodes"] == ["create-message", "format-content", "write-to-file"]
    text = written.read_text()
    head, _, stamp = text.rpartition("Generated at: ")
    assert head == (
        "Hello World from Atomiton!\n\n"
        "This is a simple example showing how Flow nodes work together.\n\n"
        "Created by: Atomiton Flow System\n"
    )
    assert ISO_MS.fullmatch(stamp)
    output = result["data"]["write-to-file"]
    assert output == {
        "result": "File written: .tmp/hello-world-output.txt",
        "success": True,
        "path": ".tmp/hello-world-output.txt",
        "size": len(text.encode()),
    }


def test_data_transform_fails_naming_its_csv_then_runs_once_it_exists(
    run_blueprint: RunBlueprint, data_dir: Path
) -> None:
    files = data_dir / "files"
    shutil.rmtree(files / "data", ignore_errors=True)
    shutil.rmtree(files / "output", ignore_errors=True)
    missing = run_blueprint(flow("data-transform"))
    assert_missing_file(missing, "csv-source", "data/sample.csv")
    assert missing["error"]["message"] == "spreadsheet data/sample.csv does not exist"
    assert missing["executedNodes"] == ["csv-source"]

    (files / "data").mkdir(parents=True)
    (files / "data" / "sample.csv").write_text(SAMPLE)
    result = run_blueprint(flow("data-transform"))
    assert result["status"] == "succeeded", result["error"]
    written = json.loads((files / "output" / "results.json").read_text())
    assert written == {"total": 15, "count": 2, "average": 7.5}
    assert result["data"]["output-file"]["path"] == "output/results.json"


def make_image(path: Path, size: tuple[int, int], color: str) -> None:
    """A real image file made with Pillow, its format from the extension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def test_image_processor_fails_naming_a_missing_file_then_runs(
    run_blueprint: RunBlueprint, data_dir: Path
) -> None:
    files = data_dir / "files"
    for folder in ("images", "assets"):
        shutil.rmtree(files / folder, ignore_errors=True)
    assert_missing_file(run_blueprint(flow("image-processor")), "image-source", "images/input")

    make_image(files / "images" / "input" / "a.jpg", (1200, 900), "red")
    make_image(files / "images" / "input" / "b.png", (640, 480), "blue")
    (files / "images" / "input" / "notes.txt").write_text("not an image")
    no_watermark = run_blueprint(flow("image-processor"))
    assert_missing_file(no_watermark, no_watermark["error"]["nodeId"], "assets/watermark.png")
    assert no_watermark["error"]["nodeId"].split("/")[-1].startswith("image-watermark")

    make_image(files / "assets" / "watermark.png", (100, 40), "white")
    result = run_blueprint(flow("image-processor"))
    assert result["status"] == "succeeded", result["error"]
    assert "image-source" in result["executedNodes"]
    assert (files / "images" / "output").exists()
