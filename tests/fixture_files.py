"""Builders of the data files Atomiton's flows use, made by the tests in their own folders.

The shapes and values match Atomiton's sample data (`test-data.*`, `sample-photo.png`,
`sample-thumbnail.png`) so that tests read the same rows and pixels without any file from
outside the repository.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import openpyxl
from odf.opendocument import OpenDocumentSpreadsheet
from odf.table import Table, TableCell, TableRow
from odf.text import P
from PIL import Image, ImageDraw

Cell = str | int | float
Rows = Sequence[Sequence[Cell]]

USERS: Rows = [
    ["name", "age", "email", "city"],
    ["Alice", 30, "alice@example.com", "New York"],
    ["Bob", 25, "bob@example.com", "Los Angeles"],
    ["Charlie", 35, "charlie@example.com", "Chicago"],
    ["Diana", 28, "diana@example.com", "Houston"],
]
PRODUCTS: Rows = [
    ["product", "price", "stock", "category"],
    ["Laptop", 999.99, 15, "Electronics"],
    ["Mouse", 29.99, 100, "Electronics"],
    ["Desk", 299.99, 25, "Furniture"],
    ["Chair", 199.99, 40, "Furniture"],
]
SALES: Rows = [
    ["date", "amount", "region", "product_id"],
    ["2024-01-01", 1500, "North", 1],
    ["2024-01-02", 2300.5, "South", 2],
    ["2024-01-03", 1800.75, "East", 3],
]
MORE_USERS: Rows = [
    ["name", "age", "email", "city"],
    ["Eve", 29, "eve@example.com", "Phoenix"],
    ["Frank", 32, "frank@example.com", "Philadelphia"],
    ["Grace", 27, "grace@example.com", "San Antonio"],
]
WORKBOOK = {"Users": USERS, "Products": PRODUCTS, "Sales": SALES}

STEELBLUE = (70, 130, 180)
SKY_LOW = (135, 190, 230)
GRASS = (34, 139, 34)
PHOTO_SIZE = (1200, 800)
HORIZON = 500


def write_delimited(path: Path, rows: Rows, delimiter: str) -> Path:
    """A csv or tsv file of `rows`, every value written as text."""
    with path.open("w", newline="", encoding="utf-8") as stream:
        csv.writer(stream, delimiter=delimiter, lineterminator="\n").writerows(rows)
    return path


def write_xlsx(path: Path, sheets: dict[str, Rows]) -> Path:
    """An xlsx workbook with one sheet per entry, numbers stored as numbers."""
    book = openpyxl.Workbook()
    default = book.active
    assert default is not None
    book.remove(default)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(list(row))
    book.save(path)
    return path


def _ods_cell(value: Cell) -> TableCell:
    """One ods cell typed as LibreOffice stores it: numbers are floats, the rest strings."""
    if isinstance(value, str):
        cell = TableCell(valuetype="string")
    else:
        cell = TableCell(valuetype="float", value=str(value))
    cell.addElement(P(text=str(value)))
    return cell


def write_ods(path: Path, sheets: dict[str, Rows]) -> Path:
    """An ods spreadsheet with one table per entry."""
    document = OpenDocumentSpreadsheet()
    for name, rows in sheets.items():
        table = Table(name=name)
        for row in rows:
            table_row = TableRow()
            for value in row:
                table_row.addElement(_ods_cell(value))
            table.addElement(table_row)
        document.spreadsheet.addElement(table)
    document.save(str(path))
    return path


def sample_photo() -> Image.Image:
    """A 1200x800 opaque RGBA scene: steel-blue sky fading down, sun, house, green ground."""
    width = PHOTO_SIZE[0]
    image = Image.new("RGBA", PHOTO_SIZE, (*GRASS, 255))
    draw = ImageDraw.Draw(image)
    for y in range(HORIZON):  # a gradient: only the top rows are pure steel blue, like Atomiton's
        colour = tuple(
            round(a + (b - a) * y / HORIZON) for a, b in zip(STEELBLUE, SKY_LOW, strict=True)
        )
        draw.line([(0, y), (width - 1, y)], fill=(*colour, 255))
    draw.ellipse((90, 90, 210, 210), fill=(255, 215, 0, 255))
    draw.polygon([(450, 250), (600, 100), (750, 250)], fill=(220, 20, 60, 255))
    draw.rectangle((450, 250, 749, HORIZON - 1), fill=(139, 69, 19, 255))
    draw.text((480, 720), "Demo Photo 1200x800", fill=(255, 255, 255, 255))
    return image


def sample_thumbnail() -> Image.Image:
    """A 300x200 opaque RGBA image of one colour, steel blue."""
    return Image.new("RGBA", (300, 200), (*STEELBLUE, 255))


def write_atomiton_data(folder: Path) -> Path:
    """Atomiton's sample data files, under their names, in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    write_delimited(folder / "test-data.csv", USERS, ",")
    write_delimited(folder / "test-data-tab.tsv", MORE_USERS, "\t")
    write_xlsx(folder / "test-data.xlsx", WORKBOOK)
    write_xlsx(folder / "test-data-no-headers.xlsx", {"Sheet1": USERS[1:4]})
    write_ods(folder / "test-data.ods", WORKBOOK)
    sample_photo().save(folder / "sample-photo.png")
    sample_thumbnail().save(folder / "sample-thumbnail.png")
    return folder
