import numpy as np
import pytest

from edutune_core.threshold import (
    ThresholdError,
    choose_threshold,
    default_at_risk_label,
    evaluate_threshold,
    threshold_curve,
)

# Ten students, four of whom failed (True), with the model's probability of failing.
FAILED = np.array([True, True, True, True, False, False, False, False, False, False])
PROBABILITY = np.array([0.9, 0.7, 0.5, 0.2, 0.8, 0.6, 0.4, 0.3, 0.1, 0.05])


def test_threshold_for_three_of_four():
    choice = choose_threshold(FAILED, PROBABILITY, 0.75)
    # The third-highest probability among the failing students is 0.5.
    assert choice.threshold == 0.5
    assert choice.flagged == 5
    assert choice.caught == 3
    assert choice.false_alarms == 2
    assert choice.missed == 1
    assert choice.recall == 0.75
    assert choice.precision == pytest.approx(0.6)


def test_threshold_rounds_recall_up():
    # 9 of 10 of four students means catching all four.
    choice = choose_threshold(FAILED, PROBABILITY, 0.9)
    assert choice.threshold == 0.2
    assert choice.recall == 1.0
    assert choice.flagged == 8
    assert choice.false_alarms == 4


def test_threshold_is_highest_that_reaches_recall():
    rng = np.random.default_rng(4)
    positive = rng.random(80) < 0.25
    probability = rng.random(80).round(2)
    for target in (0.5, 0.7, 0.8, 0.9, 1.0):
        choice = choose_threshold(positive, probability, target)
        assert choice.recall >= target
        higher = [value for value in np.unique(probability) if value > choice.threshold]
        assert all(evaluate_threshold(positive, probability, value).recall < target for value in higher)


def test_tied_probabilities_flag_together():
    choice = choose_threshold(np.array([True, True, False]), np.array([0.6, 0.6, 0.6]), 0.5)
    assert choice.flagged == 3
    assert choice.recall == 1.0


@pytest.mark.parametrize("recall", [0, -0.1, 1.5])
def test_recall_out_of_range(recall):
    with pytest.raises(ThresholdError) as caught:
        choose_threshold(FAILED, PROBABILITY, recall)
    assert caught.value.key == "evaluation.recall_out_of_range"


def test_no_at_risk_rows():
    with pytest.raises(ThresholdError) as caught:
        choose_threshold(np.zeros(4, bool), np.array([0.1, 0.2, 0.3, 0.4]), 0.9)
    assert "4" in caught.value.message("zh")


def test_curve_is_monotonic():
    curve = threshold_curve(FAILED, PROBABILITY)
    assert curve["threshold"].is_monotonic_decreasing
    assert curve["recall"].is_monotonic_increasing
    assert curve["flagged"].tolist() == list(range(1, 11))
    assert curve["false_alarms"].iloc[-1] == 6


@pytest.mark.parametrize("labels, counts, expected", [
    (["fail", "pass"], None, "fail"), (["no", "yes"], {"no": 30, "yes": 5}, "yes"),
    (["no", "yes"], None, "no"), (["a", "b"], {"a": 3, "b": 3}, "a")])
def test_default_at_risk_label(labels, counts, expected):
    assert default_at_risk_label(labels, counts) == expected
