"""`spreadsheet` on the real worker: Atomiton's test workbooks feed the next node."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.e2e.conftest import RunBlueprint


@pytest.fixture
def sheets(data_dir: Path, atomiton_data: Path) -> str:
    """Atomiton's test data under the worker's files root; the folder's root-relative name."""
    folder = data_dir / "files" / "e2e-sheets"
    shutil.copytree(atomiton_data, folder, dirs_exist_ok=True)
    return "e2e-sheets"


@pytest.mark.parametrize("name", ["test-data.xlsx", "test-data.ods"])
def test_a_sheet_feeds_a_transform(run_blueprint: RunBlueprint, sheets: str, name: str) -> None:
    result = run_blueprint(
        f"""
id: sheet-to-transform
name: Sheet to transform
nodes:
  - {{id: products, type: spreadsheet, parameters: {{filePath: "{sheets}/{name}", sheetName: Products}}}}
  - id: pricey
    type: transform
    parameters: {{operation: filter, transformFunction: "row => row.price > 100"}}
edges:
  - {{source: products, target: pricey}}
"""
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["pricey"]["result"] == [
        {"product": "Laptop", "price": 999.99, "stock": 15, "category": "Electronics"},
        {"product": "Desk", "price": 299.99, "stock": 25, "category": "Furniture"},
        {"product": "Chair", "price": 199.99, "stock": 40, "category": "Furniture"},
    ]


def test_csv_with_a_templated_path(run_blueprint: RunBlueprint, sheets: str) -> None:
    result = run_blueprint(
        f"""
id: csv-from-variable
name: CSV from a variable
variables:
  inputPath: {{type: string, defaultValue: "{sheets}/test-data.csv"}}
nodes:
  - {{id: csv, type: spreadsheet, parameters: {{path: "{{{{$vars.inputPath}}}}", range: "A1:B3"}}}}
"""
    )
    assert result["status"] == "succeeded", result["error"]
    assert result["data"]["csv"]["result"] == [
        {"name": "Alice", "age": "30"},
        {"name": "Bob", "age": "25"},
    ]


def test_an_unknown_sheet_fails_with_the_sheet_names(
    run_blueprint: RunBlueprint, sheets: str
) -> None:
    result = run_blueprint(
        f"""
id: no-such-sheet
name: No such sheet
nodes:
  - {{id: orders, type: spreadsheet, parameters: {{path: "{sheets}/test-data.xlsx", sheet: Orders}}}}
"""
    )
    assert result["status"] == "failed"
    assert result["error"]["code"] == "EXECUTION_FAILED"
    assert "'Users', 'Products', 'Sales'" in result["error"]["message"]
