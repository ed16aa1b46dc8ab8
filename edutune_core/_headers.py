"""Cell tests and header detection for loaded tables: title rows and two-row headers.

A two-row header has the column names in its lower row and group names in its upper
row. Each group name is written once above the columns that it spans, as a merged cell
in Excel or as a name followed by empty cells in a CSV file. ``find_header`` flattens such a header to one
name per column, such as "Term 1 / Quiz".
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

HEADER_SCAN_ROWS = 50
GROUP_SEPARATOR = " / "
# Digits are spelled [0-9] because pandas runs the pattern through Python's re or
# pyarrow's RE2, and the two define \d differently.
NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass
class Header:
    """The header rows of a table and the column names they give.

    Attributes:
        row: 0-based row of the first header row.
        rows: Number of header rows, 1 or 2.
        names: One name per column, before duplicates are made unique. Empty for a
            column without a name.
    """

    row: int
    rows: int
    names: list[str]


def find_header(cells: pd.DataFrame, header_row: int | None, header_rows: int | None,
                detected_row: int | None = None) -> Header:
    """Find the header rows of ``cells`` and flatten them to column names.

    Args:
        cells: Every row of the file or sheet, with integer column labels.
        header_row: The user's 0-based header row, or None to detect it.
        header_rows: The user's count of header rows (1 or 2), or None to detect it.
        detected_row: A header row already detected on a sample of the file.

    Returns:
        The header. A detected single header row may be the lower row of a two-row
        header, so the row above it is checked too, but a header row that the user
        chose is always the first header row.
    """
    if header_row is not None:
        top = header_row
        rows = header_rows or (2 if _is_group_pair(cells, top) else 1)
    else:
        top = detect_header_row(cells) if detected_row is None else detected_row
        if header_rows != 1 and top > 0 and _is_group_pair(cells, top - 1):
            top, rows = top - 1, 2
        else:
            rows = header_rows or (2 if _is_group_pair(cells, top) else 1)
    if rows == 1 or top + 1 >= len(cells):
        return Header(top, 1, [header_text(value) for value in cells.iloc[top]] if top < len(cells) else [])
    upper = [header_text(value) for value in cells.iloc[top]]
    lower = [header_text(value) for value in cells.iloc[top + 1]]
    return Header(top, 2, flatten_header(upper, lower))


def flatten_header(upper: list[str], lower: list[str]) -> list[str]:
    """Join a group row and a column-name row into one name per column.

    A group name covers its own column and the columns to its right that have an empty
    upper cell and a lower name. A column with only one of the two names keeps it.
    """
    names = []
    group = ""
    for above, below in zip(upper, lower):
        if above:
            group = above
        elif not below:
            group = ""
        if group and below and group != below:
            names.append(f"{group}{GROUP_SEPARATOR}{below}")
        else:
            names.append(group or below)
    return names


def _is_group_pair(cells: pd.DataFrame, row: int) -> bool:
    """Return whether row ``row`` contains group names over the column names of the next row.

    The lower row must have two or more names and no numbers. The upper row must have a
    name followed by an empty cell with a name below it (a span). A lone name in the
    first column is a title, not a group. One more sign must back the span: a name
    below an empty upper cell left of the first group, an upper name over an empty lower
    cell (merged down), or a repeated name in the lower row (Quiz under each term).
    """
    if row < 0 or row + 1 >= len(cells):
        return False
    upper = [header_text(value) for value in cells.iloc[row]]
    lower = [header_text(value) for value in cells.iloc[row + 1]]
    filled_upper = [index for index, name in enumerate(upper) if name]
    filled_lower = [name for name in lower if name]
    if len(filled_lower) < 2 or any(parse_number(name) is not None for name in filled_lower):
        return False
    if not filled_upper or filled_upper == [0] or any(parse_number(upper[i]) is not None for i in filled_upper):
        return False
    spans = any(upper[i] and not upper[i + 1] and lower[i + 1] for i in range(len(upper) - 1))
    leading_names = any(lower[i] for i in range(filled_upper[0]))
    merged_down = any(upper[i] and not lower[i] for i in filled_upper)
    repeated = len(set(filled_lower)) < len(filled_lower)
    return spans and (leading_names or merged_down or repeated)


def detect_header_row(cells: pd.DataFrame) -> int:
    """Find the header below any title rows.

    The usual row width is the most common count of filled cells among rows with two
    or more, so one-cell title rows do not set it. The header is the first row whose
    filled cells are mostly not numbers and cover three quarters of that width, else the
    first such row with two filled cells (a header with blank names), else the first
    non-blank row.
    """
    head = cells.head(HEADER_SCAN_ROWS).itertuples(index=False)
    rows = [[value for value in row if not is_blank(value)] for row in head]
    counts = [len(row) for row in rows]
    if not any(counts):
        return 0
    wide = [count for count in counts if count >= 2] or [count for count in counts if count]
    width = max(set(wide), key=lambda count: (wide.count(count), count))
    for minimum in (math.ceil(0.75 * width), min(2, width)):
        for index, row in enumerate(rows):
            if len(row) >= minimum and _mostly_text(row):
                return index
    return next(index for index, count in enumerate(counts) if count)


def _mostly_text(row: list[object]) -> bool:
    textual = sum(1 for value in row if parse_number(value) is None)
    return textual * 2 > len(row)


def parse_number(value: object) -> float | None:
    if is_number_cell(value):
        return float(value)
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        return float(value.strip())
    return None


def is_number_cell(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and not is_blank(value)


def is_blank(value: object) -> bool:
    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return True
    return isinstance(value, str) and not value.strip()


def cell_text(value: object) -> str:
    if is_blank(value):
        return value if isinstance(value, str) else ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def header_text(value: object) -> str:
    return cell_text(value).strip().strip("\ufeff").strip()
