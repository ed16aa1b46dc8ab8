import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, f1_score, mean_squared_error

from edutune_core.metrics import (
    classification_metrics,
    compute_metrics,
    is_improvement,
    regression_metrics,
    round_to_points,
    score_metrics,
)


def test_score_metrics_match_sklearn():
    teacher = np.array([1, 2, 3, 4, 4, 2, 3, 1])
    model = np.array([1, 3, 3, 4, 2, 2, 4, 2])
    metrics = score_metrics(teacher, model)
    assert metrics["qwk"] == pytest.approx(cohen_kappa_score(teacher, model, weights="quadratic"))
    assert metrics["exact_agreement"] == pytest.approx(4 / 8)
    assert metrics["adjacent_agreement"] == pytest.approx(7 / 8)
    assert metrics["rmse"] == pytest.approx(np.sqrt(mean_squared_error(teacher, model)))


def test_score_metrics_pinned_values():
    metrics = score_metrics(np.array([0, 1, 2, 3]), np.array([0, 1, 3, 3]))
    # Worked by hand: observed weighted disagreement 4/36, expected 48/36, so 1 - 4/48.
    assert metrics["qwk"] == pytest.approx(11 / 12)
    assert metrics["mae"] == pytest.approx(0.25)


def test_score_confusion_covers_whole_scale():
    metrics = score_metrics(np.array([2, 3]), np.array([2, 2]), score_points=(1, 5))
    assert metrics["labels"] == ["1", "2", "3", "4", "5"]
    assert metrics["confusion_matrix"][1][1] == 1
    assert metrics["confusion_matrix"][2][1] == 1
    assert np.array(metrics["confusion_matrix"]).sum() == 2


def test_perfect_constant_scores_have_qwk_one():
    assert score_metrics(np.array([3, 3, 3]), np.array([3, 3, 3]))["qwk"] == 1.0


def test_constant_predictions_have_qwk_zero():
    assert score_metrics(np.array([1, 2, 3, 4]), np.array([2, 2, 2, 2]))["qwk"] == pytest.approx(0.0)


def test_round_to_points_clips_to_scale():
    assert round_to_points(np.array([-0.7, 1.49, 1.51, 6.2]), (1, 5)).tolist() == [1, 1, 2, 5]


def test_classification_metrics_match_sklearn():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0, 2])
    metrics = classification_metrics(true, predicted, ["A", "B", "C"])
    assert metrics["accuracy"] == pytest.approx(5 / 7)
    assert metrics["macro_f1"] == pytest.approx(f1_score(true, predicted, average="macro"))
    assert metrics["recall_per_class"] == pytest.approx({"A": 0.5, "B": 1.0, "C": 2 / 3})
    assert metrics["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 2]]


def test_regression_metrics_pinned():
    metrics = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0]))
    assert metrics["rmse"] == pytest.approx(np.sqrt((0.25 + 0 + 1) / 3))
    assert metrics["mae"] == pytest.approx(0.5)
    assert metrics["r2"] == pytest.approx(1 - 1.25 / 2)


def test_compute_metrics_rounds_scores():
    metrics = compute_metrics("regression", np.array([1, 2, 3]), np.array([1.2, 2.4, 2.6]), score_points=(1, 3))
    assert metrics["exact_agreement"] == 1.0


def test_compute_metrics_continuous_values_have_no_kappa():
    metrics = compute_metrics("regression", np.array([1.5, 2.5]), np.array([1.0, 2.0]))
    assert "qwk" not in metrics
    assert metrics["mae"] == pytest.approx(0.5)


@pytest.mark.parametrize("family, candidate, best, expected", [
    ("score", 0.8, 0.7, True), ("score", 0.6, 0.7, False), ("regression", 1.0, 2.0, True),
    ("regression", 3.0, 2.0, False), ("classification", 0.1, None, True)])
def test_is_improvement(family, candidate, best, expected):
    assert is_improvement(family, candidate, best) is expected


def test_half_point_scores_match_doubled_whole_points():
    """QWK and exact agreement on a 0-3 half-point rubric equal those on the same scores doubled (0-6)."""
    teacher = np.array([0, 0.5, 1.5, 2, 3, 2.5, 1, 1])
    model = np.array([0.5, 0.5, 1, 2, 2, 2.5, 1.5, 3])
    metrics = score_metrics(teacher, model, score_points=(0, 3, 0.5))
    doubled = cohen_kappa_score((teacher * 2).astype(int), (model * 2).astype(int), weights="quadratic",
                                labels=list(range(7)))
    assert metrics["qwk"] == pytest.approx(doubled)
    assert metrics["exact_agreement"] == pytest.approx(3 / 8)
    # At most one score unit apart: every pair but 1 against 3.
    assert metrics["adjacent_agreement"] == pytest.approx(7 / 8)
    assert metrics["labels"] == ["0", "0.5", "1", "1.5", "2", "2.5", "3"]
    assert np.array(metrics["confusion_matrix"]).shape == (7, 7)


def test_round_to_half_points_clips_to_scale():
    rounded = round_to_points(np.array([-0.4, 0.74, 0.76, 2.2, 3.4]), (0, 3, 0.5))
    assert rounded.tolist() == [0.0, 0.5, 1.0, 2.0, 3.0]


def test_compute_metrics_rounds_half_point_scores():
    metrics = compute_metrics("regression", np.array([1.5, 2.0, 2.5]), np.array([1.6, 2.2, 2.7]),
                              score_points=(0, 3, 0.5))
    assert metrics["exact_agreement"] == pytest.approx(1.0)
    assert metrics["qwk"] == pytest.approx(1.0)
