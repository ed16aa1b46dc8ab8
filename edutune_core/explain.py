"""Why the model predicted what it did: occlusion for one prediction, permutation for the whole model.

Occlusion removes one part of the input at a time and measures how the model's output
moves. For a text the parts are words or sentences. For a student in a table they are
the input columns, and removing one means setting it to a reference value: the training
median of a number, or the most common category. The output is the probability of one
class for a classifier, or the predicted value before rounding. A positive effect means
the part pushed the output up.

Permutation importance shuffles one input column of the validation rows at a time and
measures how much the model's primary metric drops.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutune_core import metrics as metric_lib
from edutune_core.i18n import EduTuneError
from edutune_core.predict import Predictor
from edutune_core.tasks import CLASSIFICATION

logger = logging.getLogger(__name__)

WORD = "word"
SENTENCE = "sentence"
UNITS = (WORD, SENTENCE)
# A Han character is a word of its own, because Chinese text has no spaces between words.
_WORD_PATTERN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\W\u3400-\u9fff\uf900-\ufaff_]+(?:['’-][^\W_]+)*")
_SENTENCE_PATTERN = re.compile(r"[^\s.!?。！？][^.!?。！？\n]*[.!?。！？]*")


class ExplainError(EduTuneError):
    """An explanation that does not fit the model or the input."""


@dataclass
class Explanation:
    """Effects of the parts of one input on one output of the model.

    Attributes:
        output: What the effects move: a class name, or None for the predicted value.
        value: The output on the whole input.
        parts: One row per part: ``part`` (the text or column), ``effect`` and, for
            texts, ``start`` and ``end`` character offsets; for tables, ``value`` and
            ``reference``.
    """

    output: str | None
    value: float
    parts: pd.DataFrame


def text_spans(text: str, unit: str, max_parts: int) -> list[tuple[int, int]]:
    """Split ``text`` into word or sentence spans, merging neighbours so at most ``max_parts`` remain.

    Raises:
        ExplainError: ``unit`` is not ``"word"`` or ``"sentence"``.
    """
    if unit not in UNITS:
        raise ExplainError("explain.unknown_unit", unit=unit, allowed=", ".join(UNITS))
    pattern = _WORD_PATTERN if unit == WORD else _SENTENCE_PATTERN
    spans = [match.span() for match in pattern.finditer(text)]
    if len(spans) <= max_parts:
        return spans
    size = math.ceil(len(spans) / max_parts)
    return [(spans[index][0], spans[min(index + size, len(spans)) - 1][1]) for index in range(0, len(spans), size)]


def _output_values(predictor: Predictor, frame: pd.DataFrame, class_index: int | None) -> np.ndarray:
    """Predict every row of ``frame``; rows the model cannot read (an empty text) give NaN."""
    prediction = predictor.predict_frame(frame)
    values = np.full(len(frame), np.nan)
    positions = frame.index.get_indexer(prediction.row_index)
    values[positions] = prediction.raw[:, class_index] if class_index is not None else prediction.raw
    return values


def _class_index(predictor: Predictor, output: str | None, first_raw: np.ndarray) -> int | None:
    if predictor.mapping.problem != CLASSIFICATION:
        return None
    if output is None:
        return int(np.argmax(first_raw))
    if output not in predictor.labels:
        raise ExplainError("explain.unknown_class", label=output, labels=", ".join(predictor.labels))
    return predictor.labels.index(output)


def explain_text(predictor: Predictor, text: str, unit: str = SENTENCE, output: str | None = None,
                 max_parts: int = 80) -> Explanation:
    """Measure how much each word or sentence of ``text`` moves the model's output.

    Args:
        predictor: A text model.
        text: The text to explain.
        unit: ``"word"`` or ``"sentence"``.
        output: Class whose probability is explained; None explains the predicted
            class, or the value for a score model.
        max_parts: Most parts; longer texts get neighbouring parts merged.

    Raises:
        ExplainError: The model is not a text model, the text is empty, or ``output``
            is not a class of the model.
    """
    column = predictor.mapping.text_column
    if column is None:
        raise ExplainError("explain.needs_text_model")
    spans = text_spans(text, unit, max_parts)
    if not spans:
        raise ExplainError("explain.empty_text")
    variants = [text] + [text[:start] + text[end:] for start, end in spans]
    frame = pd.DataFrame({column: variants})
    base = predictor.predict_frame(frame.iloc[:1])
    class_index = _class_index(predictor, output, base.raw[0] if base.raw.ndim == 2 else None)
    values = _output_values(predictor, frame, class_index)
    parts = pd.DataFrame({"part": [text[start:end] for start, end in spans],
                          "start": [start for start, _ in spans], "end": [end for _, end in spans],
                          "effect": values[0] - values[1:]})
    label = predictor.labels[class_index] if class_index is not None else None
    return Explanation(output=label, value=float(values[0]), parts=parts)


def reference_values(predictor: Predictor) -> dict:
    """Return each table input's reference: the training median of a number, the most common category."""
    encoder = predictor.adapter.encoder
    references = {column: fill for column, (fill, _mean, _scale) in encoder.numeric.items()}
    references.update({column: categories[0] if categories else "" for column, categories in encoder.categorical.items()})
    return references


def explain_row(predictor: Predictor, row: pd.DataFrame, output: str | None = None) -> Explanation:
    """Measure how much each input column of one student moves the model's output.

    Each column in turn is set to its reference value (see ``reference_values``). The
    effect is the output with the student's value minus the output with the reference.

    Raises:
        ExplainError: The model is a text model, or ``row`` is not exactly one row.
    """
    if predictor.mapping.text_column is not None:
        raise ExplainError("explain.needs_table_model")
    if len(row) != 1:
        raise ExplainError("explain.one_row", rows=len(row))
    references = reference_values(predictor)
    student = row.reset_index(drop=True)
    variants = [student]
    for column, reference in references.items():
        variant = student.copy()
        variant[column] = pd.Series([reference], dtype=object if isinstance(reference, str) else float)
        variants.append(variant)
    frame = pd.concat(variants, ignore_index=True)
    base = predictor.predict_frame(student)
    class_index = _class_index(predictor, output, base.raw[0] if base.raw.ndim == 2 else None)
    values = _output_values(predictor, frame, class_index)
    parts = pd.DataFrame({"part": list(references), "value": [student.at[0, column] if column in student else None
                                                               for column in references],
                          "reference": list(references.values()), "effect": values[0] - values[1:]})
    parts = parts.iloc[np.argsort(-np.abs(parts["effect"].to_numpy()), kind="stable")].reset_index(drop=True)
    label = predictor.labels[class_index] if class_index is not None else None
    return Explanation(output=label, value=float(values[0]), parts=parts)


def permutation_importance(predictor: Predictor, frame: pd.DataFrame, repeats: int = 5,
                           seed: int = 0) -> pd.DataFrame:
    """Shuffle each input column of labelled rows and measure the drop in the primary metric.

    Returns:
        One row per column, most important first: ``column``, ``importance`` (mean drop;
        for RMSE the rise) and ``spread`` (standard deviation over the repeats).

    Raises:
        ExplainError: The model is a text model.
        DataError: ``frame`` lacks the target column or has labels the model does not know.
    """
    if predictor.mapping.text_column is not None:
        raise ExplainError("explain.needs_table_model")
    family = metric_lib.metric_family(predictor.mapping.problem, predictor.score_points)
    primary, higher_is_better = metric_lib.PRIMARY_METRIC[family]
    sign = 1.0 if higher_is_better else -1.0
    reference = predictor.evaluate_frame(frame)[primary]
    rng = np.random.default_rng(seed)
    rows = []
    for column in predictor.input_columns:
        drops = []
        for _ in range(repeats):
            shuffled = frame.copy()
            shuffled[column] = frame[column].to_numpy()[rng.permutation(len(frame))]
            drops.append(sign * (reference - predictor.evaluate_frame(shuffled)[primary]))
        rows.append({"column": column, "importance": float(np.mean(drops)), "spread": float(np.std(drops))})
    table = pd.DataFrame(rows, columns=["column", "importance", "spread"])
    return table.sort_values("importance", ascending=False, ignore_index=True)
