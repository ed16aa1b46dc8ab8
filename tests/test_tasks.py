import re
import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.i18n import DataError
from edutune_core.tasks import (
    CLASSIFICATION,
    ESSAY_SCORING,
    REGRESSION,
    TABULAR,
    TEXT_CLASSIFICATION,
    ColumnMapping,
    prepare_data,
    propose_mapping,
)


def test_propose_mapping_essays():
    mapping = propose_mapping(make_essays())
    assert mapping.text_column == "essay"
    assert mapping.target == "score"
    assert mapping.problem == REGRESSION


def test_propose_mapping_prefers_exact_target_name():
    frame = make_essays()
    frame["rater2_score"] = frame["score"]
    assert propose_mapping(frame).target == "score"


def test_propose_mapping_gradebook_uses_last_grade_column():
    mapping = propose_mapping(make_gradebook())
    assert mapping.text_column is None
    assert mapping.target == "final"
    assert mapping.problem == REGRESSION


def test_propose_mapping_chinese_labels():
    frame = pd.DataFrame({"问题": ["这道分数题怎么约分？请老师讲一讲步骤。"] * 10 + ["三角形的内角和为什么是180度？"] * 10,
                          "类别": ["分数"] * 10 + ["几何"] * 10})
    mapping = propose_mapping(frame)
    assert mapping.target == "类别"
    assert mapping.problem == CLASSIFICATION


def test_prepare_essays_score_points():
    data = prepare_data(make_essays(), ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    assert data.task == ESSAY_SCORING
    assert data.score_points == (1, 4)
    assert data.targets.dtype == np.float64
    assert len(data.texts) == 60


def test_prepare_pass_mark_makes_pass_fail():
    frame = make_gradebook()
    data = prepare_data(frame, ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60,
                                             ignore_columns=["student_id"]))
    assert data.task == TABULAR
    assert data.labels == ["fail", "pass"]
    assert list(data.features.columns) == ["hours", "absences", "class"]
    expected_pass = (frame["final"] >= 60).to_numpy()
    assert np.array_equal(data.targets == 1, expected_pass)


def test_prepare_drops_rows_without_target_and_counts_them():
    frame = make_essays()
    frame.loc[[0, 1], "score"] = np.nan
    frame.loc[2, "essay"] = "   "
    data = prepare_data(frame, ColumnMapping(target="score", text_column="essay", problem=CLASSIFICATION))
    assert data.task == TEXT_CLASSIFICATION
    assert data.dropped_rows == {"data.dropped.missing_target": 2, "data.dropped.missing_text": 1}
    assert len(data) == 57
    assert data.labels == ["1", "2", "3", "4"]


def test_numeric_labels_sort_as_numbers():
    frame = pd.DataFrame({"text": ["a b c"] * 30, "level": [10, 9, 2] * 10})
    data = prepare_data(frame, ColumnMapping(target="level", text_column="text", problem=CLASSIFICATION))
    assert data.labels == ["2", "9", "10"]


@pytest.mark.parametrize("mapping, key, fragment_en, fragment_zh", [
    (ColumnMapping(target="grade"), "data.missing_column", 'Column "grade" is not in the file', "没有“grade”这一列"),
    (ColumnMapping(target="final", problem=REGRESSION, pass_mark=60), "data.pass_mark_needs_classification",
     "Choose classification", "请选择分类"),
    (ColumnMapping(target="final", ignore_columns=["final"]), "data.target_ignored", "also in the ignored",
     "同时被列为忽略的列"),
])
def test_mapping_errors(mapping, key, fragment_en, fragment_zh):
    with pytest.raises(DataError) as raised:
        prepare_data(make_gradebook(), mapping)
    assert raised.value.key == key
    assert fragment_en in raised.value.message("en")
    assert fragment_zh in raised.value.message("zh")


def test_single_class_is_rejected_with_the_class():
    frame = pd.DataFrame({"text": ["hello there"] * 20, "label": ["A"] * 20})
    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="label", text_column="text"))
    assert raised.value.key == "data.single_class"
    assert '("A")' in raised.value.message("en")


def test_rare_class_is_rejected_with_count():
    frame = pd.DataFrame({"text": ["hello there"] * 20, "label": ["A"] * 10 + ["B"] * 9 + ["C"]})
    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="label", text_column="text"))
    assert raised.value.key == "data.rare_class"
    assert 'Class "C"' in raised.value.message("en")
    assert "只有 1 行" in raised.value.message("zh")


def test_non_numeric_scores_are_reported_not_coerced():
    frame = make_essays()
    frame["score"] = frame["score"].astype(object)
    frame.loc[[3, 4], "score"] = ["absent", "缺考"]
    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    assert raised.value.key == "data.non_numeric_target"
    message = raised.value.message("en")
    assert "2 values that are not numbers" in message
    assert "'absent'" in message
    assert "'缺考'" in message


def test_constant_regression_target_is_rejected():
    frame = make_gradebook()
    frame["final"] = 75
    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="final", problem=REGRESSION))
    assert raised.value.key == "data.no_spread"
    assert "is 75" in raised.value.message("en")


def test_unknown_labels_for_existing_model():
    frame = pd.DataFrame({"text": ["x y"] * 4, "label": ["A", "B", "Z", "A"]})
    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="label", text_column="text"), labels=["A", "B"],
                     require_target=False)
    assert "Z" in raised.value.message("en")


def score_frame(scores: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"essay": [f"essay number {index}" for index in range(len(scores))], "score": scores})


def test_rubric_range_wins_over_data() -> None:
    frame = score_frame([0, 1, 2, 3, 4, 5] * 3)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION,
                            score_min=0, score_max=6, score_step=1)

    assert prepare_data(frame, mapping).score_points == (0, 6)
    assert prepare_data(frame, ColumnMapping(target="score", text_column="essay",
                                             problem=REGRESSION)).score_points == (0, 5)


def test_half_point_rubric_keeps_its_step() -> None:
    frame = score_frame([0, 0.5, 1, 1.5, 2, 2.5] * 3)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION,
                            score_min=0, score_max=3, score_step=0.5)

    prepared = prepare_data(frame, mapping)

    assert prepared.score_points == (0.0, 3.0, 0.5)
    assert prepared.targets.tolist() == [0, 0.5, 1, 1.5, 2, 2.5] * 3
    # Without a stated step, half points are continuous values.
    assert prepare_data(frame, ColumnMapping(target="score", text_column="essay",
                                             problem=REGRESSION)).score_points is None


@pytest.mark.parametrize("scale, key, english", [
    ({"score_min": 0, "score_max": 4}, "intake.score_outside_scale", "3 scores outside the score scale 0 to 4 (for example 5)"),
    ({"score_min": 6, "score_max": 2}, "intake.score_range_invalid", "lowest score (6) must be below"),
    ({"score_step": 0.25}, "intake.score_step_invalid", "step 0.25 is not supported"),
    ({"score_min": 0, "score_max": 6, "score_step": 1}, "intake.score_off_step", "not on steps of 1"),
])
def test_rubric_checked_against_scores(scale: dict, key: str, english: str) -> None:
    scores = [0, 1, 2, 3, 4, 5] * 3
    scores[4] = 4.5 if key == "intake.score_off_step" else scores[4]
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION, **scale)

    with pytest.raises(DataError) as raised:
        prepare_data(score_frame(scores), mapping)

    assert raised.value.key == key
    assert english in raised.value.message("en")
    assert re.search(r"[\u4e00-\u9fff]", raised.value.message("zh"))


def test_rubric_stored_in_mapping_dict() -> None:
    mapping = ColumnMapping(target="score", problem=REGRESSION, score_min=0, score_max=6, score_step=0.5)

    assert ColumnMapping.from_dict(mapping.to_dict()) == mapping
    assert ColumnMapping.from_dict({"target": "score"}).score_step is None


def test_too_few_rows_names_column() -> None:
    frame = pd.DataFrame({"x": range(12), "score": [1, 2, None, None, None, 3, 4, None, 5, 6, 7, 8]})

    with pytest.raises(DataError) as raised:
        prepare_data(frame, ColumnMapping(target="score", problem=REGRESSION))

    assert raised.value.key == "data.too_few_rows"
    assert '"score"' in raised.value.message("en")
    assert "Add more rows" in raised.value.message("en")
    assert "“score”" in raised.value.message("zh")
    assert "请添加更多" in raised.value.message("zh")


def test_unknown_labels_message_says_what_to_do() -> None:
    error = DataError("data.unknown_labels", column="grade", values="E", labels="A, B, C")

    assert "train a new model" in error.message("en")
    assert "重新训练" in error.message("zh")
