"""The other two real Atomiton flows: rejected with a clear error as written, and the data
pipeline runs once its paths are inside the files root."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import SHARED
from tests.e2e.conftest import RunBlueprint

FLOWS = SHARED / "fixtures" / "atomiton" / "flows"
SAMPLE = "name,active,amount\nAda,true,10.5\nBob,false,99\nCy,true,4.5\n"


def test_data_transform_as_written_names_its_absolute_path(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint((FLOWS / "data-transform.flow.yaml").read_text())
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "csv-source"
    assert "'/data/sample.csv' is outside the files root" in result["error"]["message"]
    assert "'data/sample.csv'" in result["error"]["message"]


def test_data_transform_runs_with_paths_under_the_root(
    run_blueprint: RunBlueprint, data_dir: Path
) -> None:
    (data_dir / "files" / "data").mkdir(parents=True, exist_ok=True)
    (data_dir / "files" / "data" / "sample.csv").write_text(SAMPLE)
    text = (FLOWS / "data-transform.flow.yaml").read_text()
    text = text.replace('"/data/sample.csv"', '"data/sample.csv"')
    text = text.replace('"/output/results.json"', '"output/results.json"')
    result = run_blueprint(text)
    assert result["status"] == "succeeded", result["error"]
    written = json.loads((data_dir / "files" / "output" / "results.json").read_text())
    assert written == {"total": 15, "count": 2, "average": 7.5}


def test_image_processor_as_written_names_its_absolute_path(run_blueprint: RunBlueprint) -> None:
    result = run_blueprint((FLOWS / "image-processor.flow.yaml").read_text())
    assert result["status"] == "failed"
    assert result["error"]["nodeId"] == "image-source"
    assert "'/images/input' is outside the files root" in result["error"]["message"]
