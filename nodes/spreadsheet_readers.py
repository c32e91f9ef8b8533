"""The readers behind `spreadsheet`: csv and tsv text, xlsx (openpyxl) and ods (odfpy), each
giving the rows of one sheet within an optional cell range."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import chain, islice, repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import openpyxl
from odf import teletype
from odf.namespaces import OFFICENS, TABLENS, TEXTNS
from odf.office import Spreadsheet as OdfSpreadsheet
from odf.opendocument import load as load_odf

from nodes.errors import NodeError

if TYPE_CHECKING:
    from nodes.spreadsheet import CellRange, SpreadsheetParameters

Format = Literal["csv", "tsv", "xlsx", "ods"]
Cell = str | int | float | bool | None
MAX_ROWS = 1_048_576  # Excel's and LibreOffice's sheet size: repeated rows never expand past it
MAX_COLUMNS = 16_384


@dataclass(frozen=True)
class SheetRequest:
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
class Sheet:
    """What a reader found: the rows of one sheet (in the range), and every sheet's name."""

    rows: list[list[Cell]]
    name: str | None = None
    names: tuple[str, ...] = ()


def delimiter_of(request: SheetRequest) -> str:
    """The delimiter a csv or tsv was read with."""
    return request.params.delimiter or ("\t" if request.kind == "tsv" else ",")


def _read_text(request: SheetRequest) -> Sheet:
    """csv and tsv: every value a string, as the file has it (no type guessing)."""
    params, shown = request.params, request.shown
    delimiter = delimiter_of(request)
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
    return Sheet(rows)


def _read_xlsx(request: SheetRequest) -> Sheet:
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
    return Sheet(found, names[index], names)


def _read_ods(request: SheetRequest) -> Sheet:
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
    return Sheet(found, names[index], names)


READERS: dict[str, Callable[[SheetRequest], Sheet]] = {
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
