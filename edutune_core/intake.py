"""Steps between loading a table and mapping its columns: joining a separate labels file
and dropping the rows whose score is not a number.

Each step returns the new table with the number of rows it left out, by the catalog key
of the reason, so the Data page can report what happened. Nothing is dropped or converted
unless the user asked for it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from edutune_core._headers import cell_text
from edutune_core.data import cell_number, is_missing_cell
from edutune_core.i18n import DataError

logger = logging.getLogger(__name__)

NO_LABEL = "intake.dropped.no_label"
NON_NUMERIC_TARGET = "intake.dropped.non_numeric_target"
# The key that prepare_data uses for the same reason, so both counts read alike.
MISSING_TARGET = "data.dropped.missing_target"
EXAMPLE_COUNT = 5

_ID_NAME = re.compile(r"(?:^|[^a-z])(?:id|no|nr|number|code)(?:$|[^a-z])|编号|学号|序号|考号|工号", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]+")
# An ID column has short values that are mostly unique; longer values are free text.
_MAX_ID_CHARS = 40
_MIN_ID_UNIQUE_SHARE = 0.5


@dataclass
class LabelJoin:
    """A texts table joined with a separate labels table on one ID column of each.

    Attributes:
        frame: Rows of the texts table that have a labels row, in their original order,
            with the labels table's other columns added.
        matched_rows: Rows in ``frame``.
        unmatched_texts: Rows of the texts table without a labels row (left out).
        unmatched_text_ids: Up to five of their IDs, comma-separated.
        unmatched_labels: Rows of the labels table whose ID is in no texts row.
        unmatched_label_ids: Up to five of their IDs, comma-separated.
        repeated_label_rows: Labels rows that repeat another row exactly and were merged.
        renamed: Labels columns renamed because the texts table has a column of the same name.
    """

    frame: pd.DataFrame
    matched_rows: int
    unmatched_texts: int
    unmatched_text_ids: str
    unmatched_labels: int
    unmatched_label_ids: str
    repeated_label_rows: int = 0
    renamed: dict[str, str] = field(default_factory=dict)

    @property
    def dropped_rows(self) -> dict[str, int]:
        return {NO_LABEL: self.unmatched_texts} if self.unmatched_texts else {}

    def summary(self) -> dict:
        """Return the counts without any ID, for a run record."""
        return {"matched_rows": self.matched_rows, "unmatched_texts": self.unmatched_texts,
                "unmatched_labels": self.unmatched_labels, "repeated_label_rows": self.repeated_label_rows}


def id_keys(values: pd.Series) -> pd.Series:
    """Turn ID cells into join keys: trimmed text, with leading zeros removed from IDs
    that are all digits, so "007" from a CSV file matches 7 from an Excel cell.

    Missing cells become None and match nothing.
    """
    def key(value: object) -> str | None:
        if is_missing_cell(value):
            return None
        text = cell_text(value).strip()
        return (text.lstrip("0") or "0") if _DIGITS.fullmatch(text) else text

    return values.map(key)


def propose_join_columns(texts: pd.DataFrame, labels: pd.DataFrame) -> tuple[str | None, str | None]:
    """Propose the ID column of each table: the pair whose keys overlap most.

    Only columns with short, mostly unique values are candidates. Ties go to a pair
    with the same name, then to names such as "id", "学号" or "编号". Returns
    ``(None, None)`` when no pair shares a key.
    """
    best, best_rank = (None, None), (0, False, False)
    label_keys = {column: set(id_keys(labels[column]).dropna()) for column in _id_candidates(labels)}
    for text_column in _id_candidates(texts):
        keys = set(id_keys(texts[text_column]).dropna())
        for label_column, other in label_keys.items():
            rank = (len(keys & other), text_column == label_column, bool(_ID_NAME.search(str(text_column))))
            if rank[0] and rank > best_rank:
                best, best_rank = (text_column, label_column), rank
    logger.debug("proposed join columns %s with %d shared keys", best, best_rank[0])
    return best


def _id_candidates(frame: pd.DataFrame) -> list[str]:
    candidates = []
    for column in frame.columns:
        values = frame[column].dropna()
        if values.empty or pd.api.types.is_float_dtype(values) or pd.api.types.is_bool_dtype(values):
            continue
        text = values.map(cell_text)
        if text.str.len().max() <= _MAX_ID_CHARS and text.nunique() >= _MIN_ID_UNIQUE_SHARE * len(text):
            candidates.append(column)
    return candidates


def join_labels(texts: pd.DataFrame, labels: pd.DataFrame, text_id: str, label_id: str, *,
                texts_name: str, labels_name: str) -> LabelJoin:
    """Add the columns of a labels table to the rows of a texts table with the same ID.

    Args:
        texts: The table with the essays or answers.
        labels: The table with the scores or labels.
        text_id: ID column of ``texts``.
        label_id: ID column of ``labels``; it is not repeated in the result.
        texts_name: File name of ``texts``, for messages.
        labels_name: File name of ``labels``, for messages and renamed columns.

    Raises:
        DataError: An ID column is missing, one ID has two different labels rows, or
            no ID is in both tables.
    """
    _check_id_column(texts, text_id, texts_name)
    _check_id_column(labels, label_id, labels_name)
    text_keys = id_keys(texts[text_id])
    labels, repeated = _unique_label_rows(labels, label_id, labels_name)
    label_keys = id_keys(labels[label_id])
    matched = text_keys.isin(set(label_keys.dropna())) & text_keys.notna()
    if not matched.any():
        raise DataError("intake.no_matching_ids", texts_file=texts_name, text_column=text_id,
                        labels_file=labels_name, label_column=label_id,
                        text_examples=_examples(texts[text_id]), label_examples=_examples(labels[label_id]))

    added = labels[label_keys.notna()].drop(columns=[label_id])
    renamed = _clash_names(list(texts.columns), list(added.columns), labels_name)
    added = added.rename(columns=renamed).set_axis(label_keys.dropna().to_numpy(), axis=0)
    rows = texts[matched]
    frame = pd.concat([rows, added.loc[text_keys[matched].to_numpy()].set_axis(rows.index, axis=0)], axis=1)
    unmatched_labels = label_keys.notna() & ~label_keys.isin(set(text_keys.dropna()))
    result = LabelJoin(
        frame=frame.reset_index(drop=True), matched_rows=int(matched.sum()),
        unmatched_texts=int((~matched).sum()), unmatched_text_ids=_examples(texts.loc[~matched, text_id]),
        unmatched_labels=int(unmatched_labels.sum() + label_keys.isna().sum()),
        unmatched_label_ids=_examples(labels.loc[unmatched_labels, label_id]),
        repeated_label_rows=repeated, renamed=renamed,
    )
    logger.info("joined %s and %s: %s", texts_name, labels_name, result.summary())
    return result


def _check_id_column(frame: pd.DataFrame, column: str, file_name: str) -> None:
    if column not in frame.columns:
        raise DataError("intake.id_column_missing", column=column, file=file_name,
                        columns=", ".join(map(str, frame.columns)))


def _unique_label_rows(labels: pd.DataFrame, label_id: str, labels_name: str) -> tuple[pd.DataFrame, int]:
    """Merge labels rows that repeat another row exactly, and raise when one ID has two different rows."""
    keys = id_keys(labels[label_id])
    exact = labels.assign(_key=keys).astype(str).duplicated()
    unique = labels[~exact | keys.isna()]
    unique_keys = keys[unique.index]
    clashing = unique_keys[unique_keys.notna() & unique_keys.duplicated(keep=False)]
    if len(clashing):
        first = clashing.iloc[0]
        rows = [str(position + 1) for position in np.flatnonzero((keys == first).to_numpy())][:EXAMPLE_COUNT]
        raise DataError("intake.duplicate_label_ids", file=labels_name, column=label_id,
                        value=labels.loc[clashing.index[0], label_id], count=int(clashing.nunique()),
                        rows=", ".join(rows))
    return unique, int((exact & keys.notna()).sum())


def _clash_names(existing: list[str], added: list[str], labels_name: str) -> dict[str, str]:
    stem = Path(labels_name).stem
    taken = set(existing) | set(added)
    renamed = {}
    for name in added:
        if name not in existing:
            continue
        candidate, number = f"{name} ({stem})", 2
        while candidate in taken:
            candidate, number = f"{name} ({stem} {number})", number + 1
        renamed[name] = candidate
        taken.add(candidate)
    return renamed


def _examples(values: pd.Series) -> str:
    present = [cell_text(value) for value in values[~values.map(is_missing_cell).astype(bool)].unique()[:EXAMPLE_COUNT]]
    return ", ".join(present) if present else "-"


@dataclass
class NonNumericTarget:
    """Cells of a mostly numeric target column that are empty or not numbers.

    Attributes:
        column: The target column.
        non_numeric: Rows whose value is text that is not a number ("absent", "缺考").
        missing: Rows that are blank or contain a missing-value marker (NA, N/A, -).
        values: Up to five distinct non-numeric values, most frequent first.
        rows: Up to five 1-based table rows that are empty or not a number, as
            (row, value). The value is "" for a cell that loading turned into NaN.
    """

    column: str
    non_numeric: int
    missing: int
    values: list[str]
    rows: list[tuple[int, str]]

    @property
    def total(self) -> int:
        return self.non_numeric + self.missing


def _number_mask(values: pd.Series, allow_decimal_comma: bool) -> tuple[pd.Series, pd.Series]:
    numbers = values.map(lambda value: cell_number(value, allow_decimal_comma)).astype("float64")
    missing = values.map(is_missing_cell).astype(bool)
    return numbers, missing


def find_non_numeric_target(frame: pd.DataFrame, column: str, *,
                            allow_decimal_comma: bool = True) -> NonNumericTarget | None:
    """Find the cells of a score column that are empty or not numbers.

    A numeric column has only empty cells to report: loading turned blank, NA, N/A
    and - into NaN. Returns None when no cell is empty or non-numeric, or when numbers
    are not the majority of the filled cells (a label column).

    Raises:
        DataError: ``column`` is not in ``frame``.
    """
    if column not in frame.columns:
        raise DataError("data.missing_column", column=column, columns=", ".join(map(str, frame.columns)))
    values = frame[column]
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        missing = values.isna()
        text = pd.Series(False, index=values.index)
    else:
        numbers, missing = _number_mask(values, allow_decimal_comma)
        text = numbers.isna() & ~missing
        filled = int((~missing).sum())
        if numbers.notna().sum() * 2 <= filled:
            return None
    if not text.any() and not missing.any():
        return None
    bad = values[text].map(cell_text)
    positions = np.flatnonzero((text | missing).to_numpy())[:EXAMPLE_COUNT]
    return NonNumericTarget(
        column=column, non_numeric=int(text.sum()), missing=int(missing.sum()),
        values=bad.value_counts().index[:EXAMPLE_COUNT].tolist(),
        rows=[(int(position) + 1, cell_text(values.iloc[position])) for position in positions],
    )


def drop_non_numeric_target(frame: pd.DataFrame, column: str, *,
                            allow_decimal_comma: bool = True) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop the rows whose ``column`` is empty or not a number and make the column numeric.

    The column becomes int64 when every kept value is a whole number, else float64.
    Returns the new table and the dropped rows by reason key.

    Raises:
        DataError: ``column`` is not in ``frame``.
    """
    found = find_non_numeric_target(frame, column, allow_decimal_comma=allow_decimal_comma)
    if found is None:
        return frame, {}
    numbers, missing = _number_mask(frame[column], allow_decimal_comma)
    kept = numbers.notna()
    result = frame[kept].reset_index(drop=True)
    values = numbers[kept].reset_index(drop=True)
    whole = bool((values % 1 == 0).all()) and bool((values.abs() < 2**53).all())
    result[column] = values.astype("int64") if whole else values
    dropped = {NON_NUMERIC_TARGET: found.non_numeric, MISSING_TARGET: found.missing}
    logger.info("dropped rows without a numeric %r: %s", column, dropped)
    return result, {reason: count for reason, count in dropped.items() if count}
