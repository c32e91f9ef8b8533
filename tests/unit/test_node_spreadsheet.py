"""`spreadsheet` reads csv, tsv, xlsx and ods files under the files root, typed as stored."""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import CoveredTableCell, Table, TableCell, TableRow
from odf.text import P, S
from pydantic import ValidationError

from conductor.model.loader import load_blueprint_file
from nodes.base import NodeContext, NodeEnvironment
from nodes.errors import NodeError
from nodes.files import OutsideFilesRoot
from nodes.spreadsheet import (
    CellRange,
    SpreadsheetNode,
    SpreadsheetParameters,
    column_index,
    column_letters,
)
from tests.conftest import ATOMITON_FLOWS

USERS = [
    {"name": "Alice", "age": 30, "email": "alice@example.com", "city": "New York"},
    {"name": "Bob", "age": 25, "email": "bob@example.com", "city": "Los Angeles"},
    {"name": "Charlie", "age": 35, "email": "charlie@example.com", "city": "Chicago"},
    {"name": "Diana", "age": 28, "email": "diana@example.com", "city": "Houston"},
]
PRODUCTS = [
    {"product": "Laptop", "price": 999.99, "stock": 15, "category": "Electronics"},
    {"product": "Mouse", "price": 29.99, "stock": 100, "category": "Electronics"},
    {"product": "Desk", "price": 299.99, "stock": 25, "category": "Furniture"},
    {"product": "Chair", "price": 199.99, "stock": 40, "category": "Furniture"},
]
SALES = [
    {"date": "2024-01-01", "amount": 1500, "region": "North", "product_id": 1},
    {"date": "2024-01-02", "amount": 2300.5, "region": "South", "product_id": 2},
    {"date": "2024-01-03", "amount": 1800.75, "region": "East", "product_id": 3},
]
SHEETS = ["Users", "Products", "Sales"]


@pytest.fixture
def root(tmp_path: Path, atomiton_data: Path) -> Path:
    """A files root holding copies of Atomiton's test data files (built by the tests)."""
    files = tmp_path / "files"
    shutil.copytree(atomiton_data, files)
    return files


def read(root: Path, **parameters: Any) -> dict[str, Any]:
    """Validate `parameters` as a Blueprint would and run `spreadsheet` on `root`."""
    params = SpreadsheetParameters.model_validate(parameters)
    context = NodeContext(
        execution_id="exec-1",
        node_id="sheet",
        inputs={},
        environment=NodeEnvironment(files_root=root),
    )
    return dict(SpreadsheetNode().run(params, context))


def fails(root: Path, match: str, **parameters: Any) -> NodeError:
    """Run and expect a NodeError whose message matches `match`."""
    with pytest.raises(NodeError, match=match) as caught:
        read(root, **parameters)
    return caught.value


# --- Atomiton's test data --------------------------------------------------------------------


def test_csv_values_stay_strings(root: Path) -> None:
    out = read(root, path="test-data.csv")
    expected = [{**user, "age": str(user["age"])} for user in USERS]
    assert out == {
        "result": expected,
        "data": expected,
        "rows": 4,
        "columns": ["name", "age", "email", "city"],
        "sheet": None,
        "sheets": [],
        "format": "csv",
        "path": "test-data.csv",
        "success": True,
        # Atomiton's keys
        "records": expected,
        "headers": ["name", "age", "email", "city"],
        "rowCount": 4,
        "sheetName": "Sheet1",
        "sheetNames": ["Sheet1"],
        "delimiter": ",",
    }


def test_tsv_uses_a_tab_by_default(root: Path) -> None:
    out = read(root, filePath="test-data-tab.tsv")
    assert out["result"] == [
        {"name": "Eve", "age": "29", "email": "eve@example.com", "city": "Phoenix"},
        {"name": "Frank", "age": "32", "email": "frank@example.com", "city": "Philadelphia"},
        {"name": "Grace", "age": "27", "email": "grace@example.com", "city": "San Antonio"},
    ]
    assert (out["format"], out["rows"]) == ("tsv", 3)


def test_xlsx_first_sheet_keeps_numbers(root: Path) -> None:
    out = read(root, path="test-data.xlsx")
    assert out == {
        "result": USERS,
        "data": USERS,
        "rows": 4,
        "columns": ["name", "age", "email", "city"],
        "sheet": "Users",
        "sheets": SHEETS,
        "format": "xlsx",
        "path": "test-data.xlsx",
        "success": True,
        # Atomiton's keys
        "records": USERS,
        "headers": ["name", "age", "email", "city"],
        "rowCount": 4,
        "sheetName": "Users",
        "sheetNames": SHEETS,
    }


@pytest.mark.parametrize("name", ["test-data.xlsx", "test-data.ods"])
@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ({"sheet": "Products"}, PRODUCTS),
        ({"sheet": 2}, SALES),
        ({"sheetName": "Sales"}, SALES),
        ({"sheetIndex": 1}, PRODUCTS),
        ({}, USERS),
    ],
)
def test_sheets_by_name_or_index(
    root: Path, name: str, selector: dict[str, Any], expected: list[dict[str, Any]]
) -> None:
    out = read(root, path=name, **selector)
    assert out["result"] == expected
    assert out["columns"] == list(expected[0])
    assert out["sheets"] == SHEETS


def test_ods_matches_xlsx(root: Path) -> None:
    ods = read(root, path="test-data.ods")
    xlsx = read(root, path="test-data.xlsx")
    assert {**ods, "format": "xlsx", "path": "test-data.xlsx"} == xlsx


def test_xlsx_without_headers_gives_lists(root: Path) -> None:
    out = read(root, path="test-data-no-headers.xlsx", hasHeaders=False)
    assert out["result"] == [
        ["Alice", 30, "alice@example.com", "New York"],
        ["Bob", 25, "bob@example.com", "Los Angeles"],
        ["Charlie", 35, "charlie@example.com", "Chicago"],
    ]
    assert (out["columns"], out["sheet"], out["rows"]) == (["A", "B", "C", "D"], "Sheet1", 3)


def test_a_header_row_that_is_data_is_read_as_headers(root: Path) -> None:
    out = read(root, path="test-data-no-headers.xlsx")
    assert out["columns"] == ["Alice", "30", "alice@example.com", "New York"]
    assert out["rows"] == 2


@pytest.mark.parametrize("name", ["test-data.csv", "test-data.xlsx", "test-data.ods"])
def test_ranges(root: Path, name: str) -> None:
    typed = not name.endswith(".csv")
    out = read(root, path=name, range="B1:C3")
    assert out["result"] == [
        {"age": 30 if typed else "30", "email": "alice@example.com"},
        {"age": 25 if typed else "25", "email": "bob@example.com"},
    ]
    lists = read(root, path=name, range="$D$4:c5", hasHeaders=False)
    assert lists["result"] == [["charlie@example.com", "Chicago"], ["diana@example.com", "Houston"]]
    assert lists["columns"] == ["C", "D"]
    single = read(root, path=name, range="A5", hasHeaders=False)
    assert single["result"] == [["Diana"]]
    past_the_end = read(root, path=name, range="A4:Z999")
    assert past_the_end["result"] == [
        {
            "Charlie": "Diana",
            "35": "28" if not typed else 28,
            "charlie@example.com": "diana@example.com",
            "Chicago": "Houston",
        }
    ]


def test_the_real_data_transform_flow_csv_source_validates() -> None:
    blueprint = load_blueprint_file(ATOMITON_FLOWS / "data-transform.flow.yaml")
    (node,) = [node for node in blueprint.nodes if node.id == "csv-source"]
    assert node.type == "spreadsheet"
    params = SpreadsheetParameters.model_validate(node.parameters)
    assert (params.path, params.hasHeaders, params.delimiter, params.encoding) == (
        "/data/sample.csv",
        True,
        ",",
        "utf-8",
    )


def _csv_source_parameters() -> dict[str, Any]:
    """The parameters of the real data-transform flow's csv-source node."""
    blueprint = load_blueprint_file(ATOMITON_FLOWS / "data-transform.flow.yaml")
    (node,) = [node for node in blueprint.nodes if node.id == "csv-source"]
    return dict(node.parameters)


@pytest.fixture
def sample_csv(root: Path) -> Path:
    """`data/sample.csv` under the files root, where the data-transform flow means it to be."""
    (root / "data").mkdir()
    return Path(shutil.copy(root / "test-data.csv", root / "data" / "sample.csv"))


def test_the_data_transform_source_absolute_path_is_under_the_root(
    root: Path, sample_csv: Path
) -> None:
    parameters = _csv_source_parameters()
    assert parameters["filePath"] == "/data/sample.csv"
    out = read(root, **parameters)  # the files root works like a chroot
    assert out["path"] == "data/sample.csv"
    assert out["rows"] == read(root, path="data/sample.csv")["rows"]


def test_the_data_transform_source_reads_its_csv_relative_to_the_root(
    root: Path, sample_csv: Path
) -> None:
    parameters = {**_csv_source_parameters(), "filePath": "data/sample.csv"}
    out = read(root, **parameters)
    assert (out["rows"], out["path"], out["format"]) == (4, "data/sample.csv", "csv")
    assert out["result"] == [{**user, "age": str(user["age"])} for user in USERS]


# --- csv details -----------------------------------------------------------------------------


def test_csv_quotes_bom_blank_lines_and_ragged_rows(root: Path) -> None:
    text = '\ufeffid,note,extra\n1,"a, quoted\nline",x\n\n2,"say ""hi"""\n3,a,b,c\n'
    (root / "tricky.csv").write_text(text, encoding="utf-8")
    out = read(root, path="tricky.csv")
    assert out["columns"] == ["id", "note", "extra", "__EMPTY"]
    assert out["result"] == [
        {"id": "1", "note": "a, quoted\nline", "extra": "x", "__EMPTY": ""},
        {"id": "2", "note": 'say "hi"', "extra": "", "__EMPTY": ""},
        {"id": "3", "note": "a", "extra": "b", "__EMPTY": "c"},
    ]
    kept = read(root, path="tricky.csv", skipEmptyLines=False)
    assert kept["result"][1] == {"id": "", "note": "", "extra": "", "__EMPTY": ""}


def test_csv_duplicate_and_blank_headers_are_named_like_sheetjs(root: Path) -> None:
    (root / "dupes.csv").write_text("a,a,,a\n1,2,3,4\n")
    assert read(root, path="dupes.csv")["result"] == [
        {"a": "1", "a_1": "2", "__EMPTY": "3", "a_2": "4"}
    ]


def test_csv_delimiter_and_encoding(root: Path) -> None:
    (root / "semi.txt").write_bytes("nom;ville\nZoé;Besançon\n".encode("latin-1"))
    out = read(root, path="semi.txt", format="csv", delimiter=";", encoding="latin-1")
    assert out["result"] == [{"nom": "Zoé", "ville": "Besançon"}]
    fails(root, "semi.txt is not utf-8 text .* set `encoding`", path="semi.txt", format="csv")


def test_an_empty_csv(root: Path) -> None:
    (root / "empty.csv").write_text("")
    out = read(root, path="empty.csv")
    assert (out["result"], out["columns"], out["rows"]) == ([], [], 0)
    (root / "header-only.csv").write_text("a,b\n")
    assert read(root, path="header-only.csv")["columns"] == ["a", "b"]


# --- typed cells in generated workbooks ------------------------------------------------------


def test_xlsx_cell_types(root: Path) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Types"
    sheet.append(["when", "day", "flag", "count", "ratio", "blank", "text"])
    sheet.append([datetime(2024, 1, 2, 3, 4, 5), date(2024, 5, 6), True, 7, 0.5, None, "x"])
    sheet.append([None, None, None, None, None, None, None])
    sheet.append([None, None, False, 0, -1.25, None, ""])
    book.save(root / "types.xlsx")
    out = read(root, path="types.xlsx")
    assert out["result"] == [
        {
            "when": "2024-01-02T03:04:05",
            "day": "2024-05-06T00:00:00",
            "flag": True,
            "count": 7,
            "ratio": 0.5,
            "blank": None,
            "text": "x",
        },
        {
            "when": None,
            "day": None,
            "flag": False,
            "count": 0,
            "ratio": -1.25,
            "blank": None,
            "text": None,
        },
    ]


def _ods_cell(text: str | None = None, **attributes: Any) -> TableCell:
    cell = TableCell(**attributes)
    if text is not None:
        cell.addElement(P(text=text))
    return cell


def test_ods_repeats_types_and_trailing_blanks(root: Path) -> None:
    document = OpenDocumentSpreadsheet()
    table = Table(name="Data")
    header = TableRow()
    for name in ("name", "n", "ok", "share", "day", "gap", "after"):
        header.addElement(_ods_cell(name, valuetype="string"))
    header.addElement(_ods_cell(numbercolumnsrepeated=1000))  # trailing blank columns
    table.addElement(header)
    row = TableRow(numberrowsrepeated=2)
    spaced = _ods_cell(valuetype="string")
    paragraph = P(text="two")
    paragraph.addElement(S(c=2))
    paragraph.addText("spaces")
    spaced.addElement(paragraph)
    for cell in (
        spaced,
        _ods_cell("3", valuetype="float", value="3"),
        _ods_cell("TRUE", valuetype="boolean", booleanvalue="true"),
        _ods_cell("25%", valuetype="percentage", value="0.25"),
        _ods_cell("01/02/24", valuetype="date", datevalue="2024-01-02"),
        _ods_cell(numbercolumnsrepeated=1),
        _ods_cell("same", valuetype="string", numbercolumnsrepeated=1),
    ):
        row.addElement(cell)
    table.addElement(row)
    table.addElement(TableRow(numberrowsrepeated=3))  # blank rows between data
    merged = TableRow()
    merged.addElement(_ods_cell("wide", valuetype="string", numbercolumnsspanned=2))
    merged.addElement(CoveredTableCell())
    merged.addElement(_ods_cell("-1.5", valuetype="currency", value="-1.5"))
    table.addElement(merged)
    table.addElement(TableRow(numberrowsrepeated=1_048_000))  # what LibreOffice writes
    document.spreadsheet.addElement(table)
    document.save(str(root / "types.ods"))

    record = {"name": "two  spaces", "n": 3, "ok": True, "share": 0.25, "day": "2024-01-02"}
    record |= {"gap": None, "after": "same"}
    tail = {"name": "wide", "n": None, "ok": -1.5, "share": None, "day": None, "gap": None}
    out = read(root, path="types.ods")
    assert out["result"] == [record, record, {**tail, "after": None}]
    assert out["columns"] == ["name", "n", "ok", "share", "day", "gap", "after"]
    kept = read(root, path="types.ods", skipEmptyLines=False, hasHeaders=False)
    assert kept["rows"] == 7  # header, two repeated rows, three blank ones, the merged row


# --- errors ----------------------------------------------------------------------------------


def test_an_unknown_sheet_lists_the_sheets(root: Path) -> None:
    message = "test-data.xlsx has no sheet 'Orders'; its sheets: 'Users', 'Products', 'Sales'"
    error = fails(root, message, path="test-data.xlsx", sheet="Orders")
    assert (error.code, error.retryable) == ("EXECUTION_FAILED", False)
    fails(root, "has no sheet 3 \\(0-based\\); it has 3: 'Users'", path="test-data.ods", sheet=3)


def test_bad_ranges_are_refused_before_running() -> None:
    for bad in ("A0", "1A:B2", "A1:B2:C3", "A1-B2", "", "XFE1", "A1:"):
        with pytest.raises(ValidationError, match="range"):
            SpreadsheetParameters.model_validate({"path": "x.csv", "range": bad})


def test_other_bad_parameters_are_refused_before_running() -> None:
    for bad in (
        {"sheet": -1},
        {"delimiter": ";;"},
        {"delimiter": '"'},
        {"encoding": "klingon"},
        {"format": "numbers"},
    ):
        with pytest.raises(ValidationError):
            SpreadsheetParameters.model_validate({"path": "x.csv", **bad})
    with pytest.raises(ValidationError, match="path"):
        SpreadsheetParameters.model_validate({"path": ""})


def test_missing_files_and_folders(root: Path) -> None:
    error = fails(root, "spreadsheet nope.csv does not exist", path="nope.csv")
    assert error.retryable is False
    (root / "folder.csv").mkdir()
    fails(root, "spreadsheet folder.csv is not a file", path="folder.csv")


def test_unsupported_formats(root: Path) -> None:
    fails(
        root,
        r"\.png is not a supported spreadsheet format \(csv, tsv, xlsx, ods\)",
        path="sample-photo.png",
    )
    fails(root, "cannot read sample-photo.png as xlsx", path="sample-photo.png", format="xlsx")
    fails(root, "cannot read sample-photo.png as ods", path="sample-photo.png", format="ods")
    error = fails(root, "cannot read test-data.csv as xlsx", path="test-data.csv", format="xlsx")
    assert str(root) not in str(error)


def test_paths_stay_in_the_files_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.csv"
    outside.write_text("secret\n1\n")
    with pytest.raises(OutsideFilesRoot):
        read(root, path="../outside.csv")
    (root / "link.csv").symlink_to(outside)
    with pytest.raises(OutsideFilesRoot):
        read(root, path="link.csv")
    relative = outside.relative_to("/").as_posix()
    with pytest.raises(NodeError, match=f"spreadsheet {relative} does not exist") as caught:
        read(root, path=str(outside))  # an absolute path starts at the files root
    assert not isinstance(caught.value, OutsideFilesRoot)
    (root / outside.relative_to("/")).parent.mkdir(parents=True)
    shutil.copy(root / "test-data.csv", root / outside.relative_to("/"))  # re-rooted
    assert read(root, path=str(outside))["path"] == relative
    with pytest.raises(NodeError, match="spreadsheet etc/passwd does not exist"):
        read(root, path="/etc/passwd")
    with pytest.raises(OutsideFilesRoot):
        read(root, path="/../outside.csv")
    assert read(root, path=str(root / "test-data.csv"))["path"] == "test-data.csv"
    assert outside.read_text() == "secret\n1\n"


# --- helpers ---------------------------------------------------------------------------------


def test_column_letters_round_trip() -> None:
    for index, letters in [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA")]:
        assert column_letters(index) == letters
        assert column_index(letters) == index
        assert column_index(letters.lower()) == index


def test_cell_ranges_parse_in_any_corner_order() -> None:
    assert CellRange.parse("A1:C10") == CellRange(0, 10, 0, 3)
    assert CellRange.parse("C10:A1") == CellRange(0, 10, 0, 3)
    assert CellRange.parse("b2") == CellRange(1, 2, 1, 2)
