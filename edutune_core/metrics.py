"""Evaluation metrics for the three kinds of target, computed with scikit-learn.

Scores (whole points on a rubric) are compared as essay-scoring research does: quadratic
weighted kappa (QWK), exact agreement and adjacent (within one point) agreement, plus the
value errors. Classes get accuracy, macro-F1, per-class recall and a confusion matrix.
Continuous values get RMSE, MAE and R².
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    recall_score,
)

# The metric that picks the best epoch, and whether a higher value is better.
PRIMARY_METRIC = {"score": ("qwk", True), "classification": ("macro_f1", True), "regression": ("rmse", False)}

# Metrics whose value is a single number, in the order pages and the command line show them.
SCALAR_METRICS = ("qwk", "exact_agreement", "adjacent_agreement", "accuracy", "macro_f1", "rmse", "mae", "r2")


def metric_family(problem: str, score_points: tuple[int, int] | None) -> str:
    """Return ``"score"``, ``"classification"`` or ``"regression"``."""
    if problem == "classification":
        return "classification"
    return "score" if score_points is not None else "regression"


def round_to_points(values: np.ndarray, score_points: tuple[int, int]) -> np.ndarray:
    """Round predicted values to whole score points within the rubric's range."""
    low, high = score_points
    return np.clip(np.rint(values), low, high).astype(np.int64)


def score_metrics(y_true: np.ndarray, y_pred: np.ndarray, score_points: tuple[int, int] | None = None) -> dict:
    """Agreement between teacher scores and predicted scores, both whole points.

    The confusion matrix has one row (teacher) and one column (model) per score point
    of ``score_points``, or of the points that occur when it is None.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    points = np.union1d(y_true, y_pred)
    if score_points is not None:
        points = np.union1d(points, np.arange(score_points[0], score_points[1] + 1))
    if len(points) < 2:
        # One score point on both sides: kappa is undefined, and agreement is perfect.
        qwk = 1.0
    else:
        qwk = cohen_kappa_score(y_true, y_pred, weights="quadratic", labels=points)
    return {
        "qwk": _finite(qwk),
        "exact_agreement": float(np.mean(y_true == y_pred)),
        "adjacent_agreement": float(np.mean(np.abs(y_true - y_pred) <= 1)),
        **regression_metrics(y_true, y_pred),
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=points).tolist(),
        "labels": [str(point) for point in points],
    }


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    return {
        "rmse": float(math.sqrt(mean_squared_error(y_true, y_pred))),
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "r2": _finite(r2_score(y_true, y_pred)) if len(y_true) > 1 else 0.0,
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> dict:
    """Accuracy, macro-F1, recall per class and the confusion matrix (rows: true class)."""
    indices = list(range(len(labels)))
    recall = recall_score(y_true, y_pred, labels=indices, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "recall_per_class": {label: float(value) for label, value in zip(labels, recall)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        "labels": list(labels),
    }


def compute_metrics(problem: str, y_true: np.ndarray, y_pred: np.ndarray, *,
                    labels: list[str] | None = None,
                    score_points: tuple[int, int] | None = None) -> dict:
    """Compute the metrics that fit the target.

    Args:
        problem: ``"classification"`` or ``"regression"``.
        y_true: Class indices or values from the data.
        y_pred: Predicted class indices, or predicted values before rounding.
        labels: Class names, for classification.
        score_points: Rubric range when the values are whole score points.
    """
    family = metric_family(problem, score_points)
    if family == "classification":
        return classification_metrics(y_true, y_pred, labels or [])
    if family == "score":
        return score_metrics(y_true, round_to_points(np.asarray(y_pred), score_points), score_points)
    return regression_metrics(y_true, y_pred)


def is_improvement(family: str, candidate: float, best: float | None) -> bool:
    """Tell whether ``candidate`` beats ``best`` on the primary metric of ``family``."""
    if best is None:
        return True
    _, higher_is_better = PRIMARY_METRIC[family]
    return candidate > best if higher_is_better else candidate < best


def _finite(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0
