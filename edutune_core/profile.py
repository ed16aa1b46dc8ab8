"""Data profile shown before training: rows kept and dropped, missing values, label
balance, text lengths, duplicate texts and columns that may give the answer away.

The profile holds counts, lengths and row numbers, never cell values, so its
``summary`` can be stored with a run.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import balanced_accuracy_score, r2_score
from sklearn.model_selection import KFold

from edutune_core import _duplicates
from edutune_core._duplicates import Duplicates
from edutune_core.tasks import (
    CLASSIFICATION, TABULAR, ColumnMapping, PreparedData, feature_columns, unusable_feature_columns,
)

logger = logging.getLogger(__name__)

# The largest class has at least this many times the rows of the smallest one.
HEAVY_IMBALANCE_RATIO = 4.0
MAX_LENGTHS = (128, 256, 512)
# Token counts come from at most this many texts, drawn with a fixed seed.
TOKEN_SAMPLE_ROWS = 5000
# One column alone predicts the target this well out of fold: balanced accuracy for
# classes, R² for numbers. "near_perfect" reads as a leak, "strong" as a column to check.
# NOTE: the levels are a judgement. On the UCI Student Performance data (Portuguese),
# the earlier grade G2 scores 0.89 for pass/fail at 10 and 0.83 for the grade G3.
LEAK_LEVELS = {CLASSIFICATION: (("near_perfect", 0.95), ("strong", 0.85)),
               "regression": (("near_perfect", 0.9), ("strong", 0.75))}
# Share of rows where a numeric column equals the numeric target.
EQUAL_SHARE = 0.9
# A column with all values unique on at least this many rows looks like an ID.
MIN_ID_ROWS = 20
_LOOKUP_FOLDS = 5
_LOOKUP_BINS = 20


@dataclass
class Finding:
    """A warning for the reader, as a catalog key and its parameters."""

    key: str
    params: dict = field(default_factory=dict)


@dataclass
class TextLengths:
    """Lengths of the kept texts.

    Attributes:
        characters: Length in characters of every kept text.
        tokens: Length in tokens of the bundled model's tokenizer, special tokens
            included, for every kept text or for a sample of ``TOKEN_SAMPLE_ROWS``.
        sampled: Whether ``tokens`` covers a sample only.
        cut_shares: Share of texts longer than each max length, in tokens.
    """

    characters: np.ndarray
    tokens: np.ndarray
    sampled: bool
    cut_shares: dict[int, float]


@dataclass
class Leak:
    """A feature column that may give the target away.

    Attributes:
        column: The column.
        kind: "equal" (same value as the target in most rows), "near_perfect" or
            "strong" (predicts the target alone), or "identifier" (all values unique).
        score: Share of equal rows, balanced accuracy, R² or share of unique values.
    """

    column: str
    kind: str
    score: float


@dataclass
class DataProfile:
    """Profile of a mapped table, shown on the Data page before training."""

    source_rows: int
    kept_rows: int
    dropped: dict[str, int]
    missing: dict[str, int]
    label_counts: dict[str, int] | None
    imbalance_ratio: float | None
    text: TextLengths | None
    duplicates: Duplicates
    leaks: list[Leak]
    # Feature columns a table model leaves out, with the reason: "personal_data",
    # "identifier" or "free_text".
    left_out: dict[str, str] = field(default_factory=dict)

    @property
    def heavy_imbalance(self) -> bool:
        return self.imbalance_ratio is not None and self.imbalance_ratio >= HEAVY_IMBALANCE_RATIO

    def findings(self, max_length: int | None = None) -> list[Finding]:
        """List the warnings in the order the page shows them.

        ``max_length`` adds the share of texts that this max length would cut.
        """
        found = []
        if self.heavy_imbalance:
            smallest = min(self.label_counts, key=self.label_counts.get)
            largest = max(self.label_counts, key=self.label_counts.get)
            found.append(Finding("profile.imbalance", {
                "ratio": f"{self.imbalance_ratio:.1f}", "largest": largest, "largest_count": self.label_counts[largest],
                "smallest": smallest, "smallest_count": self.label_counts[smallest]}))
        if self.text is not None and max_length is not None:
            share = float(np.mean(self.text.tokens > max_length)) if len(self.text.tokens) else 0.0
            if share > 0:
                found.append(Finding("profile.texts_cut", {"share": f"{share:.0%}", "max_length": max_length}))
        found.extend(_duplicate_findings(self.duplicates))
        found.extend(Finding(f"profile.left_out.{reason}", {"column": column}) for column, reason in self.left_out.items())
        found.extend(_leak_finding(leak) for leak in self.leaks)
        return found

    def summary(self) -> dict:
        """Return the counts and scores of the profile, without values or row numbers."""
        summary = {"source_rows": self.source_rows, "kept_rows": self.kept_rows, "dropped": dict(self.dropped),
                   "missing": dict(self.missing), "label_counts": self.label_counts,
                   "imbalance_ratio": self.imbalance_ratio, "duplicates": self.duplicates.summary(),
                   "leaks": [{"column": leak.column, "kind": leak.kind, "score": round(leak.score, 3)}
                             for leak in self.leaks],
                   "left_out": dict(self.left_out)}
        if self.text is not None:
            summary["text_cut_shares"] = {str(length): share for length, share in self.text.cut_shares.items()}
        return summary


def _duplicate_findings(duplicates: Duplicates) -> list[Finding]:
    found = []
    rows = "; ".join(", ".join(map(str, group)) for group in duplicates.examples)
    if duplicates.exact_groups:
        found.append(Finding("profile.duplicates", {"rows": duplicates.exact_rows, "groups": duplicates.exact_groups,
                                                    "examples": rows}))
    if duplicates.conflicting_groups:
        found.append(Finding("profile.conflicting_duplicates", {"groups": duplicates.conflicting_groups}))
    if duplicates.near_pairs:
        found.append(Finding("profile.near_duplicates", {"pairs": duplicates.near_pairs, "rows": duplicates.near_rows,
                                                         "examples": rows}))
    return found


def _leak_finding(leak: Leak) -> Finding:
    score = f"{leak.score:.0%}" if leak.kind in ("equal", "identifier") else f"{leak.score:.2f}"
    return Finding(f"profile.leak.{leak.kind}", {"column": leak.column, "score": score})


def build_profile(frame: pd.DataFrame, mapping: ColumnMapping, prepared: PreparedData, *,
                  earlier_drops: dict[str, int] | None = None, max_lengths: tuple[int, ...] = MAX_LENGTHS,
                  tokenizer=None) -> DataProfile:
    """Profile a table that ``prepare_data`` accepted with ``mapping``.

    Args:
        frame: The table given to ``prepare_data``.
        mapping: The column mapping.
        prepared: The result of ``prepare_data(frame, mapping)``.
        earlier_drops: Rows left out before ``frame`` was built (labels join,
            non-numeric scores), by reason key.
        max_lengths: Max lengths in tokens whose cut share is computed.
        tokenizer: Tokenizer for text lengths; the bundled model's by default.
    """
    dropped = {**(earlier_drops or {}), **prepared.dropped_rows}
    label_counts, ratio = _label_balance(prepared)
    text = None
    if prepared.texts is not None:
        text = text_lengths(prepared.texts, max_lengths, tokenizer or bundled_tokenizer())
    rows = frame.loc[prepared.row_index]
    left_out = unusable_feature_columns(prepared.features) if prepared.task == TABULAR else {}
    if prepared.texts is not None:
        duplicates = _duplicates.find_text_duplicates(prepared.texts, prepared.targets, prepared.row_index)
    else:
        duplicates = _duplicates.find_row_duplicates(rows[feature_columns(frame, mapping)], prepared.targets)
    return DataProfile(
        source_rows=len(frame) + sum((earlier_drops or {}).values()), kept_rows=len(prepared), dropped=dropped,
        missing=missing_values(frame), label_counts=label_counts, imbalance_ratio=ratio, text=text,
        duplicates=duplicates, leaks=[leak for leak in find_leaks(frame, mapping, prepared) if leak.column not in left_out],
        left_out=left_out,
    )


def missing_values(frame: pd.DataFrame) -> dict[str, int]:
    """Count the empty cells of each column that has any, in column order."""
    counts = {}
    for column in frame.columns:
        values = frame[column]
        empty = values.isna()
        if not pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_datetime64_any_dtype(values):
            empty |= values.astype(str).str.strip().eq("")
        if empty.any():
            counts[str(column)] = int(empty.sum())
    return counts


def _label_balance(prepared: PreparedData) -> tuple[dict[str, int] | None, float | None]:
    if prepared.labels is None or prepared.targets is None:
        return None, None
    counts = np.bincount(prepared.targets, minlength=len(prepared.labels))
    present = counts[counts > 0]
    ratio = float(present.max() / present.min()) if len(present) >= 2 else None
    return {label: int(count) for label, count in zip(prepared.labels, counts)}, ratio


@functools.cache
def bundled_tokenizer():
    """Load the bundled model's tokenizer once per process."""
    from edutune_core.models import bundled_model_path, transformers_auto_classes

    AutoTokenizer, _ = transformers_auto_classes()

    return AutoTokenizer.from_pretrained(bundled_model_path())


def text_lengths(texts: list[str], max_lengths: tuple[int, ...], tokenizer) -> TextLengths:
    """Measure texts in characters and in tokens, with the share each max length would cut."""
    characters = np.array([len(text) for text in texts], dtype=np.int64)
    sample = texts
    if len(texts) > TOKEN_SAMPLE_ROWS:
        positions = np.random.default_rng(0).choice(len(texts), TOKEN_SAMPLE_ROWS, replace=False)
        sample = [texts[position] for position in np.sort(positions)]
    encoded = tokenizer(sample, add_special_tokens=True, truncation=False, verbose=False,
                        return_attention_mask=False, return_token_type_ids=False)
    tokens = np.array([len(ids) for ids in encoded["input_ids"]], dtype=np.int64)
    shares = {length: float(np.mean(tokens > length)) if len(tokens) else 0.0 for length in max_lengths}
    return TextLengths(characters=characters, tokens=tokens, sampled=len(sample) < len(texts), cut_shares=shares)


def find_leaks(frame: pd.DataFrame, mapping: ColumnMapping, prepared: PreparedData) -> list[Leak]:
    """Find table columns that give the target away, for models on table columns.

    Text models read only the text column, so other columns cannot leak into them.
    """
    if prepared.task != TABULAR or prepared.targets is None or len(prepared) < MIN_ID_ROWS:
        return []
    rows = frame.loc[prepared.row_index]
    raw_target = pd.to_numeric(rows[mapping.target], errors="coerce")
    leaks = []
    for column in feature_columns(frame, mapping):
        leak = _column_leak(column, rows[column], raw_target, prepared)
        if leak is not None:
            leaks.append(leak)
    logger.debug("leak check: %s", leaks)
    return leaks


def _column_leak(column: str, values: pd.Series, raw_target: pd.Series, prepared: PreparedData) -> Leak | None:
    unique_share = values.nunique() / len(values)
    integral = pd.api.types.is_integer_dtype(values) or not pd.api.types.is_numeric_dtype(values)
    if integral and unique_share == 1.0 and not pd.api.types.is_datetime64_any_dtype(values):
        return Leak(column, "identifier", unique_share)
    if pd.api.types.is_numeric_dtype(values) and raw_target.notna().all():
        equal = float(np.mean(values.to_numpy(dtype=float) == raw_target.to_numpy(dtype=float)))
        if equal >= EQUAL_SHARE:
            return Leak(column, "equal", equal)
    score = lookup_score(values, prepared.targets, prepared.mapping.problem)
    for kind, threshold in LEAK_LEVELS[prepared.mapping.problem]:
        if score >= threshold:
            return Leak(column, kind, score)
    return None


def lookup_score(values: pd.Series, targets: np.ndarray, problem: str) -> float:
    """Score how well one column predicts the targets by looking each value up.

    Numbers with more than 20 distinct values are cut into 20 quantile bins first.
    Each fold predicts the class that is most over-represented among the training
    rows with the same value, or their mean target, and a value not seen in training
    gets the most common class or the mean. Returns the out-of-fold balanced accuracy
    for classes and R² for numbers, so a column of unique values scores low.
    """
    if pd.api.types.is_numeric_dtype(values) and values.nunique() > _LOOKUP_BINS:
        values = pd.qcut(values.rank(method="first"), _LOOKUP_BINS, labels=False)
    codes, _ = pd.factorize(values, use_na_sentinel=False)
    predicted = np.zeros(len(codes), dtype=np.float64)
    folds = KFold(n_splits=min(_LOOKUP_FOLDS, len(codes)), shuffle=True, random_state=0)
    for train, test in folds.split(codes):
        predicted[test] = _lookup_fold(codes, targets, train, test, problem)
    if problem == CLASSIFICATION:
        return float(balanced_accuracy_score(targets, predicted.astype(np.int64)))
    return float(r2_score(targets, predicted))


def _lookup_fold(codes: np.ndarray, targets: np.ndarray, train: np.ndarray, test: np.ndarray,
                 problem: str) -> np.ndarray:
    size = codes.max() + 1
    seen = np.bincount(codes[train], minlength=size)
    if problem == CLASSIFICATION:
        classes = targets.max() + 1
        table = np.zeros((size, classes))
        np.add.at(table, (codes[train], targets[train]), 1.0)
        prior = np.bincount(targets[train], minlength=classes) + 1.0
        best = ((table + 0.5) / prior).argmax(axis=1)
        fallback = prior.argmax()
    else:
        sums = np.bincount(codes[train], weights=targets[train], minlength=size)
        best = np.divide(sums, seen, out=np.zeros(size), where=seen > 0)
        fallback = targets[train].mean()
    return np.where(seen[codes[test]] > 0, best[codes[test]], fallback)
