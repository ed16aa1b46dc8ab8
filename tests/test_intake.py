"""Tests for edutune_core.intake (labels join, non-numeric scores) and for how targets
and labels map to classes and back, from files the tests write themselves."""

from __future__ import annotations

import io
import json

import numpy as np
import openpyxl
import pandas as pd
import pytest

from edutune_core.config import TrainConfig
from edutune_core.data import load_table
from edutune_core.i18n import DataError
from edutune_core.intake import (
    MISSING_TARGET,
    NO_LABEL,
    NON_NUMERIC_TARGET,
    drop_non_numeric_target,
    find_non_numeric_target,
    id_keys,
    join_labels,
    propose_join_columns,
)
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data


def essays_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "essay_id": ["007", "008", "009", "010", ""],
        "essay": ["My summer at the lake.", "Why uniforms help.", "A day at school.", "My best friend.", "No id."],
    })


def scores_frame() -> pd.DataFrame:
    return pd.DataFrame({"id": [7, 8, 8, 11, 10], "score": [3, 4, 4, 2, 5], "essay": ["x", "y", "y", "z", "w"]})


def test_join_matches_leading_zeros_and_keeps_order() -> None:
    joined = join_labels(essays_frame(), scores_frame(), "essay_id", "id", texts_name="essays.csv",
                         labels_name="scores.xlsx")

    assert joined.frame["essay_id"].tolist() == ["007", "008", "010"]
    assert joined.frame["score"].tolist() == [3, 4, 5]
    assert joined.matched_rows == 3


def test_join_reports_unmatched_rows_both_sides() -> None:
    joined = join_labels(essays_frame(), scores_frame(), "essay_id", "id", texts_name="essays.csv",
                         labels_name="scores.xlsx")

    assert joined.unmatched_texts == 2
    assert joined.unmatched_text_ids == "009"
    assert joined.unmatched_labels == 1
    assert joined.unmatched_label_ids == "11"
    assert joined.dropped_rows == {NO_LABEL: 2}


def test_join_merges_repeated_rows_and_renames_clashes() -> None:
    joined = join_labels(essays_frame(), scores_frame(), "essay_id", "id", texts_name="essays.csv",
                         labels_name="scores.xlsx")

    assert joined.repeated_label_rows == 1
    assert joined.renamed == {"essay": "essay (scores)"}
    assert list(joined.frame.columns) == ["essay_id", "essay", "score", "essay (scores)"]
    assert joined.frame["essay"].iloc[0] == "My summer at the lake."


def test_join_summary_has_no_ids() -> None:
    joined = join_labels(essays_frame(), scores_frame(), "essay_id", "id", texts_name="essays.csv",
                         labels_name="scores.xlsx")

    summary = json.dumps(joined.summary())
    assert "009" not in summary
    assert json.loads(summary) == {"matched_rows": 3, "unmatched_texts": 2, "unmatched_labels": 1,
                                   "repeated_label_rows": 1}


def test_id_keys_normalise_cells() -> None:
    keys = id_keys(pd.Series(["007", 7, 7.0, " S01 ", None, "N/A", "000"], dtype=object))

    assert [None if pd.isna(key) else key for key in keys] == ["7", "7", "7", "S01", None, None, "0"]


def test_join_conflicting_label_rows_rejected() -> None:
    labels = pd.DataFrame({"id": ["7", "8", "007"], "score": [3, 4, 5]})

    with pytest.raises(DataError) as raised:
        join_labels(essays_frame(), labels, "essay_id", "id", texts_name="essays.csv", labels_name="scores.csv")

    error = raised.value
    assert error.key == "intake.duplicate_label_ids"
    english, chinese = error.message("en"), error.message("zh")
    for text in ('"7"', "scores.csv", "rows 1, 3", "Keep one row per ID"):
        assert text in english
    for text in ("“7”", "scores.csv", "第 1, 3 行", "每个 ID 只保留一行"):
        assert text in chinese


def test_join_without_shared_ids_rejected() -> None:
    labels = pd.DataFrame({"student": ["S1", "S2"], "score": [3, 4]})

    with pytest.raises(DataError) as raised:
        join_labels(essays_frame(), labels, "essay_id", "student", texts_name="essays.csv", labels_name="marks.csv")

    error = raised.value
    assert error.key == "intake.no_matching_ids"
    english, chinese = error.message("en"), error.message("zh")
    for text in ('"essay_id" of essays.csv', '"student" of marks.csv', "007, 008, 009", "S1, S2",
                 "Choose the two columns"):
        assert text in english
    for text in ("essays.csv 的“essay_id”列", "marks.csv 的“student”列", "S1, S2", "请选择"):
        assert text in chinese


@pytest.mark.parametrize("side", ["texts", "labels"])
def test_join_missing_id_column_rejected(side: str) -> None:
    text_id, label_id = ("nope", "id") if side == "texts" else ("essay_id", "nope")

    with pytest.raises(DataError) as raised:
        join_labels(essays_frame(), scores_frame(), text_id, label_id, texts_name="essays.csv",
                    labels_name="scores.csv")

    error = raised.value
    assert error.key == "intake.id_column_missing"
    assert '"nope" is not in' in error.message("en")
    assert "“nope”列" in error.message("zh")
    assert ("essays.csv" if side == "texts" else "scores.csv") in error.message("en")


def test_propose_join_columns_by_overlap() -> None:
    texts = pd.DataFrame({"row": [1, 2, 3, 4], "essay_code": ["E01", "E02", "E03", "E04"],
                          "essay": ["long text one", "long text two", "long text three", "long text four"]})
    labels = pd.DataFrame({"n": [1, 2, 3, 4], "code": ["E03", "E04", "E05", "E06"], "score": [1, 2, 2, 3]})

    # "row" and "n" are ID-like too, and they share four keys where the codes share two.
    assert propose_join_columns(texts, labels) == ("row", "n")
    assert propose_join_columns(texts.drop(columns="row"), labels.drop(columns="n")) == ("essay_code", "code")
    assert propose_join_columns(texts.drop(columns="row"), pd.DataFrame({"x": ["a", "b"]})) == (None, None)


def xlsx_bytes(rows: list[list[object]]) -> bytes:
    workbook = openpyxl.Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_join_gbk_texts_with_excel_labels() -> None:
    texts_csv = "编号,作文\n001,我的暑假过得很充实，每天都去图书馆看书。\n002,我最喜欢的老师教我们数学。\n003,周末和家人去爬山。\n"
    texts = load_table(texts_csv.encode("gb18030"), "作文.csv").frame
    labels = load_table(xlsx_bytes([["编号", "等级"], [1, "优"], [2, "良"], [3, "差"]]), "等级.xlsx").frame

    joined = join_labels(texts, labels, *propose_join_columns(texts, labels), texts_name="作文.csv",
                         labels_name="等级.xlsx")

    assert joined.frame["编号"].tolist() == ["001", "002", "003"]
    assert joined.frame["等级"].tolist() == ["优", "良", "差"]
    assert joined.unmatched_texts == 0


def scores_with_gaps() -> pd.DataFrame:
    table = load_table("姓名;成绩\n张三;85\n李四;缺考\n王五;14,5\n赵六;\n钱七;absent\n孙八;N/A\n周九;90\n吴十;77\n"
                       .encode(), "成绩.csv")
    return table.frame


def test_find_non_numeric_target_counts_and_examples() -> None:
    found = find_non_numeric_target(scores_with_gaps(), "成绩")

    assert found.non_numeric == 2
    assert found.missing == 2
    assert found.total == 4
    assert found.values == ["缺考", "absent"]
    assert found.rows == [(2, "缺考"), (4, ""), (5, "absent"), (6, "N/A")]


def test_non_numeric_target_until_dropped() -> None:
    frame = scores_with_gaps()
    mapping = ColumnMapping(target="成绩", problem=REGRESSION)

    with pytest.raises(DataError) as raised:
        prepare_data(frame, mapping)
    assert raised.value.key == "data.non_numeric_target"
    assert "'缺考'" in raised.value.message("en")
    assert "不是数字" in raised.value.message("zh")

    kept, dropped = drop_non_numeric_target(frame, "成绩", allow_decimal_comma=True)
    assert dropped == {NON_NUMERIC_TARGET: 2, MISSING_TARGET: 2}
    assert kept["成绩"].tolist() == [85.0, 14.5, 90.0, 77.0]
    assert kept["姓名"].tolist() == ["张三", "王五", "周九", "吴十"]
    assert kept["成绩"].dtype == "float64"


def test_dropped_scores_become_int() -> None:
    frame = pd.DataFrame({"score": ["3", "absent", "4", "5"]})

    kept, dropped = drop_non_numeric_target(frame, "score")

    assert kept["score"].dtype == "int64"
    assert kept["score"].tolist() == [3, 4, 5]
    assert dropped == {NON_NUMERIC_TARGET: 1}


def test_decimal_comma_needs_permission() -> None:
    frame = pd.DataFrame({"score": ["14,5", "absent", "12", "13", "15"]})

    assert find_non_numeric_target(frame, "score", allow_decimal_comma=True).values == ["absent"]
    found = find_non_numeric_target(frame, "score", allow_decimal_comma=False)

    assert found.non_numeric == 2
    assert found.values == ["14,5", "absent"]


@pytest.mark.parametrize("values", [
    pytest.param([85, 90, 70], id="numeric-without-gaps"),
    pytest.param(["A", "B", "absent", "C"], id="labels-not-scores"),
    pytest.param(["85", "90", "77"], id="text-numbers-without-gaps"),
])
def test_find_non_numeric_target_none(values: list) -> None:
    assert find_non_numeric_target(pd.DataFrame({"score": values}), "score") is None


@pytest.mark.parametrize("values", [
    pytest.param([85.0, None, 90.0, float("nan")], id="numeric-with-nan"),
    pytest.param(["85", "", "90", "N/A"], id="text-with-blank-and-marker"),
])
def test_missing_scores_found(values: list) -> None:
    found = find_non_numeric_target(pd.DataFrame({"score": values}), "score")

    assert found.non_numeric == 0
    assert found.missing == 2
    assert [row for row, _ in found.rows] == [2, 4]


def test_missing_scores_dropped_from_numeric_column() -> None:
    table = load_table(b"name,score\nAda,91\nBo,N/A\nCy,-\nDi,\nEd,70\n", "gaps.csv")
    assert table.frame["score"].dtype == "float64"

    kept, dropped = drop_non_numeric_target(table.frame, "score")

    assert kept["name"].tolist() == ["Ada", "Ed"]
    assert kept["score"].dtype == "int64"
    assert dropped == {"data.dropped.missing_target": 3}


def test_find_non_numeric_target_missing_column() -> None:
    with pytest.raises(DataError) as raised:
        find_non_numeric_target(pd.DataFrame({"score": [1]}), "grade")

    assert raised.value.key == "data.missing_column"
    assert "grade" in raised.value.message("zh")


@pytest.mark.parametrize(("values", "labels"), [
    pytest.param(list("ABCDFA") * 3, ["A", "B", "C", "D", "F"], id="letter-grades"),
    pytest.param(["优", "良", "中", "差"] * 4, ["中", "优", "差", "良"], id="chinese-grades"),
    pytest.param(["pass", "fail", "pass"] * 4, ["fail", "pass"], id="pass-fail"),
    pytest.param([3, 4, 5, 3, 4, 5] * 2, ["3", "4", "5"], id="numbers-from-3"),
    pytest.param([3.0, 5.0, 7.0] * 4, ["3", "5", "7"], id="whole-floats"),
])
def test_labels_map_to_classes_and_back(values: list, labels: list[str]) -> None:
    frame = pd.DataFrame({"feature": range(len(values)), "label": values})

    data = prepare_data(frame, ColumnMapping(target="label", problem=CLASSIFICATION))

    assert data.labels == labels
    assert data.targets.min() == 0
    assert data.targets.max() == len(labels) - 1
    expected = [str(int(value)) if isinstance(value, float) else str(value) for value in values]
    assert [data.labels[index] for index in data.targets] == expected


@pytest.mark.parametrize(("values", "key", "english", "chinese"), [
    pytest.param(["A"] * 12, "data.single_class", ['only one class ("A")', "Add rows of other classes"],
                 ["只有一个类别（“A”）", "请添加其他类别"], id="single-class"),
    pytest.param(["A"] * 6 + ["B"] * 5 + ["C"], "data.rare_class", ['Class "C"', "only 1 rows", "at least 2"],
                 ["“C”只有 1 行", "至少需要 2 行"], id="rare-class"),
])
def test_class_problems_named_in_both_languages(values, key, english, chinese) -> None:
    with pytest.raises(DataError) as raised:
        prepare_data(pd.DataFrame({"x": range(len(values)), "grade": values}),
                     ColumnMapping(target="grade", problem=CLASSIFICATION))

    assert raised.value.key == key
    for text in english:
        assert text in raised.value.message("en")
    for text in chinese:
        assert text in raised.value.message("zh")


def test_no_spread_named_in_both_languages() -> None:
    with pytest.raises(DataError) as raised:
        prepare_data(pd.DataFrame({"x": range(12), "score": [7.5] * 12}),
                     ColumnMapping(target="score", problem=REGRESSION))

    assert raised.value.key == "data.no_spread"
    assert '"score" is 7.5' in raised.value.message("en")
    assert "Choose another target column" in raised.value.message("en")
    assert "“score”的所有值都是 7.5" in raised.value.message("zh")


def test_predictions_come_back_in_user_labels(tmp_path) -> None:
    rng = np.random.default_rng(0)
    marks = rng.uniform(0, 100, 120).round(1)
    grades = np.select([marks >= 85, marks >= 70, marks >= 55], ["优", "良", "中"], "差")
    frame = pd.DataFrame({"平时成绩": marks, "缺勤": rng.integers(0, 5, 120), "等级": grades})
    store = RunStore(tmp_path / "home")
    config = TrainConfig.for_task(False, epochs=3)

    record = execute_run(store, create_run(store, frame, ColumnMapping(target="等级"), config,
                                           data_name="等级.csv").run_id)

    assert record.status == COMPLETED, record.error
    label_map = json.loads((record.run_dir / "model" / "label_map.json").read_text(encoding="utf-8"))
    assert sorted(label_map.values()) == sorted(["优", "良", "中", "差"])
    predicted = Predictor(record.run_dir).with_predictions(frame.drop(columns=["等级"]).head(20))
    assert set(predicted["prediction"]) <= {"优", "良", "中", "差"}
    assert predicted["prediction"].notna().all()
