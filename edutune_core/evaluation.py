"""A finished run's validation predictions, joined with the rows they were made for.

``validation_predictions.csv`` stores one row per validation row: its position in the
run's data snapshot (``row``), the target, the prediction and, for classes, one
``probability_<label>`` column per class. ``load_validation`` joins it with the
snapshot, so group columns, a second rater's scores and the texts are at hand for the
evaluations in ``metrics``, ``fairness``, ``threshold`` and ``explain``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutune_core import metrics as metric_lib
from edutune_core.i18n import EduTuneError
from edutune_core.runner import TRAIN_SNAPSHOT, VALIDATION_SNAPSHOT
from edutune_core.runstore import RunRecord
from edutune_core.tasks import CLASSIFICATION, ColumnMapping, is_numeric

logger = logging.getLogger(__name__)

PREDICTIONS_FILE = "validation_predictions.csv"
PROBABILITY_PREFIX = "probability_"


class EvaluationError(EduTuneError):
    """An evaluation that cannot be computed from what the run folder contains."""


@dataclass
class ValidationSet:
    """Validation predictions of a run with their source rows, in the same order.

    Attributes:
        predictions: ``validation_predictions.csv`` as written by the run.
        source: The snapshot rows the predictions were made for.
        mapping: The run's column mapping.
        labels: Class names in index order, or None for values.
        score_points: Rubric range for scores, else None.
        family: ``"score"``, ``"classification"`` or ``"regression"``.
    """

    predictions: pd.DataFrame
    source: pd.DataFrame
    mapping: ColumnMapping
    labels: list[str] | None
    score_points: tuple | None
    family: str

    def __len__(self) -> int:
        return len(self.predictions)

    @property
    def probabilities(self) -> np.ndarray | None:
        """Class probabilities (rows x labels), or None when the run did not save them."""
        if self.labels is None:
            return None
        columns = [f"{PROBABILITY_PREFIX}{label}" for label in self.labels]
        if not all(column in self.predictions for column in columns):
            return None
        return self.predictions[columns].to_numpy(dtype=np.float64)

    def target_values(self) -> np.ndarray:
        """Targets as class indices for classes, else as numbers."""
        return self._as_values(self.predictions["target"])

    def predicted_values(self) -> np.ndarray:
        """Predictions as class indices for classes, else as numbers (rounded for scores)."""
        return self._as_values(self.predictions["prediction"])

    def raw_values(self) -> np.ndarray:
        """Predicted values before rounding when the run saved them, else the predictions."""
        if self.labels is None and "raw_prediction" in self.predictions:
            return self.predictions["raw_prediction"].to_numpy(dtype=np.float64)
        return self.predicted_values()

    def _as_values(self, column: pd.Series) -> np.ndarray:
        if self.labels is None:
            return pd.to_numeric(column).to_numpy(dtype=np.float64)
        index = {label: position for position, label in enumerate(self.labels)}
        return column.astype(str).map(index).to_numpy(dtype=np.int64)


def require_snapshot(record: RunRecord) -> None:
    """Raise EvaluationError when the run's training data snapshot is missing.

    Raises:
        EvaluationError: ``train_data.parquet`` is not in the run folder.
    """
    path = record.run_dir / TRAIN_SNAPSHOT
    if not path.exists():
        raise EvaluationError("evaluation.snapshot_missing", run=record.name, path=str(path))


def source_snapshot(record: RunRecord) -> pd.DataFrame:
    """Return the snapshot that the validation rows index: the validation file, else the training data.

    Raises:
        EvaluationError: The snapshot is missing.
    """
    folds = int(record.config.get("train", {}).get("folds", 0) or 0)
    validation_path = record.run_dir / VALIDATION_SNAPSHOT
    if folds < 2 and validation_path.exists():
        return pd.read_parquet(validation_path)
    require_snapshot(record)
    return pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT)


def load_validation(record: RunRecord) -> ValidationSet:
    """Load a run's validation predictions and the snapshot rows they belong to.

    Raises:
        EvaluationError: The predictions file or the snapshot is missing, or they do not match.
    """
    path = record.run_dir / PREDICTIONS_FILE
    if not path.exists():
        raise EvaluationError("evaluation.predictions_missing", run=record.name, path=str(path))
    predictions = pd.read_csv(path, dtype={"target": str, "prediction": str})
    source = source_snapshot(record)
    rows = predictions["row"].to_numpy()
    if len(rows) and (rows.min() < 0 or rows.max() >= len(source)):
        raise EvaluationError("evaluation.rows_mismatch", run=record.name, rows=len(source))
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    summary = record.summary
    points = summary.get("score_points")
    score_points = tuple(points) if points else None
    labels = summary.get("labels") if mapping.problem == CLASSIFICATION else None
    return ValidationSet(predictions=predictions, source=source.iloc[rows].reset_index(drop=True), mapping=mapping,
                         labels=labels, score_points=score_points,
                         family=metric_lib.metric_family(mapping.problem, score_points))


def second_rater_columns(validation: ValidationSet) -> list[str]:
    """List the snapshot's numeric columns that could hold a second teacher's scores.

    With a rubric, a column qualifies only when every score in it is a point of the
    rubric, so IDs and word counts are not offered.
    """
    mapping = validation.mapping
    left_out = {mapping.target, mapping.text_column, mapping.student_column, *mapping.group_columns}
    points = metric_lib.point_values(validation.score_points) if validation.score_points is not None else None
    columns = []
    for column in validation.source.columns:
        if column in left_out or not is_numeric(validation.source[column]):
            continue
        values = pd.to_numeric(validation.source[column], errors="coerce").dropna().to_numpy(dtype=np.float64)
        if len(values) == 0:
            continue
        if points is not None and not np.isin(np.round(values, 6), points).all():
            continue
        columns.append(str(column))
    return columns


def rater_agreement(validation: ValidationSet, column: str) -> dict:
    """Compare the teacher with a second rater, and the model with the teacher, on the same rows.

    Only rows where the second rater gave a score count. This is how essay-scoring
    research reports human-human agreement beside human-machine agreement.

    Returns:
        ``{"rows", "human_human": score metrics, "human_machine": score metrics}``.

    Raises:
        EvaluationError: The run is not a score model, the column is missing, or it has
            no whole-number scores on the validation rows.
    """
    if validation.family != "score":
        raise EvaluationError("evaluation.rater_needs_scores", column=column)
    if column not in validation.source.columns:
        raise EvaluationError("evaluation.rater_missing", column=column,
                              columns=", ".join(second_rater_columns(validation)))
    second = pd.to_numeric(validation.source[column], errors="coerce").to_numpy(dtype=np.float64)
    present = np.isfinite(second)
    if not present.any() or not np.all(np.mod(second[present], 1) == 0):
        raise EvaluationError("evaluation.rater_not_scores", column=column)
    teacher = validation.target_values()[present]
    return {
        "rows": int(present.sum()),
        "human_human": metric_lib.score_metrics(teacher, second[present], validation.score_points),
        "human_machine": metric_lib.score_metrics(teacher, validation.predicted_values()[present],
                                                  validation.score_points),
    }


def example_errors(validation: ValidationSet) -> np.ndarray:
    """Return how wrong each validation prediction is; larger is worse.

    Values and scores use the absolute error of the unrounded prediction. Classes use
    one minus the probability given to the true class, or 0/1 for right/wrong when the
    run saved no probabilities.
    """
    if validation.labels is None:
        return np.abs(validation.raw_values() - validation.target_values())
    probabilities = validation.probabilities
    targets = validation.target_values()
    if probabilities is None:
        return (validation.predicted_values() != targets).astype(np.float64)
    return 1.0 - probabilities[np.arange(len(targets)), targets]


def extreme_examples(validation: ValidationSet, count: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the ``count`` most wrong and most right validation rows, with their inputs.

    Each table has the row, target, prediction, the error of ``example_errors`` and the
    text (text tasks) or the input columns (table tasks).
    """
    errors = example_errors(validation)
    table = validation.predictions[["row", "target", "prediction"]].copy()
    table["error"] = errors.round(4)
    mapping = validation.mapping
    if mapping.text_column is not None:
        table[mapping.text_column] = validation.source[mapping.text_column].astype(str).to_numpy()
    else:
        left_out = {mapping.target, mapping.student_column, *mapping.ignore_columns}
        for column in validation.source.columns:
            if column not in left_out:
                table[column] = validation.source[column].to_numpy()
    order = np.argsort(errors, kind="stable")
    return table.iloc[order[::-1][:count]].reset_index(drop=True), table.iloc[order[:count]].reset_index(drop=True)
