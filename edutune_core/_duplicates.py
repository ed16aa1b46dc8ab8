"""Duplicate and near-duplicate texts, and repeated rows of a table, for the data profile.

Two texts are duplicates when they are equal after Unicode NFKC normalization, case
folding and removal of whitespace and punctuation. Two texts are near-duplicates when
the Jaccard similarity of their sets of 5-character shingles is at least
``NEAR_DUPLICATE_JACCARD``. MinHash signatures with locality-sensitive hashing pick the
candidate pairs, so the cost grows linearly with the number of texts, and each candidate
pair is checked with its exact Jaccard similarity.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

NEAR_DUPLICATE_JACCARD = 0.8
SHINGLE_CHARS = 5
# Only the start of a long text is shingled, which bounds the cost per text.
MAX_SHINGLED_CHARS = 3000
# 8 bands of 4 MinHash values: a pair with Jaccard 0.8 becomes a candidate with
# probability 1 - (1 - 0.8**4)**8, about 0.985.
_BANDS, _ROWS_PER_BAND = 8, 4
_EXAMPLE_GROUPS = 5
# Pairs are checked within the first 200 texts of a bucket only, which bounds the cost
# when hundreds of texts are alike (a template answer).
_MAX_BUCKET = 200
_NOT_WORD = re.compile(r"[\W_]+")
_rng = np.random.default_rng(20240601)
_HASH_MULTIPLIERS = _rng.integers(1, 2**63, size=_BANDS * _ROWS_PER_BAND, dtype=np.uint64) | np.uint64(1)
_HASH_OFFSETS = _rng.integers(0, 2**63, size=_BANDS * _ROWS_PER_BAND, dtype=np.uint64)
_SHINGLE_BASE = np.uint64(1_000_003) ** np.arange(SHINGLE_CHARS - 1, -1, -1, dtype=np.uint64)


@dataclass
class Duplicates:
    """Repeated texts (or rows, for table tasks) among the kept rows.

    Attributes:
        exact_groups: Groups of two or more rows with the same text.
        exact_rows: Rows that repeat an earlier row of their group.
        conflicting_groups: Exact groups whose rows have different targets.
        near_pairs: Pairs of different texts that are near-duplicates.
        near_rows: Rows in a near-duplicate pair.
        examples: 1-based table row numbers of up to five groups, exact groups first.
    """

    exact_groups: int = 0
    exact_rows: int = 0
    conflicting_groups: int = 0
    near_pairs: int = 0
    near_rows: int = 0
    examples: list[list[int]] = field(default_factory=list)

    def summary(self) -> dict:
        return {"exact_groups": self.exact_groups, "exact_rows": self.exact_rows,
                "conflicting_groups": self.conflicting_groups, "near_pairs": self.near_pairs}


def normalize_text(text: str) -> str:
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text).casefold())


def find_text_duplicates(texts: list[str], targets: np.ndarray | None, row_index: pd.Index) -> Duplicates:
    """Find duplicate and near-duplicate texts; ``row_index`` labels are 0-based table rows."""
    keys = pd.Series([normalize_text(text) for text in texts])
    result = _exact_groups(keys, targets, row_index)
    first = ~keys.duplicated()
    representatives = np.flatnonzero(first.to_numpy())
    pairs = near_duplicate_pairs([keys.iloc[position] for position in representatives])
    if pairs:
        positions = {int(representatives[i]) for pair in pairs for i in pair}
        result.near_pairs, result.near_rows = len(pairs), len(positions)
        for left, right in pairs[: _EXAMPLE_GROUPS - len(result.examples)]:
            result.examples.append([int(row_index[representatives[left]]) + 1,
                                    int(row_index[representatives[right]]) + 1])
    return result


def find_row_duplicates(features: pd.DataFrame, targets: np.ndarray | None) -> Duplicates:
    """Find rows of a table task whose input columns repeat another row exactly."""
    if features.shape[1] == 0:
        return Duplicates()
    keys = pd.util.hash_pandas_object(features.astype(str), index=False).reset_index(drop=True)
    return _exact_groups(keys, targets, features.index)


def _exact_groups(keys: pd.Series, targets: np.ndarray | None, row_index: pd.Index) -> Duplicates:
    repeated = keys.duplicated(keep=False)
    if not repeated.any():
        return Duplicates()
    groups = keys[repeated].groupby(keys[repeated], sort=False)
    result = Duplicates(exact_groups=groups.ngroups, exact_rows=int(keys.duplicated().sum()))
    if targets is not None:
        target_sets = pd.Series(targets)[repeated.to_numpy()].groupby(keys[repeated].to_numpy()).nunique()
        result.conflicting_groups = int((target_sets > 1).sum())
    for _, members in list(groups.groups.items())[:_EXAMPLE_GROUPS]:
        result.examples.append([int(row_index[position]) + 1 for position in members])
    return result


def shingles(text: str) -> np.ndarray:
    """Hash the distinct 5-character shingles of a normalized text (the whole text when shorter)."""
    codes = np.frombuffer(text[:MAX_SHINGLED_CHARS].encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) == 0:
        return codes
    if len(codes) < SHINGLE_CHARS:
        return np.array([int((codes * _SHINGLE_BASE[-len(codes):]).sum())], dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, SHINGLE_CHARS)
    return np.unique((windows * _SHINGLE_BASE).sum(axis=1))


def near_duplicate_pairs(texts: list[str]) -> list[tuple[int, int]]:
    """Return the positions of pairs of distinct normalized texts that are near-duplicates.

    Multiplication in uint64 wraps modulo 2**64 on purpose: the shingle and MinHash
    hashes are multiply-shift hashes.
    """
    sets = [shingles(text) for text in texts]
    buckets: dict[tuple[int, bytes], list[int]] = {}
    for position, hashes in enumerate(sets):
        if len(hashes) == 0:
            continue
        signature = ((np.outer(_HASH_MULTIPLIERS, hashes) + _HASH_OFFSETS[:, None]) >> np.uint64(32)).min(axis=1)
        for band in range(_BANDS):
            key = signature[band * _ROWS_PER_BAND:(band + 1) * _ROWS_PER_BAND].tobytes()
            buckets.setdefault((band, key), []).append(position)
    candidates = {(a, b) for members in buckets.values() if len(members) > 1
                  for i, a in enumerate(members[:_MAX_BUCKET]) for b in members[i + 1:_MAX_BUCKET]}
    pairs = sorted(pair for pair in candidates if _jaccard(sets[pair[0]], sets[pair[1]]) >= NEAR_DUPLICATE_JACCARD)
    logger.debug("%d texts, %d candidate pairs, %d near-duplicate pairs", len(texts), len(candidates), len(pairs))
    return pairs


def _jaccard(left: np.ndarray, right: np.ndarray) -> float:
    shared = len(np.intersect1d(left, right, assume_unique=True))
    return shared / (len(left) + len(right) - shared)
