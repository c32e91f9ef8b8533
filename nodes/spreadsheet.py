"""`spreadsheet`: read csv, tsv, xlsx and ods files under the files root into records."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain, islice, repeat
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import openpyxl
from odf import teletype
from odf.namespaces import OFFICENS, TABLENS, TEXTNS
from odf.office import Spreadsheet as OdfSpreadsheet
from odf.opendocument import load as load_odf
from pydantic import AliasChoices, Field, field_validator, model_validator

from nodes.base import Node, NodeContext, NodeParameters
from nodes.errors import InvalidParameters, NodeError
from nodes.files import resolve_in_root

Format = Literal["csv", "tsv", "xlsx", "ods"]
# Formats Atomiton's SheetJS reads that Conductor has no reader for: accepted, refused at run.
Unsupported = Literal["xls", "xlsb", "fods"]
TEXT_FORMATS = ("csv", "tsv")
Cell = str | int | float | bool | None

_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".ods": "ods",
}
_ALIASES = {"filePath": "path", "sheetName": "sheet", "sheetIndex": "sheet"}
_CELL = re.compile(r"\$?([A-Za-z]{1,3})\$?([1-9]\d{0,6})")
MAX_ROWS = 1_048_576  # Excel's and LibreOffice's sheet size: repeated rows never expand past it
MAX_COLUMNS = 16_384


@dataclass(frozen=True)
class CellRange:
    """An A1 range as 0-based, end-exclusive row and column bounds."""

    first_row: int
    end_row: int
    first_column: int
    end_column: int

    @classmethod
    def parse(cls, text: str) -> CellRange:
        """`A1:C10` or a single cell `B2`; the corners may come in any order."""
        corners = text.strip().split(":")
        matches = [_CELL.fullmatch(corner.strip()) for corner in corners]
        if not 1 <= len(corners) <= 2 or not all(matches):
            raise ValueError(f"{text!r} is not an A1 range such as 'A1:C10'")
        cells = [(int(m.group(2)) - 1, column_index(m.group(1))) for m in matches if m]
        rows, columns = [row for row, _ in cells], [column for _, column in cells]
        if max(columns) >= MAX_COLUMNS:
            raise ValueError(
                f"{text!r} goes past the last column, {column_letters(MAX_COLUMNS - 1)}"
            )
        return cls(min(rows), max(rows) + 1, min(columns), max(columns) + 1)


def column_index(letters: str) -> int:
    """`A` as 0, `Z` as 25, `AA` as 26."""
    index = 0
    for letter in letters.upper():
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1


def column_letters(index: int) -> str:
    """0 as `A`, 26 as `AA`."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


class SpreadsheetParameters(NodeParameters):
    """Parameters of `spreadsheet`. Atomiton's spellings are accepted too: `filePath` for
    `path`, `sheetName` or `sheetIndex` for `sheet`."""

    path: str | None = Field(
        default=None,
        min_length=1,
        validation_alias=AliasChoices("path", "filePath"),
        description="The file, under the files root (alias: filePath); wins over `data`",
    )
    data: str | None = Field(
        default=None, description="csv or tsv text to read when there is no `path`"
    )
    format: Format | Unsupported | None = Field(
        default=None, description="Default: from the file extension; csv for `data`"
    )
    hasHeaders: bool = Field(default=True, description="The first row names the columns")
    sheet: str | Annotated[int, Field(ge=0)] | None = Field(
        default=None,
        validation_alias=AliasChoices("sheet", "sheetName", "sheetIndex"),
        description="Sheet name or 0-based index (xlsx, ods); default: the first",
    )
    range: str | None = Field(default=None, description="Cells to read, such as A1:C10")
    delimiter: str | None = Field(default=None, description="csv/tsv: default , or tab")
    encoding: str = Field(default="utf-8", description="csv/tsv text encoding")
    skipEmptyLines: bool = Field(default=True, description="Leave out rows with no values")

    @model_validator(mode="before")
    @classmethod
    def _drop_shadowed_aliases(cls, data: Any) -> Any:
        """An input port overrides a parameter by its own name; it then wins over an alias."""
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if _ALIASES.get(k) not in data}
        return data

    @field_validator("data", mode="before")
    @classmethod
    def _node_output_stands_for_its_result(cls, value: Any) -> Any:
        """A port `data` fed a whole node output (a file read): its `result`."""
        if isinstance(value, dict) and isinstance(value.get("result"), str):
            return value["result"]
        return value

    @field_validator("range")
    @classmethod
    def _range_parses(cls, value: str | None) -> str | None:
        if value is not None:
            CellRange.parse(value)
        return value

    @field_validator("delimiter")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in '"\r\n'):
            raise ValueError("must be one character, not a quote or a line break")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r}") from None
        return value


@dataclass(frozen=True)
class _Request:
    """One file to read, and how."""

    source: Path
    shown: str  # the path as outputs and messages show it: relative to the files root
    kind: Format
    params: SpreadsheetParameters
    cells: CellRange | None
    text: str | None = None  # the `data` parameter's text, read instead of `source`

    def unreadable(self, exc: Exception) -> NodeError:
        """A damaged or foreign file, described without the host's folders."""
        reason = f"{type(exc).__name__}: {exc}".replace(str(self.source), self.shown)
        return NodeError(f"cannot read {self.shown} as {self.kind}: {reason}", retryable=False)


@dataclass(frozen=True)
class _Sheet:
    """What a reader found: the rows of one sheet (in the range), and every sheet's name."""

    rows: list[list[Cell]]
    name: str | None = None
    names: tuple[str, ...] = ()


class SpreadsheetNode(Node[SpreadsheetParameters]):
    """Read one sheet of a csv, tsv, xlsx or ods file under the files root into records:
    objects keyed by the header row, or lists when `hasHeaders` is false. Values keep the
    file's types (csv values are strings; numbers in xlsx and ods stay numbers; dates
    become ISO strings)."""

    type_name = "spreadsheet"
    description = "Read csv, tsv, xlsx and ods spreadsheets"
    parameters_model = SpreadsheetParameters

    def run(self, params: SpreadsheetParameters, context: NodeContext) -> Mapping[str, Any]:
        try:
            return self._read(params, context)
        except OSError as exc:  # a name too long, a file it may not read: named as given
            reason = exc.strerror or str(exc) or type(exc).__name__  # strerror: no file name
            raise NodeError(f"spreadsheet {params.path!r}: {reason}", retryable=False) from None

    def _read(self, params: SpreadsheetParameters, context: NodeContext) -> Mapping[str, Any]:
        cells = CellRange.parse(params.range) if params.range else None
        if params.path:
            request = _file_request(params, context.environment.files_root.resolve(), cells)
        elif params.data:
            request = _text_request(params, cells)
        else:
            raise InvalidParameters(
                "spreadsheet needs `path` (a file) or `data` (csv text); neither was given"
            )
        sheet = _READERS[request.kind](request)
        text = request.kind in TEXT_FORMATS
        first_column = cells.first_column if cells else 0
        columns, records = _records(sheet.rows, params, "" if text else None, first_column)
        return {
            "result": records,
            "data": records,
            "records": records,
            "headers": _record_keys(records, columns, params.hasHeaders),
            "rowCount": len(records),
            "rows": len(records),
            "columns": columns,
            "sheet": sheet.name,
            "sheets": list(sheet.names),
            # A csv or tsv text is one sheet, named as SheetJS names it.
            "sheetName": sheet.name or "Sheet1",
            "sheetNames": list(sheet.names) or ["Sheet1"],
            "format": request.kind,
            "path": None if request.text is not None else request.shown,
            "success": True,
            **({"delimiter": _delimiter(request)} if text else {}),
        }


def _file_request(params: SpreadsheetParameters, root: Path, cells: CellRange | None) -> _Request:
    """Reading the file at `path`: it must exist; its format from `format` or its name."""
    source = resolve_in_root(root, params.path or "")
    shown = source.relative_to(root).as_posix()
    if not source.is_file():
        what = "is not a file" if source.exists() else "does not exist"
        raise NodeError(f"spreadsheet {shown} {what}", retryable=False)
    kind = _supported(params.format, shown) or _format_of(source, shown)
    return _Request(source, shown, kind, params, cells)


def _text_request(params: SpreadsheetParameters, cells: CellRange | None) -> _Request:
    """Reading the `data` text: csv unless `format` says tsv."""
    kind = _supported(params.format, "data") or "csv"
    if kind not in TEXT_FORMATS:
        raise InvalidParameters(f"data holds csv or tsv text; {kind} needs a file in `path`")
    return _Request(Path(), "data", kind, params, cells, text=params.data)


def _supported(kind: Format | Unsupported | None, shown: str) -> Format | None:
    """`format` when Conductor can read it; xls, xlsb and fods are refused naming them."""
    if kind in ("xls", "xlsb", "fods"):
        message = f"cannot read {shown}: {kind} is not supported (csv, tsv, xlsx, ods); "
        raise NodeError(message + "save it as xlsx or ods", retryable=False)
    return cast("Format | None", kind)


def _delimiter(request: _Request) -> str:
    """The delimiter a csv or tsv was read with."""
    return request.params.delimiter or ("\t" if request.kind == "tsv" else ",")


def _record_keys(records: list[Any], columns: list[str], has_headers: bool) -> list[str]:
    """Atomiton's `headers`: the keys of the first record ("0", "1"... for lists); the header
    row's names when there are no records."""
    if not records:
        return columns if has_headers else []
    first = records[0]
    return list(first) if isinstance(first, dict) else [str(i) for i in range(len(first))]


def _format_of(source: Path, shown: str) -> Format:
    kind = _EXTENSIONS.get(source.suffix.lower())
    if kind is None:
        raise NodeError(
            f"cannot read {shown}: {source.suffix or 'no extension'} is not a supported "
            "spreadsheet format (csv, tsv, xlsx, ods); set `format` if the extension is wrong",
            retryable=False,
        )
    return kind


def _read_text(request: _Request) -> _Sheet:
    """csv and tsv: every value a string, as the file has it (no type guessing)."""
    params, shown = request.params, request.shown
    delimiter = _delimiter(request)
    # utf-8-sig also drops the byte-order mark spreadsheet programs put in front.
    utf8 = codecs.lookup(params.encoding).name == "utf-8"
    encoding = "utf-8-sig" if utf8 else params.encoding
    opened = (
        io.StringIO(request.text, newline="")
        if request.text is not None
        else request.source.open(encoding=encoding, newline="")
    )
    with opened as stream:
        reader = csv.reader(stream, delimiter=delimiter)
        try:
            rows: list[list[Cell]] = list(_within(reader, request.cells))
        except UnicodeDecodeError as exc:
            message = f"{shown} is not {params.encoding} text ({exc.reason}); set `encoding`"
            raise NodeError(message, retryable=False) from None
        except csv.Error as exc:
            raise NodeError(f"{shown} line {reader.line_num}: {exc}", retryable=False) from None
    return _Sheet(rows)


def _read_xlsx(request: _Request) -> _Sheet:
    """xlsx: cached values of formulas (what Excel last computed), typed as stored."""
    try:
        book = openpyxl.load_workbook(request.source, read_only=True, data_only=True)
    except Exception as exc:  # a damaged or foreign file fails in many ways inside openpyxl
        raise request.unreadable(exc) from None
    try:
        sheets = book.worksheets  # chartsheets hold no cells and are left out
        names = tuple(sheet.title for sheet in sheets)
        index = _pick(names, request.params.sheet, request.shown)
        rows = sheets[index].iter_rows(values_only=True)
        found = [[_typed(value) for value in row] for row in _within(rows, request.cells)]
    finally:
        book.close()
    return _Sheet(found, names[index], names)


def _read_ods(request: _Request) -> _Sheet:
    """ods: floats, percentages and currencies as numbers, booleans, dates as ISO text."""
    try:
        document = load_odf(str(request.source))
    except Exception as exc:  # odfpy raises whatever zipfile or the XML parser raised
        raise request.unreadable(exc) from None
    # odfpy's own `document.spreadsheet` is a whitespace node when content.xml is indented.
    tables = [
        child
        for body in document.body.getElementsByType(OdfSpreadsheet)
        for child in body.childNodes
        if _named(child, TABLENS, "table")
    ]
    names = tuple(str(table.getAttrNS(TABLENS, "name")) for table in tables)
    index = _pick(names, request.params.sheet, request.shown)
    found = list(_within(_ods_rows(tables[index]), request.cells))
    return _Sheet(found, names[index], names)


_READERS: dict[str, Callable[[_Request], _Sheet]] = {
    "csv": _read_text,
    "tsv": _read_text,
    "xlsx": _read_xlsx,
    "ods": _read_ods,
}


def _within(rows: Iterable[Iterable[Any]], cells: CellRange | None) -> Iterator[list[Any]]:
    """The rows and columns of `cells` (all of them without a range)."""
    if cells is None:
        yield from (list(row) for row in rows)
        return
    for row in islice(rows, cells.first_row, cells.end_row):
        yield list(row)[cells.first_column : cells.end_column]


def _pick(names: tuple[str, ...], wanted: str | int | None, shown: str) -> int:
    """The index of the wanted sheet; an unknown one is refused with the sheets listed."""
    listing = ", ".join(repr(name) for name in names) or "none"
    if not names:
        raise NodeError(f"{shown} has no sheets", retryable=False)
    if wanted is None:
        return 0
    if isinstance(wanted, int):
        if wanted >= len(names):
            message = f"{shown} has no sheet {wanted} (0-based); it has {len(names)}: {listing}"
            raise NodeError(message, retryable=False)
        return wanted
    if wanted not in names:
        raise NodeError(f"{shown} has no sheet {wanted!r}; its sheets: {listing}", retryable=False)
    return names.index(wanted)


def _records(
    rows: list[list[Cell]], params: SpreadsheetParameters, fill: Cell, first_column: int
) -> tuple[list[str], list[Any]]:
    """Column names and records: objects by header, or lists when there is no header row."""
    if params.skipEmptyLines:
        rows = [row for row in rows if any(value not in (None, "") for value in row)]
    width = max((_used_width(row) for row in rows), default=0)
    table = [(row + [fill] * width)[:width] for row in rows]
    if not params.hasHeaders:
        return [column_letters(first_column + i) for i in range(width)], table
    if not table:
        return [], []
    headers = _headers(table[0])
    return headers, [dict(zip(headers, row, strict=True)) for row in table[1:]]


def _used_width(row: list[Cell]) -> int:
    """Length without trailing empty cells."""
    for index in range(len(row), 0, -1):
        if row[index - 1] not in (None, ""):
            return index
    return 0


def _headers(row: list[Cell]) -> list[str]:
    """Header names as SheetJS makes them: `__EMPTY` for blanks, `name_1` for repeats."""
    seen: dict[str, int] = {}
    names = []
    for value in row:
        base = "__EMPTY" if value in (None, "") else _text(value)
        count = seen.get(base, 0)
        seen[base] = count + 1
        names.append(f"{base}_{count}" if count else base)
    return names


def _text(value: Cell) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _typed(value: Any) -> Cell:
    """An openpyxl value as JSON can carry it: dates and times as ISO text."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _ods_rows(table: Any) -> Iterator[list[Cell]]:
    """Rows of an ods table, repeats expanded; trailing blank rows (often a million) dropped."""
    blank = emitted = 0
    for row in _ods_row_elements(table):
        times = int(row.getAttrNS(TABLENS, "number-rows-repeated") or 1)
        cells = _ods_cells(row)
        if not cells:
            blank += times
            continue
        for values in chain(repeat([], blank), repeat(cells, times)):
            if emitted >= MAX_ROWS:
                return
            yield list(values)
            emitted += 1
        blank = 0


def _ods_row_elements(parent: Any) -> Iterator[Any]:
    """Table rows in order, also those inside header-rows, row-groups and rows elements."""
    for child in parent.childNodes:
        if _named(child, TABLENS, "table-row"):
            yield child
        elif _named(child, TABLENS, "table-header-rows", "table-row-group", "table-rows"):
            yield from _ods_row_elements(child)


def _ods_cells(row: Any) -> list[Cell]:
    """A row's values, repeats expanded, without trailing empty cells."""
    values: list[Cell] = []
    blank = 0
    for cell in row.childNodes:
        if not _named(cell, TABLENS, "table-cell", "covered-table-cell"):
            continue
        times = int(cell.getAttrNS(TABLENS, "number-columns-repeated") or 1)
        value = _ods_value(cell)
        if value is None:
            blank += times
            continue
        values.extend([None] * blank)
        blank = 0
        values.extend([value] * max(0, min(times, MAX_COLUMNS - len(values))))
    return values


def _ods_value(cell: Any) -> Cell:
    kind = cell.getAttrNS(OFFICENS, "value-type")
    if kind in ("float", "percentage", "currency"):
        return _number(str(cell.getAttrNS(OFFICENS, "value")))
    if kind == "boolean":
        return str(cell.getAttrNS(OFFICENS, "boolean-value")).lower() == "true"
    if kind == "date":
        return str(cell.getAttrNS(OFFICENS, "date-value"))
    if kind == "time":
        return str(cell.getAttrNS(OFFICENS, "time-value"))
    text = "\n".join(teletype.extractText(p) for p in cell.childNodes if _named(p, TEXTNS, "p"))
    string_value = cell.getAttrNS(OFFICENS, "string-value")
    if string_value is not None:
        return str(string_value)
    return text if kind == "string" or text else None


def _number(text: str) -> int | float:
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


def _named(node: Any, namespace: str, *names: str) -> bool:
    qname = getattr(node, "qname", None)
    return qname is not None and qname[0] == namespace and qname[1] in names
