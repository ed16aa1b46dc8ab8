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
