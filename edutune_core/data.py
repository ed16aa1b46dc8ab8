"""Loading of uploaded gradebooks and essay tables (CSV, TSV, XLSX, XLS) into clean frames.

The format comes from the file's content, never from its extension. Every cell is read
as text first. A column becomes numeric only when all its non-blank cells are numbers
and it does not look like an identifier, so student numbers such as ``007`` or
``2024010100001`` stay exactly as typed.
"""

from __future__ import annotations

import io
import logging
import math
import os
import re
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pandas as pd
import xlrd

from edutune_core import _text_tables
from edutune_core._headers import (
    NUMBER, cell_text, detect_header_row, find_header, is_blank, is_number_cell, parse_number,
)
from edutune_core._text_tables import SEPARATOR_LABELS, SUPPORTED_ENCODINGS
from edutune_core.i18n import DataError

__all__ = ["LoadedTable", "MAX_FILE_BYTES", "SUPPORTED_ENCODINGS", "cell_number", "check_file_size",
           "is_missing_cell", "load_table", "read_table_file", "sheet_names"]

logger = logging.getLogger(__name__)

MAX_FILE_BYTES = 200 * 1024 * 1024

_XLSX_MAGIC = b"PK\x03\x04"
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_BINARY_SIGNATURES = (
    (b"%PDF", "PDF"), (b"\x89PNG", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"),
    (b"\x1f\x8b", "GZIP"), (b"Rar!", "RAR"), (b"7z\xbc\xaf", "7-Zip"), (b"{\\rtf", "RTF"),
)
# Some school systems export HTML pages named .xls, which must be saved again as a real workbook.
_HTML_PREFIXES = (b"<!doctype html", b"<html", b"<table")
_ZIP_KINDS = (("word/", "Word (.docx)"), ("ppt/", "PowerPoint (.pptx)"), ("xl/workbook.bin", "Excel (.xlsb)"))

_MISSING_TOKENS = frozenset({"", "na", "n/a", "-", "nan", "null", "#n/a"})
# The patterns spell digits as [0-9] because pandas runs them through Python's re or
# pyarrow's RE2, and the two define \d differently. NUMBER (decimal points) is in _headers.
_COMMA_NUMBER = re.compile(r"[+-]?[0-9]+(?:,[0-9]+)?")
_INTEGER = re.compile(r"[+-]?[0-9]+")
# Integers of 12 or more digits show in scientific notation as float64, and those past
# 2**53 (16 digits) lose digits. Numbers with a leading zero lose it. Both stay text.
_IDENTIFIER = re.compile(r"[+-]?[0-9]{12,}|0[0-9]+")
# Workbook number cells from this size on (12 digits) are IDs and become text, as in CSV.
_IDENTIFIER_MIN = 10**11
# Excel keeps 15 significant digits, so a 16-digit or longer number typed into a cell
# has already lost its last digits when the file is saved.
_EXCEL_DIGITS = 15
_EXCEL_EXACT_MAX = 10**_EXCEL_DIGITS


@dataclass
class LoadedTable:
    """A cleaned table and how it was read from the uploaded file."""

    frame: pd.DataFrame  # column names are str
    file_name: str
    file_format: str  # "csv", "xlsx" or "xls", from the content
    encoding: str | None  # codec used for a text file, None for workbooks
    separator: str | None  # "," ";" "\t" "|" or the override for a text file, None for workbooks
    sheet: str | None  # sheet read from a workbook, None for text files
    sheet_names: list[str] = field(default_factory=list)  # all sheets of a workbook
    header_row: int = 0  # 0-based row (record, for text files) of the first header row
    header_rows: int = 1  # 2 when a row of group names above the column names was flattened
    dropped_empty_rows: int = 0  # blank rows below the header that were removed
    decimal_comma: bool = False  # True when "14,5" style decimals were converted
    # Workbook columns of number cells with 16 or more digits, kept as text. Excel stores
    # only 15 significant digits, so their last digits may differ from the real IDs.
    rounded_id_columns: list[str] = field(default_factory=list)


@dataclass
class _RawTable:
    """A table before cleaning, with every row of the file or sheet, title and header rows included."""

    cells: pd.DataFrame
    file_format: str
    encoding: str | None = None
    separator: str | None = None
    sheet: str | None = None
    sheet_names: list[str] = field(default_factory=list)
    header_row: int | None = None  # found while parsing a text file, None for workbooks


def read_table_file(path: str | os.PathLike, **overrides) -> LoadedTable:
    """Read a table file from disk and load it with ``load_table``, passing ``overrides`` on."""
    path = Path(path)
    check_file_size(path.name, path.stat().st_size)
    return load_table(path.read_bytes(), path.name, **overrides)


def check_file_size(file_name: str, size: int) -> None:
    """Raise ``data.file_too_large`` when ``size`` bytes exceed ``MAX_FILE_BYTES``.

    The web server accepts larger uploads (``server.maxUploadSize`` in
    ``.streamlit/config.toml``), so that this check, with its message in the reader's
    language, is the one that rejects an oversize file.
    """
    if size > MAX_FILE_BYTES:
        raise _too_large_error(file_name, size)


def load_table(
    data: bytes, file_name: str, *, encoding: str | None = None, separator: str | None = None,
    sheet: str | None = None, header_row: int | None = None, header_rows: int | None = None,
) -> LoadedTable:
    """Load an uploaded CSV, TSV, XLSX or XLS file into a cleaned table.

    ``encoding`` and ``separator`` apply to text files and ``sheet`` to workbooks; each
    is detected when left out. ``header_row`` is the 0-based row (record, for text
    files) that contains the column names, or their group names when ``header_rows``
    is 2. A two-row header ("Term 1" above "Quiz", "Essay") is detected when
    ``header_rows`` is left out, and its names are flattened to "Term 1 / Quiz".

    Raises:
        DataError: the file is empty, too large, not a table, damaged or unreadable
            with the given overrides, or has no data rows below its header.
        ValueError: ``separator`` is not one character, ``header_row`` is negative or
            ``header_rows`` is not 1 or 2.
    """
    _check_arguments(separator, header_row, header_rows)
    check_file_size(file_name, len(data))
    if not data:
        raise DataError("data.empty_file", file=file_name)
    file_format = _detect_format(data, file_name)
    if file_format == "csv":
        raw = _read_text(data, file_name, encoding, separator, header_row)
    else:
        raw = _read_workbook(data, file_name, file_format, sheet)
    return _clean(raw, file_name, header_row, header_rows)


def _check_arguments(separator: str | None, header_row: int | None, header_rows: int | None) -> None:
    if separator is not None and (len(separator) != 1 or separator in "\"\r\n"):
        raise ValueError(f"separator must be one character other than a quote or newline, got {separator!r}")
    if header_row is not None and header_row < 0:
        raise ValueError(f"header_row must be 0 or more, got {header_row}")
    if header_rows not in (None, 1, 2):
        raise ValueError(f"header_rows must be 1 or 2, got {header_rows}")


def _too_large_error(file_name: str, size: int) -> DataError:
    return DataError(
        "data.file_too_large", file=file_name, size_mb=f"{size / 2**20:.1f}", max_mb=MAX_FILE_BYTES // 2**20
    )


def sheet_names(data: bytes, file_name: str) -> list[str]:
    """Return the sheet names of a workbook, or an empty list for a text file or a
    workbook that cannot be opened, so a page can offer every sheet after a failed load."""
    if not data or len(data) > MAX_FILE_BYTES:
        return []
    try:
        file_format = _detect_format(data, file_name)
        if file_format == "xlsx":
            with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as workbook:
                return [str(name) for name in workbook.sheet_names]
        if file_format == "xls":
            return xlrd.open_workbook(file_contents=data, on_demand=True).sheet_names()
    except DataError:
        return []
    except Exception as exc:  # noqa: BLE001 - damaged workbooks raise zip, XML, xlrd, key and value errors
        logger.debug("%s: sheet names not readable: %r", file_name, exc)
    return []


def _detect_format(data: bytes, file_name: str) -> str:
    """Return "xlsx", "xls" or "csv" from the leading bytes, or raise for other files."""
    if data.startswith(_XLSX_MAGIC):
        return _check_zip_workbook(data, file_name)
    if data.startswith(_XLS_MAGIC):
        return "xls"
    for signature, kind in _BINARY_SIGNATURES:
        if data.startswith(signature):
            raise DataError("data.unsupported_format", file=file_name, kind=kind)
    if data[:512].lstrip().lower().startswith(_HTML_PREFIXES):
        raise DataError("data.unsupported_format", file=file_name, kind="HTML")
    return "csv"


def _check_zip_workbook(data: bytes, file_name: str) -> str:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        raise DataError("data.corrupt_excel", file=file_name) from None
    if "xl/workbook.xml" in names:
        return "xlsx"
    kind = next((kind for prefix, kind in _ZIP_KINDS if any(n.startswith(prefix) for n in names)), "ZIP")
    raise DataError("data.unsupported_format", file=file_name, kind=kind)


def _read_text(
    data: bytes, file_name: str, encoding: str | None, separator: str | None, header_row: int | None
) -> _RawTable:
    text, used_encoding = _text_tables.decode_text(data, file_name, encoding)
    if not text.strip():
        raise DataError("data.empty_file", file=file_name)
    detected, detected_columns = _text_tables.sniff_separator(text)
    used_separator = separator or detected
    # The header is found on the first records before the full parse, so that the parse
    # gets the table width and rejects longer rows instead of silently adding columns.
    records = _text_tables.sample_records(text, used_separator)
    if header_row is None:
        header_row = detect_header_row(_text_tables.records_frame(records))
    width = _text_tables.table_width(records, header_row)
    if separator is not None and width == 1 and detected != separator and detected_columns > 1:
        raise DataError(
            "data.separator_mismatch", file=file_name, separator=SEPARATOR_LABELS.get(separator, separator),
            detected=SEPARATOR_LABELS[detected], columns=detected_columns,
        )
    cells = _text_tables.read_raw_text(text, used_separator, file_name, width)
    logger.debug("%s: text, encoding %s, separator %r", file_name, used_encoding, used_separator)
    return _RawTable(cells, "csv", encoding=used_encoding, separator=used_separator, header_row=header_row)


def _read_workbook(data: bytes, file_name: str, file_format: str, sheet: str | None) -> _RawTable:
    read = _read_xlsx if file_format == "xlsx" else _read_xls
    try:
        names, chosen, cells = read(data, file_name, sheet)
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged workbooks raise zip, XML, xlrd, key and value errors
        logger.debug("%s: %s workbook failed to open: %r", file_name, file_format, exc)
        raise DataError("data.corrupt_excel", file=file_name) from None
    if chosen is None:
        raise DataError("data.empty_file", file=file_name)
    if _is_blank_sheet(cells):
        raise DataError("data.empty_sheet", file=file_name, sheet=chosen)
    logger.debug("%s: %s workbook, sheets %s, using %r", file_name, file_format, names, chosen)
    return _RawTable(cells, file_format, sheet=chosen, sheet_names=names)


def _read_xlsx(data: bytes, file_name: str, sheet: str | None) -> tuple[list[str], str | None, pd.DataFrame]:
    with pd.ExcelFile(io.BytesIO(data), engine="openpyxl") as workbook:
        names = [str(name) for name in workbook.sheet_names]
        chosen, cells = _pick_sheet(
            names, lambda name: pd.read_excel(workbook, sheet_name=name, header=None, dtype=object), sheet, file_name
        )
    return names, chosen, cells


def _read_xls(data: bytes, file_name: str, sheet: str | None) -> tuple[list[str], str | None, pd.DataFrame]:
    # xlrd is called directly because the pandas xlrd engine is deprecated from pandas 3.1 on.
    book = xlrd.open_workbook(file_contents=data)
    names = book.sheet_names()
    chosen, cells = _pick_sheet(names, lambda name: _xls_sheet_cells(book, name), sheet, file_name)
    return names, chosen, cells


def _xls_sheet_cells(book: xlrd.book.Book, name: str) -> pd.DataFrame:
    sheet = book.sheet_by_name(name)
    rows = [[_xls_cell_value(cell, book.datemode) for cell in sheet.row(index)] for index in range(sheet.nrows)]
    return pd.DataFrame(rows, dtype=object)


def _xls_cell_value(cell: xlrd.sheet.Cell, datemode: int) -> object:
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if cell.ctype == xlrd.XL_CELL_DATE:
        return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value)
    if cell.ctype == xlrd.XL_CELL_ERROR:
        return xlrd.error_text_from_code.get(cell.value, "")
    return cell.value


def _pick_sheet(
    names: list[str], read_sheet: Callable[[str], pd.DataFrame], sheet: str | None, file_name: str
) -> tuple[str | None, pd.DataFrame]:
    """Read the requested sheet, or else the first sheet that contains a table.

    A sheet contains a table when it has at least two non-blank rows (a header and a data
    row), so a cover sheet with only a title ("本册为期末成绩") is passed over. When no
    sheet contains a table, the first non-blank sheet is read, and its error explains why.
    Returns ``None`` as the name when every sheet is blank.
    """
    if sheet is not None and sheet not in names:
        raise DataError("data.sheet_not_found", file=file_name, sheet=sheet, sheets=", ".join(names))
    if sheet is not None:
        return sheet, read_sheet(sheet).reset_index(drop=True)
    first_non_blank: tuple[str, pd.DataFrame] | None = None
    for name in names:
        cells = read_sheet(name)
        if _contains_table(cells):
            return name, cells.reset_index(drop=True)
        if first_non_blank is None and not _is_blank_sheet(cells):
            first_non_blank = name, cells.reset_index(drop=True)
    return first_non_blank or (None, pd.DataFrame())


def _is_blank_sheet(cells: pd.DataFrame) -> bool:
    return cells.empty or bool(cells.map(is_blank).all(axis=None))


def _contains_table(cells: pd.DataFrame) -> bool:
    if cells.empty:
        return False
    filled_rows = ~cells.map(is_blank).all(axis=1)
    return int(filled_rows.sum()) >= 2


def _clean(raw: _RawTable, file_name: str, header_row: int | None, header_rows: int | None) -> LoadedTable:
    cells = raw.cells
    cells.columns = range(cells.shape[1])
    if header_row is not None and header_row >= len(cells):
        raise DataError("data.header_row_out_of_range", file=file_name, row=header_row + 1, rows=len(cells))
    header = find_header(cells, header_row, header_rows, raw.header_row)
    body = cells.iloc[header.row + header.rows :]
    blank_rows = body.apply(_blank_cells).all(axis=1)
    body = body[~blank_rows].reset_index(drop=True)
    if body.empty:
        raise DataError("data.no_data_rows", file=file_name, row=header.row + header.rows)
    frame, decimal_comma = _build_frame(header.names, body, allow_decimal_comma=raw.separator != ",")
    rounded = [name for position, name in enumerate(_column_names(header.names))
               if name in frame.columns and _has_excel_rounded_ids(body[position])]
    if rounded:
        logger.warning("%s: columns %s contain numbers of 16 or more digits; Excel keeps 15 significant digits, "
                       "so their last digits may differ from the real IDs", file_name, rounded)
    logger.debug("%s: header row %d (%d rows), %d blank rows dropped, dtypes %s", file_name, header.row,
                 header.rows, int(blank_rows.sum()), dict(frame.dtypes.astype(str)))
    return LoadedTable(
        frame=frame, file_name=file_name, file_format=raw.file_format, encoding=raw.encoding,
        separator=raw.separator, sheet=raw.sheet, sheet_names=raw.sheet_names, header_row=header.row,
        header_rows=header.rows, dropped_empty_rows=int(blank_rows.sum()), decimal_comma=decimal_comma,
        rounded_id_columns=rounded,
    )




def cell_number(value: object, allow_decimal_comma: bool) -> float | None:
    """Read one cell as a number by the rules that convert columns on loading.

    Number cells of a workbook count as they are. Text counts when it is a number with
    a decimal point, or with a decimal comma when ``allow_decimal_comma`` is set.
    Returns None for other text and for missing cells.
    """
    number = parse_number(value)
    if number is not None or not isinstance(value, str):
        return number
    text = value.strip()
    if allow_decimal_comma and _COMMA_NUMBER.fullmatch(text):
        return float(text.replace(",", "."))
    return None


def is_missing_cell(value: object) -> bool:
    """Return whether a cell is blank or a missing-value marker such as NA, N/A or -."""
    return is_blank(value) or (isinstance(value, str) and value.strip().lower() in _MISSING_TOKENS)


def _build_frame(header: list[str], body: pd.DataFrame, allow_decimal_comma: bool) -> tuple[pd.DataFrame, bool]:
    """Name the columns, drop unnamed empty ones and convert each column's type."""
    columns: dict[str, pd.Series] = {}
    decimal_comma = False
    names = _column_names(header)
    for position, name in enumerate(names):
        values = body[position]
        if not header[position] and _blank_cells(values).all():
            continue
        columns[name], used_comma = _convert_column(values, allow_decimal_comma)
        decimal_comma = decimal_comma or used_comma
    return pd.DataFrame(columns), decimal_comma


def _column_names(header: list[str]) -> list[str]:
    """Name blank header cells column_<position> and make every name unique.

    A generated name takes a suffix when the header already has that name, so a
    teacher's own "column_2" keeps its name.
    """
    taken = {name for name in header if name}
    named = []
    for position, name in enumerate(header):
        if not name:
            stem = f"column_{position + 1}"
            name, number = stem, 2
            while name in taken:
                name, number = f"{stem}_{number}", number + 1
            taken.add(name)
        named.append(name)
    return _unique_names(named)


def _unique_names(names: list[str]) -> list[str]:
    """Suffix repeated names with _2, _3 and so on, skipping suffixes that another column already has."""
    header_names = set(names)
    used: set[str] = set()
    unique = []
    for name in names:
        candidate, number = name, 2
        while candidate in used or (candidate != name and candidate in header_names):
            candidate = f"{name}_{number}"
            number += 1
        used.add(candidate)
        unique.append(candidate)
    return unique


def _convert_column(values: pd.Series, allow_decimal_comma: bool) -> tuple[pd.Series, bool]:
    """Convert a column to int64, float64 or datetime64 when every non-blank cell allows it,
    else to text. Also returns whether decimal commas were converted.

    Workbook columns contain Python objects. Their number cells count as numbers as they
    are, and only their text cells go through the text rules.
    """
    if values.dtype == object and _all_dates(values):
        return pd.to_datetime(values.map(lambda value: None if is_blank(value) else value)), False
    is_number = pd.Series(False, index=values.index)
    if values.dtype == object:
        is_number = values.map(is_number_cell).astype(bool)
    if _holds_number_ids(values[is_number]):
        return values.map(_id_text).astype(str), False
    texts = _as_text(values[~is_number]).str.strip()
    missing = texts.str.lower().isin(_MISSING_TOKENS)
    tokens = texts[~missing]
    parsed = _parse_tokens(tokens, allow_decimal_comma) if len(tokens) or is_number.any() else None
    if parsed is None:
        return _as_text(values), False
    parsed_values, used_comma = parsed
    column = pd.Series(math.nan, index=values.index, dtype="float64")
    column[is_number] = values[is_number].astype("float64")
    column[parsed_values.index] = parsed_values
    whole = tokens.str.fullmatch(_INTEGER.pattern).all() and values[is_number].map(_is_integral).all()
    if whole and not missing.any():
        column = column.astype("int64")
    return column, used_comma


def _parse_tokens(tokens: pd.Series, allow_decimal_comma: bool) -> tuple[pd.Series, bool] | None:
    """Parse non-missing text cells as numbers, first with decimal points and then with
    decimal commas. Returns ``None`` when a cell is not a number or looks like an identifier."""
    if tokens.str.fullmatch(_IDENTIFIER.pattern).any():
        return None
    if tokens.str.fullmatch(NUMBER.pattern).all():
        return pd.to_numeric(tokens).astype("float64"), False
    # NOTE: "1,234" is read as 1.234 here. Thousands separators are not recognised, so
    # a column with "1.234,5" or "1,234,567" stays text.
    if allow_decimal_comma and tokens.str.fullmatch(_COMMA_NUMBER.pattern).all():
        return pd.to_numeric(tokens.str.replace(",", ".", regex=False)).astype("float64"), True
    return None


def _all_dates(values: pd.Series) -> bool:
    present = [value for value in values if not is_blank(value)]
    return bool(present) and all(isinstance(value, (datetime, date)) for value in present)




def _holds_number_ids(numbers: pd.Series) -> bool:
    """Tell whether workbook number cells are IDs: all whole numbers, one of 12 or more digits."""
    if numbers.empty or not numbers.map(lambda value: float(value).is_integer()).all():
        return False
    return bool(numbers.map(lambda value: abs(value) >= _IDENTIFIER_MIN).any())


def _id_text(value: object) -> str:
    """Write a workbook cell of an ID column as text, a number cell without a decimal part.

    A number of 2**53 or more is not stored exactly in a double, so it is written as
    Excel shows it, rounded to 15 significant digits.
    """
    if not is_number_cell(value):
        return cell_text(value)
    if abs(value) >= 2**53:
        return str(int(Decimal(f"{float(value):.{_EXCEL_DIGITS}g}")))
    return str(int(value))


def _has_excel_rounded_ids(values: pd.Series) -> bool:
    if values.dtype != object:
        return False
    numbers = values[values.map(is_number_cell).astype(bool)]
    return _holds_number_ids(numbers) and bool(numbers.map(lambda value: abs(value) >= _EXCEL_EXACT_MAX).any())


def _is_integral(value: float) -> bool:
    # Excel stores every number as a double, so 85.0 from a workbook is a whole number.
    return float(value).is_integer() and abs(value) < 2**53


def _blank_cells(values: pd.Series) -> pd.Series:
    if values.dtype == object:
        return values.map(is_blank).astype(bool)
    return values.str.strip().eq("")



def _as_text(values: pd.Series) -> pd.Series:
    if values.dtype == object:
        return values.map(cell_text).astype(str)
    return values

