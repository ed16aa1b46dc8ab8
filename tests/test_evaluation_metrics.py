import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import brier_score_loss, precision_score, roc_auc_score

from edutune_core.metrics import binary_metrics, classification_metrics, score_distribution, summarize_folds


def test_precision_per_class_matches_sklearn():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([0, 1, 1, 1, 2, 0, 2])
    metrics = classification_metrics(true, predicted, ["A", "B", "C"])
    expected = precision_score(true, predicted, average=None)
    assert list(metrics["precision_per_class"].values()) == pytest.approx(expected.tolist())
    assert metrics["precision_per_class"] == pytest.approx({"A": 0.5, "B": 2 / 3, "C": 1.0})


def test_precision_of_class_never_predicted_is_zero():
    metrics = classification_metrics(np.array([0, 1, 1]), np.array([0, 0, 0]), ["A", "B"])
    assert metrics["precision_per_class"]["B"] == 0.0
    assert metrics["recall_per_class"]["B"] == 0.0


def test_binary_metrics_match_sklearn():
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.3
    probability = np.clip(positive * 0.4 + rng.random(200) * 0.6, 0, 1)
    values = binary_metrics(positive, probability)
    assert values["roc_auc"] == pytest.approx(roc_auc_score(positive, probability))
    assert values["brier"] == pytest.approx(brier_score_loss(positive, probability))
    observed, predicted = calibration_curve(positive, probability, n_bins=10, strategy="uniform")
    assert values["calibration"]["observed"] == pytest.approx(observed.tolist())
    assert values["calibration"]["predicted"] == pytest.approx(predicted.tolist())
    assert sum(values["calibration"]["count"]) == 200


def test_binary_metrics_pinned():
    values = binary_metrics(np.array([True, False, True, False]), np.array([0.9, 0.1, 0.4, 0.6]))
    # Three of the four positive-negative pairs are ordered correctly.
    assert values["roc_auc"] == pytest.approx(0.75)
    assert values["brier"] == pytest.approx((0.01 + 0.01 + 0.36 + 0.36) / 4)
    # Four rows give two bins: [0, 0.5) holds 0.1 and 0.4, [0.5, 1] holds 0.6 and 0.9.
    assert values["calibration"]["count"] == [2, 2]
    assert values["calibration"]["observed"] == pytest.approx([0.5, 0.5])
    assert values["calibration"]["predicted"] == pytest.approx([0.25, 0.75])


def test_binary_metrics_one_class_has_no_auc():
    values = binary_metrics(np.array([True, True, True]), np.array([0.2, 0.7, 0.9]))
    assert values["roc_auc"] is None
    assert values["brier"] == pytest.approx((0.64 + 0.09 + 0.01) / 3)


def test_score_distribution_counts_every_point():
    distribution = score_distribution(np.array([1, 2, 2, 4]), np.array([2, 2, 3, 3]), score_points=(0, 4))
    assert distribution == {"points": [0, 1, 2, 3, 4], "teacher": [0, 1, 2, 0, 1], "model": [0, 0, 2, 2, 0]}


def test_summarize_folds_mean_and_sample_sd():
    folds = [{"qwk": 0.6, "rmse": 1.0}, {"qwk": 0.8, "rmse": 2.0}, {"qwk": 0.7}]
    summary = summarize_folds(folds)
    assert summary["qwk"] == pytest.approx(0.7)
    assert summary["spread"]["qwk"] == pytest.approx(0.1)
    # A metric that a fold lacks is left out rather than averaged over fewer folds.
    assert "rmse" not in summary


def test_summarize_single_fold_has_zero_spread():
    assert summarize_folds([{"accuracy": 0.5}]) == {"accuracy": 0.5, "spread": {"accuracy": 0.0}}
