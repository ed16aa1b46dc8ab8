import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.corrections import (
    CORRECTION,
    CORRECTIONS_FILE,
    LOW_CONFIDENCE,
    LOW_CONFIDENCE_REASON,
    OUT_OF_RANGE_REASON,
    REVIEW,
    SOURCE_COLUMN,
    load_corrections,
    review_table,
    save_corrections,
    training_rows_with_corrections,
)
from edutune_core.i18n import DataError
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data


@pytest.fixture(scope="module")
def pass_fail_model(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(120), mapping, TrainConfig.for_task(False, epochs=3),
                        data_name="book.csv")
    return execute_run(store, record.run_id)


def test_low_confidence_rows_come_first(pass_fail_model):
    predictor = Predictor(pass_fail_model.run_dir)
    frame = make_gradebook(40, seed=5)
    table = review_table(predictor, frame)
    assert len(table) == 40
    assert "final" not in table.columns
    flagged = table[table[REVIEW] == LOW_CONFIDENCE_REASON]
    assert (flagged["confidence"] < LOW_CONFIDENCE).all()
    assert flagged["confidence"].is_monotonic_increasing
    assert (table[REVIEW].iloc[:len(flagged)] == LOW_CONFIDENCE_REASON).all()
    assert (table["confidence"].iloc[len(flagged):] >= LOW_CONFIDENCE).all()
    assert table[CORRECTION].isna().all()


class ScorePredictor:
    """A stand-in with a 1-4 rubric whose raw outputs are set by the test."""

    def __init__(self, raw):
        self.mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION)
        self.score_points = (1, 4)
        self.labels = None
        self.raw = np.asarray(raw, dtype=float)

    def predict_frame(self, frame):
        from edutune_core.predict import Prediction

        data = prepare_data(frame, self.mapping, require_target=False)
        values = np.clip(np.rint(self.raw), 1, 4).astype(int).tolist()
        return Prediction(values=values, confidence=None, row_index=data.row_index, data=data, raw=self.raw)


def test_scores_outside_rubric_come_first():
    predictor = ScorePredictor([2.2, 5.9, 0.3, 4.4, 3.0])
    table = review_table(predictor, make_essays(5))
    assert table.index.tolist() == [1, 2, 0, 3, 4]
    assert table[REVIEW].tolist() == [OUT_OF_RANGE_REASON, OUT_OF_RANGE_REASON, "", "", ""]
    assert table["prediction"].tolist() == [4, 1, 2, 4, 3]


def test_corrections_saved_as_training_rows(pass_fail_model, tmp_path):
    predictor = Predictor(pass_fail_model.run_dir)
    table = review_table(predictor, make_gradebook(10, seed=7))
    table[CORRECTION] = [None] * 10
    table.iloc[0, table.columns.get_loc(CORRECTION)] = "72"
    table.iloc[3, table.columns.get_loc(CORRECTION)] = " 41 "
    assert save_corrections(tmp_path, predictor, table) == 2
    assert save_corrections(tmp_path, predictor, table.iloc[:1]) == 1

    saved = load_corrections(tmp_path)
    assert saved["final"].tolist() == [72.0, 41.0, 72.0]
    assert saved["student_id"].iloc[0] == table["student_id"].iloc[0]
    assert set(saved["corrected_from"]) <= {"pass", "fail"}
    combined, mapping = training_rows_with_corrections(make_gradebook(20), saved, predictor.mapping)
    assert combined[SOURCE_COLUMN].tolist() == ["original"] * 20 + ["correction"] * 3
    assert {SOURCE_COLUMN, "corrected_from", "corrected_at"} <= set(mapping.ignore_columns)
    data = prepare_data(combined, mapping)
    assert list(data.labels) == ["fail", "pass"]
    assert data.targets[-3:].tolist() == [1, 0, 1]
    assert SOURCE_COLUMN not in data.features.columns


@pytest.mark.parametrize("value, key", [("lots", "corrections.not_a_number")])
def test_bad_grade_correction_saves_nothing(pass_fail_model, tmp_path, value, key):
    predictor = Predictor(pass_fail_model.run_dir)
    table = review_table(predictor, make_gradebook(3, seed=2))
    table[CORRECTION] = ["70", value, None]
    with pytest.raises(DataError) as caught:
        save_corrections(tmp_path, predictor, table)
    assert caught.value.key == key
    assert "lots" in caught.value.message("zh")
    assert not (tmp_path / CORRECTIONS_FILE).exists()


@pytest.mark.parametrize("value, key", [("5", "corrections.not_a_score"), ("2.5", "corrections.not_a_score"),
                                        ("x", "corrections.not_a_number")])
def test_bad_score_correction(tmp_path, value, key):
    predictor = ScorePredictor([2.0])
    table = review_table(predictor, make_essays(1))
    table[CORRECTION] = [value]
    with pytest.raises(DataError) as caught:
        save_corrections(tmp_path, predictor, table)
    assert caught.value.key == key


def test_nothing_to_save(tmp_path):
    predictor = ScorePredictor([2.0, 3.0])
    table = review_table(predictor, make_essays(2))
    table[CORRECTION] = ["", None]
    assert save_corrections(tmp_path, predictor, table) == 0
    assert load_corrections(tmp_path) is None


def test_extra_columns_of_corrections_are_dropped():
    frame = pd.DataFrame({"essay": ["a b c"] * 12, "score": [1, 2, 3] * 4})
    corrections = pd.DataFrame({"essay": ["d e"], "score": [3.0], "teacher_note": ["x"], "corrected_from": ["2"],
                                "corrected_at": ["2026-01-01"]})
    combined, _ = training_rows_with_corrections(frame, corrections, ColumnMapping(target="score",
                                                                                  text_column="essay"))
    assert "teacher_note" not in combined.columns
    assert len(combined) == 13


def test_retrain_with_corrections_records_parent(tmp_path):
    from conftest import make_gradebook
    from edutune_core.config import TrainConfig
    from edutune_core.corrections import CORRECTIONS_FILE, retrain_with_corrections
    from edutune_core.runner import create_run, execute_run
    from edutune_core.runstore import COMPLETED, RunStore
    from edutune_core.tasks import CLASSIFICATION, ColumnMapping

    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    parent = execute_run(store, create_run(store, make_gradebook(), mapping, TrainConfig.for_task(False, epochs=2),
                                           data_name="g").run_id)
    with pytest.raises(DataError) as raised:
        retrain_with_corrections(store, parent)
    assert raised.value.key == "corrections.nothing_to_retrain"

    corrected = make_gradebook(5, seed=9).assign(final=[80, 30, 90, 20, 70])
    corrected.to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)
    child = execute_run(store, retrain_with_corrections(store, parent).run_id)
    assert child.status == COMPLETED, child.error
    assert child.summary["parent_run"] == parent.run_id
    assert child.summary["corrected_rows"] == 5
    parent_validation_rows = len(pd.read_csv(parent.run_dir / "validation_predictions.csv"))
    assert child.summary["rows_used"] == parent.summary["rows_used"] - parent_validation_rows + 5
    assert child.summary["validation_rows"] == parent_validation_rows
    assert any(event["kind"] == "warm_start" for event in store.events(child.run_id))


def test_earlier_correction_marks_are_kept():
    frame = pd.DataFrame({"essay": ["a b c"] * 5, "score": [1, 2, 3, 1, 2],
                          SOURCE_COLUMN: ["original", "original", None, "correction", "correction"]})
    corrections = pd.DataFrame({"essay": ["d e"], "score": [3.0], "corrected_from": ["2"],
                                "corrected_at": ["2026-01-01"]})
    combined, _ = training_rows_with_corrections(frame, corrections, ColumnMapping(target="score",
                                                                                  text_column="essay"))
    assert combined[SOURCE_COLUMN].tolist() == ["original"] * 3 + ["correction"] * 3


def held_out_ids(record, column="student_id"):
    """Return the ids of a run's validation rows and of its training rows, as sets."""
    from edutune_core.evaluation import load_validation
    from edutune_core.runner import TRAIN_SNAPSHOT, VALIDATION_SNAPSHOT

    snapshot = pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT)
    if record.status != "completed":
        # A queued run has no predictions yet: its validation rows are its validation snapshot.
        return set(pd.read_parquet(record.run_dir / VALIDATION_SNAPSHOT)[column]), set(snapshot[column])
    validation = set(load_validation(record).source[column])
    if (record.run_dir / VALIDATION_SNAPSHOT).exists():
        return validation, set(snapshot[column])
    return validation, set(snapshot[column]) - validation


def test_child_validates_on_parent_validation_rows(tmp_path):
    from edutune_core.corrections import retrain_with_corrections
    from edutune_core.runstore import COMPLETED

    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    parent = execute_run(store, create_run(store, make_gradebook(120), mapping,
                                           TrainConfig.for_task(False, epochs=2), data_name="g").run_id)
    parent_validation, parent_training = held_out_ids(parent)
    corrected = make_gradebook(4, seed=9).assign(final=[80, 30, 90, 20])
    corrected["student_id"] = [f"N{index}" for index in range(4)]
    corrected.to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)

    child = execute_run(store, retrain_with_corrections(store, parent).run_id)
    assert child.status == COMPLETED, child.error
    child_validation, child_training = held_out_ids(child)
    assert not child_validation & parent_training
    assert child_validation == parent_validation
    assert child_training == parent_training | set(corrected["student_id"])
    assert child.config["train"]["model"] == str(parent.run_dir)
    assert child.summary["warm_start_from_parent"] is True

    # A second round keeps the first round's validation rows and marks.
    child_corrections = make_gradebook(2, seed=11).assign(final=[75, 25], student_id=["M0", "M1"])
    child_corrections.to_csv(child.run_dir / CORRECTIONS_FILE, index=False)
    grandchild = retrain_with_corrections(store, child)
    grandchild_validation, grandchild_training = held_out_ids(grandchild)
    assert grandchild_validation == parent_validation
    assert grandchild_training == child_training | {"M0", "M1"}
    from edutune_core.runner import TRAIN_SNAPSHOT

    marks = pd.read_parquet(grandchild.run_dir / TRAIN_SNAPSHOT).set_index("student_id")[SOURCE_COLUMN]
    assert (marks[["N0", "N1", "N2", "N3", "M0", "M1"]] == "correction").all()
    assert (marks.drop(["N0", "N1", "N2", "N3", "M0", "M1"]) == "original").all()
    assert grandchild.summary["base_model"] == parent.config["train"]["model"]


def test_child_of_cross_validated_run_starts_fresh(tmp_path):
    from edutune_core.corrections import retrain_with_corrections
    from edutune_core.runstore import COMPLETED

    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    parent = execute_run(store, create_run(store, make_gradebook(60), mapping,
                                           TrainConfig.for_task(False, epochs=1, folds=3), data_name="g").run_id)
    make_gradebook(3, seed=4).assign(final=[80, 30, 90]).to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)

    child = execute_run(store, retrain_with_corrections(store, parent).run_id)
    assert child.status == COMPLETED, child.error
    assert child.config["train"]["model"] == parent.config["train"]["model"]
    assert child.config["train"]["model"] != str(parent.run_dir)
    assert child.config["train"]["folds"] == 3
    assert child.summary["warm_start_from_parent"] is False
    assert child.summary["rows_used"] == 63
    assert not any(event["kind"] == "warm_start" for event in store.events(child.run_id))


def test_child_of_small_run_keeps_validation(tmp_path):
    from edutune_core.corrections import retrain_with_corrections

    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"])
    parent = execute_run(store, create_run(store, make_gradebook(40), mapping, TrainConfig.for_task(False, epochs=1),
                                           data_name="g").run_id)
    make_gradebook(2, seed=4).to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)
    child = retrain_with_corrections(store, parent)
    assert child.summary["validation_rows"] == 8
