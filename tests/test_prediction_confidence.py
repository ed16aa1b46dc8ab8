"""Confidence for scores and values, the alert threshold at prediction, and XLSX cells kept as text."""

import io
import math

import numpy as np
import openpyxl
import pandas as pd
import pytest
from sklearn.metrics import root_mean_squared_error

from conftest import make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.corrections import (
    AT_RISK,
    CONFIDENCE,
    INTERVAL_HIGH,
    INTERVAL_LOW,
    OUT_OF_RANGE_REASON,
    REVIEW,
    review_table,
)
from edutune_core.predict import (
    INTERVAL_Z,
    Prediction,
    Predictor,
    score_confidence,
    training_target_range,
    validation_error_std,
    value_interval,
    write_xlsx,
)
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data
from edutune_core.threshold import ALERT_SUMMARY_KEY, AlertRule


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_score_confidence_normal_model():
    raw = np.array([2.3, 3.9, 0.2, 2.5])
    rounded = np.array([2, 4, 1, 2])
    sigma = 0.5
    expected = [
        normal_cdf((2.5 - 2.3) / sigma) - normal_cdf((1.5 - 2.3) / sigma),
        # The highest score also covers true values above the rubric.
        1 - normal_cdf((3.5 - 3.9) / sigma),
        # The lowest score also covers true values below the rubric.
        normal_cdf((1.5 - 0.2) / sigma),
        normal_cdf((2.5 - 2.5) / sigma) - normal_cdf((1.5 - 2.5) / sigma),
    ]
    assert score_confidence(raw, rounded, (1, 4), sigma) == pytest.approx(expected)


def test_score_confidence_narrow_errors():
    confidence = score_confidence(np.array([3.0, 3.45]), np.array([3, 3]), (1, 5), 0.01)
    assert confidence[0] == pytest.approx(1.0)
    assert confidence[1] == pytest.approx(normal_cdf(5.0) - normal_cdf(-145.0))
    assert score_confidence(np.array([3.0]), np.array([3]), (1, 5), 0.0)[0] == pytest.approx(1.0)


def test_value_interval_covers_80_percent():
    assert INTERVAL_Z == pytest.approx(1.2816, abs=1e-4)
    interval = value_interval(np.array([50.0, 70.0]), 10.0)
    assert interval[:, 0] == pytest.approx([50 - 12.816, 70 - 12.816], abs=1e-3)
    assert interval[:, 1] == pytest.approx([50 + 12.816, 70 + 12.816], abs=1e-3)
    errors = np.random.default_rng(0).normal(0, 10.0, 20_000)
    covered = np.mean(np.abs(errors) <= INTERVAL_Z * 10.0)
    assert covered == pytest.approx(0.8, abs=0.01)


def test_error_std_from_validation_predictions(tmp_path):
    assert validation_error_std(tmp_path) is None
    table = pd.DataFrame({"row": [0, 1, 2, 3], "target": [1, 2, 3, 4], "prediction": [1, 3, 3, 4],
                          "raw_prediction": [1.2, 2.6, 3.1, 3.5]})
    table.to_csv(tmp_path / "validation_predictions.csv", index=False)
    expected = root_mean_squared_error(table["target"], table["raw_prediction"])
    assert validation_error_std(tmp_path) == pytest.approx(expected)


def test_target_range_without_snapshot(tmp_path):
    assert training_target_range(tmp_path, "final") is None
    pd.DataFrame({"row": [0, 1], "target": [41.5, 88.0]}).to_csv(tmp_path / "validation_predictions.csv", index=False)
    assert training_target_range(tmp_path, "final") == (41.5, 88.0)


@pytest.fixture(scope="module")
def value_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    frame = make_gradebook(120)
    frame["final"] = frame["final"] + 0.5
    mapping = ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"])
    record = create_run(store, frame, mapping, TrainConfig.for_task(False, epochs=3), data_name="book.csv")
    return execute_run(store, record.run_id), frame


@pytest.fixture(scope="module")
def score_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    frame = make_gradebook(120)
    frame["level"] = np.clip((frame["final"] - 40) // 10, 1, 4).astype(int)
    mapping = ColumnMapping(target="level", problem=REGRESSION, ignore_columns=["student_id", "final"])
    record = create_run(store, frame, mapping, TrainConfig.for_task(False, epochs=3), data_name="book.csv")
    return execute_run(store, record.run_id), frame


def test_score_rows_get_confidence(score_run):
    record, frame = score_run
    predictor = Predictor(record.run_dir)
    assert predictor.score_points == (1, 4), frame["level"].value_counts()
    validation = pd.read_csv(record.run_dir / "validation_predictions.csv")
    sigma = root_mean_squared_error(validation["target"], validation["raw_prediction"])
    assert predictor.error_std == pytest.approx(sigma)

    new_rows = make_gradebook(8, seed=3).drop(columns=["final"])
    result = predictor.with_predictions(new_rows, confidence_column="confidence")
    prediction = predictor.predict_frame(new_rows)
    expected = score_confidence(prediction.raw, np.array(prediction.values), (1, 4), sigma).round(4)
    assert result["confidence"].tolist() == pytest.approx(expected.tolist())
    assert result["confidence"].between(0, 1).all()
    assert "interval_low" not in result.columns
    review = review_table(predictor, new_rows)
    assert review[CONFIDENCE].notna().all()


def test_value_rows_get_interval(value_run):
    record, frame = value_run
    predictor = Predictor(record.run_dir)
    assert predictor.score_points is None
    assert predictor.target_range == (frame["final"].min(), frame["final"].max())
    new_rows = make_gradebook(6, seed=4).drop(columns=["final"])
    result = predictor.with_predictions(new_rows, interval_columns=("low", "high"))
    raw = predictor.predict_frame(new_rows).raw
    assert result["low"].tolist() == pytest.approx((raw - INTERVAL_Z * predictor.error_std).round(4).tolist())
    assert result["high"].tolist() == pytest.approx((raw + INTERVAL_Z * predictor.error_std).round(4).tolist())
    assert "confidence" not in result.columns
    review = review_table(predictor, new_rows)
    assert (review[INTERVAL_LOW] < review[INTERVAL_HIGH]).all()


class ValuePredictor:
    """A stand-in value model trained on targets from 40 to 90, whose raw outputs are set by the test."""

    def __init__(self, raw):
        self.mapping = ColumnMapping(target="final", problem=REGRESSION)
        self.score_points = None
        self.target_range = (40.0, 90.0)
        self.labels = None
        self.raw = np.asarray(raw, dtype=float)

    def predict_frame(self, frame):
        data = prepare_data(frame, self.mapping, require_target=False)
        return Prediction(values=self.raw.round(1).tolist(), confidence=None, row_index=data.row_index, data=data,
                          raw=self.raw, interval=value_interval(self.raw, 5.0))


def test_values_outside_training_range_come_first():
    predictor = ValuePredictor([55.0, 97.0, 40.0, 31.0, 90.0])
    table = review_table(predictor, make_gradebook(5).drop(columns=["final"]))
    assert table.index.tolist() == [3, 1, 0, 2, 4]
    assert table[REVIEW].tolist() == [OUT_OF_RANGE_REASON, OUT_OF_RANGE_REASON, "", "", ""]
    assert table[INTERVAL_HIGH].tolist() == pytest.approx((table["prediction"] + INTERVAL_Z * 5.0).tolist(), abs=0.1)


def test_alert_rule_flags_by_threshold():
    labels = ["fail", "pass"]
    rule = AlertRule.from_summary({ALERT_SUMMARY_KEY: {"label": "fail", "threshold": 0.3, "target_recall": 0.9}},
                                  labels)
    assert rule == AlertRule(label="fail", threshold=0.3, target_recall=0.9)
    probabilities = np.array([[0.2, 0.8], [0.3, 0.7], [0.6, 0.4]])
    assert rule.flags(probabilities, labels).tolist() == [False, True, True]


@pytest.mark.parametrize("saved", [None, {}, {"label": "absent", "threshold": 0.3},
                                   {"label": "fail", "threshold": 1.5}, {"label": "fail", "threshold": "high"}])
def test_alert_rule_ignores_bad_summaries(saved):
    summary = {} if saved is None else {ALERT_SUMMARY_KEY: saved}
    assert AlertRule.from_summary(summary, ["fail", "pass"]) is None


def test_alert_rule_needs_two_classes():
    summary = {ALERT_SUMMARY_KEY: {"label": "a", "threshold": 0.3, "target_recall": 0.9}}
    assert AlertRule.from_summary(summary, ["a", "b", "c"]) is None
    assert AlertRule.from_summary(summary, None) is None


def test_alert_column_in_batch_predictions(tmp_path):
    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = execute_run(store, create_run(store, make_gradebook(100), mapping, TrainConfig.for_task(False, epochs=2),
                                           data_name="g").run_id)
    predictor = Predictor(record.run_dir)
    new_rows = make_gradebook(30, seed=5).drop(columns=["final"])
    probabilities = predictor.predict_frame(new_rows).raw[:, predictor.labels.index("fail")]
    rule = AlertRule(label="fail", threshold=float(np.median(probabilities)), target_recall=0.9)
    result = predictor.with_predictions(new_rows, alert=rule, alert_column="at risk")
    assert result["at risk"].tolist() == (probabilities >= rule.threshold).tolist()
    assert result["at risk"].sum() >= 15
    review = review_table(predictor, new_rows, alert=rule)
    assert review[AT_RISK].sum() == result["at risk"].sum()


def test_xlsx_keeps_formula_like_text(tmp_path):
    frame = pd.DataFrame({"answer": ["=5", "+1", "-2", "@SUM(A1)", "=HYPERLINK(\"x\")", "plain"],
                          "=total": [1, 2, 3, 4, 5, 6], "score": [-1.5, 2.0, 3.0, 4.0, 5.0, 6.0]})
    path = tmp_path / "out.xlsx"
    write_xlsx(frame, path)
    buffer = io.BytesIO()
    write_xlsx(frame, buffer)
    for source in (path, io.BytesIO(buffer.getvalue())):
        sheet = openpyxl.load_workbook(source).active
        header = [cell.value for cell in sheet[1]]
        assert header == ["answer", "=total", "score"]
        assert sheet["B1"].data_type == "s"
        answers = [cell for cell in sheet["A"][1:]]
        assert [cell.value for cell in answers] == frame["answer"].tolist()
        assert all(cell.data_type == "s" for cell in answers)
        assert sheet["C2"].value == -1.5
        assert sheet["C2"].data_type == "n"
        assert sheet["B2"].value == 1
