"""`spreadsheet`: read csv, tsv, xlsx and ods files under the files root into records."""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, cast

from pydantic import AliasChoices, Field, field_validator, model_validator

from nodes.base import Node, NodeContext, NodeParameters, without_shadowed_aliases
from nodes.errors import InvalidParameters, NodeError
from nodes.files import resolve_in_root
from nodes.spreadsheet_readers import (
    MAX_COLUMNS,
    READERS,
    Cell,
    Format,
    SheetRequest,
    delimiter_of,
)

# Formats Atomiton's SheetJS reads that Conductor has no reader for: accepted, refused at run.
Unsupported = Literal["xls", "xlsb", "fods"]
TEXT_FORMATS = ("csv", "tsv")

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
        return without_shadowed_aliases(data, _ALIASES)

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
        sheet = READERS[request.kind](request)
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
            **({"delimiter": delimiter_of(request)} if text else {}),
        }


def _file_request(
    params: SpreadsheetParameters, root: Path, cells: CellRange | None
) -> SheetRequest:
    """Reading the file at `path`: it must exist; its format from `format` or its name."""
    source = resolve_in_root(root, params.path or "")
    shown = source.relative_to(root).as_posix()
    if not source.is_file():
        what = "is not a file" if source.exists() else "does not exist"
        raise NodeError(f"spreadsheet {shown} {what}", retryable=False)
    kind = _supported(params.format, shown) or _format_of(source, shown)
    return SheetRequest(source, shown, kind, params, cells)


def _text_request(params: SpreadsheetParameters, cells: CellRange | None) -> SheetRequest:
    """Reading the `data` text: csv unless `format` says tsv."""
    kind = _supported(params.format, "data") or "csv"
    if kind not in TEXT_FORMATS:
        raise InvalidParameters(f"data holds csv or tsv text; {kind} needs a file in `path`")
    return SheetRequest(Path(), "data", kind, params, cells, text=params.data)


def _supported(kind: Format | Unsupported | None, shown: str) -> Format | None:
    """`format` when Conductor can read it; xls, xlsb and fods are refused naming them."""
    if kind in ("xls", "xlsb", "fods"):
        message = f"cannot read {shown}: {kind} is not supported (csv, tsv, xlsx, ods); "
        raise NodeError(message + "save it as xlsx or ods", retryable=False)
    return cast("Format | None", kind)


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
