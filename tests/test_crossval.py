import threading

import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.crossval import FINAL_ALL_ROWS, FINAL_BEST_FOLD, cross_validate, fold_splits
from edutune_core.i18n import ConfigError, DataError
from edutune_core.predict import Predictor
from edutune_core.progress import curves
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, STOPPED, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data


def repeated_students(rows: int = 90, per_student: int = 3) -> pd.DataFrame:
    """A gradebook where each student has several rows (one per term)."""
    frame = make_gradebook(rows, seed=3)
    frame["student_id"] = [f"S{index // per_student:03d}" for index in range(rows)]
    return frame


def pass_fail(frame: pd.DataFrame, **mapping) -> ColumnMapping:
    return ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, **mapping)


class RecordingSink:
    def __init__(self, stop_at_step: int | None = None, event: threading.Event | None = None):
        self.starts, self.train_steps, self.validation_steps, self.events = [], [], [], []
        self.stop_at_step, self.event = stop_at_step, event

    def start(self, total_steps):
        self.starts.append(total_steps)

    def log_train(self, step, epoch, values):
        self.train_steps.append(step)
        if self.stop_at_step is not None and step >= self.stop_at_step:
            self.event.set()

    def log_validation(self, step, epoch, values):
        self.validation_steps.append(step)

    def log_event(self, kind, detail):
        self.events.append((kind, detail))


def test_grouped_folds_keep_students_apart():
    data = prepare_data(repeated_students(), pass_fail(None, student_column="student_id"))
    splits = fold_splits(data, 5, seed=1)
    assert len(splits) == 5
    for train_rows, validation_rows in splits:
        shared = set(data.students[train_rows]) & set(data.students[validation_rows])
        assert shared == set()
    validation = np.concatenate([rows for _, rows in splits])
    assert sorted(validation.tolist()) == list(range(len(data)))


def test_grouped_regression_folds_keep_students_apart():
    data = prepare_data(repeated_students(), ColumnMapping(target="final", problem=REGRESSION,
                                                           student_column="student_id"))
    for train_rows, validation_rows in fold_splits(data, 4, seed=0):
        assert set(data.students[train_rows]).isdisjoint(data.students[validation_rows])


def test_class_folds_are_stratified():
    frame = make_gradebook(100)
    frame["final"] = np.where(np.arange(100) < 20, 40, 80)
    data = prepare_data(frame, pass_fail(frame, ignore_columns=["student_id"]))
    for _, validation_rows in fold_splits(data, 5, seed=0):
        assert np.bincount(data.targets[validation_rows]).tolist() == [4, 16]


def test_folds_depend_on_seed_only():
    data = prepare_data(make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION))
    first = [rows.tolist() for _, rows in fold_splits(data, 3, seed=5)]
    again = [rows.tolist() for _, rows in fold_splits(data, 3, seed=5)]
    other = [rows.tolist() for _, rows in fold_splits(data, 3, seed=6)]
    assert first == again
    assert first != other


def test_too_few_students_for_folds():
    frame = repeated_students(rows=30, per_student=10)
    data = prepare_data(frame, pass_fail(frame, student_column="student_id"))
    with pytest.raises(DataError) as caught:
        fold_splits(data, 5, seed=0)
    assert caught.value.key == "evaluation.too_few_students"
    assert "3" in caught.value.message("en")
    assert "student_id" in caught.value.message("zh")


@pytest.mark.parametrize("folds", [1, 31])
def test_folds_out_of_range(folds):
    data = prepare_data(make_gradebook(30), ColumnMapping(target="final", problem=REGRESSION))
    with pytest.raises(ConfigError) as caught:
        fold_splits(data, folds, seed=0)
    assert caught.value.params == {"folds": folds, "rows": 30}


def test_cross_validated_run_end_to_end(tmp_path):
    store = RunStore(tmp_path / "home")
    frame = repeated_students(120)
    config = TrainConfig.for_task(False, epochs=4, folds=4, seed=3)
    record = create_run(store, frame, pass_fail(frame, student_column="student_id"), config, data_name="book.csv")
    record = execute_run(store, record.run_id)
    assert record.status == COMPLETED, record.error

    metrics = record.metrics
    folds = metrics["folds"]
    assert len(folds) == 4
    accuracies = [fold["accuracy"] for fold in folds]
    assert metrics["accuracy"] == pytest.approx(np.mean(accuracies))
    assert metrics["spread"]["accuracy"] == pytest.approx(np.std(accuracies, ddof=1))
    assert metrics["cross_validation"]["final_model"] == FINAL_ALL_ROWS
    assert metrics["cross_validation"]["grouped_by"] == "student_id"
    assert 1 <= metrics["cross_validation"]["final_epochs"] <= 4
    assert sum(fold["validation_rows"] for fold in folds) == 120
    assert np.array(metrics["confusion_matrix"]).sum() == 120

    predictions = pd.read_csv(record.run_dir / "validation_predictions.csv")
    assert sorted(predictions["row"]) == list(range(120))
    assert set(predictions["fold"]) == {1, 2, 3, 4}
    assert (predictions[["probability_fail", "probability_pass"]].sum(axis=1) - 1).abs().max() < 1e-4
    pooled = (predictions["target"] == predictions["prediction"]).mean()
    assert metrics["pooled"]["accuracy"] == pytest.approx(pooled)

    # The saved model is the final one, trained on every row, and predicts new rows.
    assert Predictor(record.run_dir).predict_frame(frame.head(3)).values[0] in ("pass", "fail")
    train, validation = curves(store.points(record.run_id))
    assert train["step"].is_monotonic_increasing
    assert train["step"].is_unique
    assert validation["step"].is_monotonic_increasing
    kinds = [event["kind"] for event in store.events(record.run_id)]
    assert kinds.count("fold_done") == 4
    assert kinds.count("final_model_started") == 1


def test_stop_in_second_fold_saves_best_fold(tmp_path):
    event = threading.Event()
    data = prepare_data(make_gradebook(90), ColumnMapping(target="final", problem=REGRESSION,
                                                          ignore_columns=["student_id"]))
    config = TrainConfig.for_task(False, epochs=3, folds=3, batch_size=30)
    # Each fold trains on 60 rows: 2 steps per epoch, 6 steps per fold.
    sink = RecordingSink(stop_at_step=8, event=event)
    metrics = cross_validate(data, config, sink, event, tmp_path)

    assert metrics["cross_validation"]["completed"] == 1
    assert metrics["cross_validation"]["final_model"] == FINAL_BEST_FOLD
    assert [fold["fold"] for fold in metrics["folds"]] == [1]
    assert metrics["spread"]["rmse"] == 0.0
    assert (tmp_path / "model" / "edutune.json").exists()
    assert len(pd.read_csv(tmp_path / "validation_predictions.csv")) == 30
    assert [kind for kind, _ in sink.events].count("fold_started") == 2
    assert sink.train_steps == list(range(1, 9))


def test_stop_before_start_still_evaluates_first_fold(tmp_path):
    event = threading.Event()
    event.set()
    data = prepare_data(make_gradebook(40), ColumnMapping(target="final", problem=REGRESSION))
    metrics = cross_validate(data, TrainConfig.for_task(False, epochs=2, folds=2), RecordingSink(), event, tmp_path)
    assert [fold["fold"] for fold in metrics["folds"]] == [1]
    assert metrics["cross_validation"]["completed"] == 0
    assert "rmse" in metrics
    assert (tmp_path / "model" / "model.safetensors").exists()


def test_progress_announced_once_per_plan(tmp_path):
    data = prepare_data(make_gradebook(40), ColumnMapping(target="final", problem=REGRESSION))
    sink = RecordingSink()
    config = TrainConfig.for_task(False, epochs=2, folds=2, batch_size=10)
    cross_validate(data, config, sink, None, tmp_path)
    # Two folds of 20 training rows and a final model on 40 rows, 2 epochs each.
    assert sink.starts[0] == 2 * 2 * 2 + 4 * 2
    assert sink.train_steps[-1] <= sink.starts[-1]
    assert len(sink.starts) <= 2


def test_text_scoring_cross_validation(tmp_path, tiny_text_model):
    data = prepare_data(make_essays(40), ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=32, learning_rate=1e-3,
                         folds=2)
    metrics = cross_validate(data, config, RecordingSink(), None, tmp_path)
    assert set(metrics["spread"]) >= {"qwk", "exact_agreement", "adjacent_agreement", "rmse", "mae", "r2"}
    assert metrics["labels"] == ["1", "2", "3", "4"]
    predictions = pd.read_csv(tmp_path / "validation_predictions.csv")
    assert predictions["prediction"].between(1, 4).all()
    assert "raw_prediction" in predictions
    assert (tmp_path / "model" / "tokenizer.json").exists()


def test_requirements_allow_shuffled_group_folds():
    """fold_splits shuffles GroupKFold, which takes shuffle and random_state from scikit-learn 1.6 on."""
    import inspect
    import re

    from packaging.version import Version
    from sklearn.model_selection import GroupKFold

    from conftest import ROOT

    assert "shuffle" in inspect.signature(GroupKFold).parameters
    requirements = (ROOT / "requirements.txt").read_text(encoding="utf-8")
    floor = re.search(r"^scikit-learn>=([\d.]+)", requirements, re.MULTILINE)
    assert floor is not None, "requirements.txt has no scikit-learn floor"
    assert Version(floor.group(1)) >= Version("1.6")
