"""Evaluation metrics for the three kinds of target, computed with scikit-learn.

Scores (whole points on a rubric) are compared as essay-scoring research does: quadratic
weighted kappa (QWK), exact agreement and adjacent (within one point) agreement, plus the
value errors. Classes get accuracy, macro-F1, per-class recall and a confusion matrix.
Continuous values get RMSE, MAE and R². Two-class models also get ROC-AUC and a
calibration curve from their class probabilities, and cross-validated runs get the mean
and standard deviation of each metric over the folds.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)

# The metric that picks the best epoch, and whether a higher value is better.
PRIMARY_METRIC = {"score": ("qwk", True), "classification": ("macro_f1", True), "regression": ("rmse", False)}

# Metrics whose value is a single number, in the order pages and the command line show them.
SCALAR_METRICS = ("qwk", "exact_agreement", "adjacent_agreement", "accuracy", "macro_f1", "rmse", "mae", "r2")


def metric_family(problem: str, score_points: tuple | None) -> str:
    """Return ``"score"``, ``"classification"`` or ``"regression"``."""
    if problem == "classification":
        return "classification"
    return "score" if score_points is not None else "regression"


def score_step(score_points: tuple | list | None) -> float:
    """Return the distance between two score points: the third item of ``score_points``, else 1."""
    return float(score_points[2]) if score_points is not None and len(score_points) > 2 else 1.0


def point_values(score_points: tuple | list) -> np.ndarray:
    """Return every score point of a rubric ``(low, high)`` or ``(low, high, step)``."""
    low, high, step = score_points[0], score_points[1], score_step(score_points)
    count = int(round((high - low) / step)) + 1
    points = low + step * np.arange(count)
    return points.astype(np.int64) if step == 1 else np.round(points, 6)


def round_to_points(values: np.ndarray, score_points: tuple | list) -> np.ndarray:
    """Round predicted values to the rubric's score points (whole, or every ``step``) within its range."""
    low, high, step = score_points[0], score_points[1], score_step(score_points)
    if step == 1:
        return np.clip(np.rint(values), low, high).astype(np.int64)
    rounded = low + step * np.rint((np.asarray(values, dtype=np.float64) - low) / step)
    return np.round(np.clip(rounded, low, high), 6)


def _as_points(values: np.ndarray, score_points: tuple | list | None) -> np.ndarray:
    if score_step(score_points) == 1:
        return np.asarray(values, dtype=np.int64)
    return np.round(np.asarray(values, dtype=np.float64), 6)


def _point_label(point: float) -> str:
    return f"{point:g}"


def score_metrics(y_true: np.ndarray, y_pred: np.ndarray, score_points: tuple | list | None = None) -> dict:
    """Agreement between teacher scores and predicted scores, both on the rubric's points.

    The confusion matrix has one row (teacher) and one column (model) per score point
    of ``score_points``, or of the points that occur when it is None. QWK weighs a
    disagreement by how many points apart the two scores are, so on a half-point
    rubric 3 against 4 counts as two steps. Adjacent agreement means at most one
    score unit apart (two steps on a half-point rubric).
    """
    y_true = _as_points(y_true, score_points)
    y_pred = _as_points(y_pred, score_points)
    points = np.union1d(y_true, y_pred)
    if score_points is not None:
        points = np.union1d(points, point_values(score_points))
    # scikit-learn takes class labels, not fractional values, so each score becomes the
    # index of its point. Its quadratic weights come from the labels' positions anyway,
    # so whole-point results are unchanged.
    true_index, predicted_index = np.searchsorted(points, y_true), np.searchsorted(points, y_pred)
    indices = np.arange(len(points))
    if len(points) < 2:
        # One score point on both sides: kappa is undefined, and agreement is perfect.
        qwk = 1.0
    else:
        qwk = cohen_kappa_score(true_index, predicted_index, weights="quadratic", labels=indices)
    return {
        "qwk": _finite(qwk),
        "exact_agreement": float(np.mean(y_true == y_pred)),
        "adjacent_agreement": float(np.mean(np.abs(y_true - y_pred) <= 1 + 1e-9)),
        **regression_metrics(y_true, y_pred),
        "confusion_matrix": confusion_matrix(true_index, predicted_index, labels=indices).tolist(),
        "labels": [_point_label(point) for point in points],
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
    """Accuracy, macro-F1, precision and recall per class and the confusion matrix (rows: true class).

    A class that is never predicted has precision 0, and a class that never occurs has
    recall 0, as scikit-learn's ``zero_division=0`` gives.
    """
    indices = list(range(len(labels)))
    recall = recall_score(y_true, y_pred, labels=indices, average=None, zero_division=0)
    precision = precision_score(y_true, y_pred, labels=indices, average=None, zero_division=0)
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=indices, average="macro", zero_division=0)),
        "recall_per_class": {label: float(value) for label, value in zip(labels, recall)},
        "precision_per_class": {label: float(value) for label, value in zip(labels, precision)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=indices).tolist(),
        "labels": list(labels),
    }


def compute_metrics(problem: str, y_true: np.ndarray, y_pred: np.ndarray, *,
                    labels: list[str] | None = None,
                    score_points: tuple | None = None) -> dict:
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


def binary_metrics(is_positive: np.ndarray, probability: np.ndarray, bins: int = 10) -> dict:
    """ROC-AUC, Brier score and a calibration curve for one class of a two-class model.

    Args:
        is_positive: True where the row belongs to the class of interest.
        probability: The model's probability of that class for each row.
        bins: Most equal-width probability bins of the calibration curve; fewer are
            used for small sets, so that a bin averages about ten rows.

    Returns:
        ``roc_auc`` (None when only one class occurs, because it is undefined then),
        ``brier`` and ``calibration`` with the mean predicted probability, the observed
        share of positives and the row count of each non-empty bin.
    """
    is_positive = np.asarray(is_positive, dtype=bool)
    probability = np.asarray(probability, dtype=np.float64)
    bins = int(min(bins, max(2, len(probability) // 10)))
    # The same equal-width bins as sklearn.calibration.calibration_curve(strategy="uniform").
    bin_ids = np.searchsorted(np.linspace(0.0, 1.0, bins + 1)[1:-1], probability)
    counts = np.bincount(bin_ids, minlength=bins)
    filled = counts > 0
    predicted = np.bincount(bin_ids, weights=probability, minlength=bins)[filled] / counts[filled]
    observed = np.bincount(bin_ids, weights=is_positive, minlength=bins)[filled] / counts[filled]
    both_classes = 0 < is_positive.sum() < len(is_positive)
    return {
        "roc_auc": float(roc_auc_score(is_positive, probability)) if both_classes else None,
        "brier": float(brier_score_loss(is_positive, probability)),
        "calibration": {"predicted": predicted.tolist(), "observed": observed.tolist(),
                        "count": counts[filled].tolist()},
    }


def score_distribution(teacher: np.ndarray, model: np.ndarray, score_points: tuple | list | None = None) -> dict:
    """Count how often the teacher and the model give each score point.

    Returns:
        ``points`` (every point of ``score_points``, plus any other point that occurs),
        and the ``teacher`` and ``model`` counts per point.
    """
    teacher = _as_points(teacher, score_points)
    model = _as_points(model, score_points)
    points = np.union1d(teacher, model)
    if score_points is not None:
        points = np.union1d(points, point_values(score_points))
    return {
        "points": points.tolist(),
        "teacher": [int(np.sum(teacher == point)) for point in points],
        "model": [int(np.sum(model == point)) for point in points],
    }


def summarize_folds(fold_metrics: list[dict]) -> dict:
    """Average the scalar metrics of several folds and measure their spread.

    Returns:
        The mean of each scalar metric that every fold has, and ``spread`` with its
        sample standard deviation over the folds (ddof=1; 0.0 for a single fold).
    """
    names = [name for name in SCALAR_METRICS if fold_metrics and all(name in fold for fold in fold_metrics)]
    summary: dict = {}
    spread: dict[str, float] = {}
    for name in names:
        values = np.array([fold[name] for fold in fold_metrics], dtype=np.float64)
        summary[name] = float(values.mean())
        spread[name] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    summary["spread"] = spread
    return summary
