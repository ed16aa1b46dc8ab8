import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, cohen_kappa_score

from edutune_core.evaluation import ValidationSet
from edutune_core.fairness import MIN_GROUP_ROWS, flag_message, group_results, groups_table
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping


def score_set(teacher, model, groups, raw=None) -> ValidationSet:
    predictions = pd.DataFrame({"row": np.arange(len(teacher)), "target": teacher, "prediction": model})
    if raw is not None:
        predictions["raw_prediction"] = raw
    return ValidationSet(predictions=predictions, source=pd.DataFrame({"school": groups}),
                         mapping=ColumnMapping(target="score", text_column="essay", problem=REGRESSION,
                                               group_columns=["school"]),
                         labels=None, score_points=(1, 4), family="score")


def pass_fail_set(failed, flagged, groups, probability=None) -> ValidationSet:
    labels = ["fail", "pass"]
    predictions = pd.DataFrame({"row": np.arange(len(failed)),
                                "target": np.where(failed, "fail", "pass"),
                                "prediction": np.where(flagged, "fail", "pass")})
    if probability is not None:
        predictions["probability_fail"] = probability
        predictions["probability_pass"] = 1 - np.asarray(probability)
    return ValidationSet(predictions=predictions, source=pd.DataFrame({"gender": groups}),
                         mapping=ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60,
                                               group_columns=["gender"]),
                         labels=labels, score_points=None, family="classification")


def test_scores_per_group_match_sklearn():
    rng = np.random.default_rng(1)
    teacher = rng.integers(1, 5, 60)
    model = np.clip(teacher + rng.integers(-1, 2, 60), 1, 4)
    groups = np.repeat(["north", "south"], 30)
    results = group_results(score_set(teacher, model, groups), ["school"])
    north = results["groups"]["school"][0]
    assert north["group"] == "north"
    assert north["rows"] == 30
    assert north["qwk"] == pytest.approx(cohen_kappa_score(teacher[:30], model[:30], weights="quadratic",
                                                           labels=[1, 2, 3, 4]))
    assert north["exact_agreement"] == pytest.approx(np.mean(teacher[:30] == model[:30]))
    assert results["overall"]["rows"] == 60


def test_dsm_pinned_by_hand():
    teacher = np.array([1, 3, 1, 3])
    machine = np.array([1.0, 3.0, 2.0, 4.0])
    results = group_results(score_set(teacher, machine, np.array(["A", "A", "B", "B"]), raw=machine), ["school"])
    rows = {row["group"]: row for row in results["groups"]["school"]}
    # Teacher z-scores are -/+0.866 and machine z-scores -1.162, 0.387, -0.387, 1.162 (sample SDs).
    assert rows["A"]["dsm"] == pytest.approx(-np.sqrt(0.15))
    assert rows["B"]["dsm"] == pytest.approx(np.sqrt(0.15))
    assert results["overall"]["dsm"] == pytest.approx(0.0)


def test_generous_group_flagged_high():
    teacher = np.array([1, 2, 3, 4] * 6)
    raw = teacher + np.r_[np.full(12, 0.5), np.zeros(12)]
    groups = np.repeat(["A", "B"], 12)
    results = group_results(score_set(teacher, np.clip(np.rint(raw), 1, 4), groups, raw=raw), ["school"])
    z_machine = (raw - raw.mean()) / raw.std(ddof=1)
    z_teacher = (teacher - teacher.mean()) / teacher.std(ddof=1)
    rows = {row["group"]: row for row in results["groups"]["school"]}
    assert rows["A"]["dsm"] == pytest.approx(np.mean((z_machine - z_teacher)[:12]))
    assert rows["A"]["dsm"] > 0.1
    keys = [flag["key"] for flag in results["flags"]]
    assert keys == ["fairness.dsm_high", "fairness.dsm_low"]
    assert [flag["params"]["group"] for flag in results["flags"]] == ["A", "B"]


def test_constant_scores_have_no_dsm():
    teacher = np.array([2, 3] * 10)
    results = group_results(score_set(teacher, np.full(20, 3), np.array(["X"] * 20), raw=np.full(20, 3.0)),
                            ["school"])
    assert "dsm" not in results["overall"]
    assert "dsm" not in results["groups"]["school"][0]


def test_dsm_flag_message_in_chinese():
    flag = {"key": "fairness.dsm_low", "params": {"column": "school", "group": "B", "rows": 12, "dsm": "0.26",
                                                  "limit": 0.1}}
    assert "低 0.26 个标准差" in flag_message(flag, "zh")
    assert "lower" in flag_message(flag, "en")


def test_recall_and_flagged_share_per_group():
    failed = np.array([True] * 10 + [False] * 10 + [True] * 10 + [False] * 10)
    # Group "f": every failing student flagged. Group "m": 5 of 10 flagged, no false alarms.
    flagged = np.array([True] * 10 + [False] * 10 + [True] * 5 + [False] * 5 + [False] * 10)
    results = group_results(pass_fail_set(failed, flagged, np.repeat(["f", "m"], 20)), ["gender"],
                            at_risk_label="fail")
    rows = {row["group"]: row for row in results["groups"]["gender"]}
    assert rows["f"]["recall"] == 1.0
    assert rows["m"]["recall"] == 0.5
    assert rows["m"]["flagged_share"] == 0.25
    assert rows["m"]["at_risk_share"] == 0.5
    assert rows["m"]["accuracy"] == pytest.approx(accuracy_score(failed[20:], flagged[20:]))
    assert results["overall"]["recall"] == 0.75
    keys = {(flag["key"], flag["params"]["group"]) for flag in results["flags"]}
    assert ("fairness.recall_gap", "m") in keys
    assert ("fairness.flags_too_few", "m") in keys
    assert ("fairness.metric_gap", "m") in keys
    assert not any(group == "f" for _, group in keys)


def test_threshold_changes_who_is_flagged():
    failed = np.array([True, False] * 10)
    probability = np.array([0.45, 0.2] * 10)
    validation = pass_fail_set(failed, probability >= 0.5, ["A"] * 20, probability=probability)
    default = group_results(validation, ["gender"], at_risk_label="fail")
    lowered = group_results(validation, ["gender"], at_risk_label="fail", threshold=0.4)
    assert default["overall"]["recall"] == 0.0
    assert lowered["overall"]["recall"] == 1.0
    assert lowered["overall"]["flagged_share"] == 0.5


def test_small_group_is_not_judged():
    failed = np.array([True, False] * 12)
    flagged = np.array([False] * 24)
    groups = np.array(["big"] * (24 - MIN_GROUP_ROWS + 1) + ["small"] * (MIN_GROUP_ROWS - 1))
    results = group_results(pass_fail_set(failed, flagged, groups), ["gender"], at_risk_label="fail")
    small = [flag for flag in results["flags"] if flag["params"]["group"] == "small"]
    assert [flag["key"] for flag in small] == ["fairness.small_group"]


def test_missing_values_form_their_own_group():
    failed = np.array([True, False] * 10)
    groups = pd.Series(["A"] * 10 + [None] * 10, dtype=object)
    results = group_results(pass_fail_set(failed, failed, groups), ["gender"])
    assert [row["group"] for row in results["groups"]["gender"]] == ["?", "A"]


def test_unknown_group_column_is_reported():
    failed = np.array([True, False] * 10)
    results = group_results(pass_fail_set(failed, failed, ["A"] * 20), ["class"])
    assert results["groups"] == {}
    assert results["flags"] == [{"key": "fairness.column_missing", "params": {"column": "class"}}]


@pytest.mark.parametrize("lang, words", [("en", "accuracy is 0.50"), ("zh", "为 0.50")])
def test_flag_messages_in_both_languages(lang, words):
    flag = {"key": "fairness.metric_gap", "params": {"column": "class", "group": "7B", "rows": 30,
                                                     "metric": "accuracy", "value": "0.50", "overall": "0.80"}}
    message = flag_message(flag, lang)
    assert words in message
    assert "7B" in message


def test_groups_table_starts_with_all_students():
    failed = np.array([True, False] * 10)
    results = group_results(pass_fail_set(failed, failed, ["A"] * 10 + ["B"] * 10), ["gender"])
    table = groups_table(results, "gender")
    assert table["group"].tolist() == ["*", "A", "B"]
    assert table["accuracy"].tolist() == [1.0, 1.0, 1.0]
