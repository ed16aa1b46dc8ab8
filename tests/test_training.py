import threading

import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError, ModelError
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, FAILED, STOPPED, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping
from edutune_core.training import TrainingJob


class ListSink:
    def __init__(self, stop_after: int | None = None, event: threading.Event | None = None):
        self.train, self.validation, self.events = [], [], []
        self.stop_after, self.event = stop_after, event

    def start(self, total_steps):
        self.total_steps = total_steps

    def log_train(self, step, epoch, values):
        self.train.append((step, values["loss"], values["learning_rate"]))
        if self.stop_after is not None and step >= self.stop_after:
            self.event.set()

    def log_validation(self, step, epoch, values):
        self.validation.append((step, values))

    def log_event(self, kind, detail):
        self.events.append(kind)


def gradebook_job(config: TrainConfig, sink, problem=REGRESSION, pass_mark=None) -> TrainingJob:
    from edutune_core.tasks import prepare_data

    data = prepare_data(make_gradebook(), ColumnMapping(target="final", problem=problem, pass_mark=pass_mark,
                                                        ignore_columns=["student_id"]))
    return TrainingJob(data.subset(np.arange(160)), data.subset(np.arange(160, 200)), config, sink)


def test_table_regression_learns():
    sink = ListSink()
    job = gradebook_job(TrainConfig.for_task(False, epochs=40, seed=1), sink)
    job.setup()
    assert job.run() is True
    first_loss = np.mean([loss for _, loss, _ in sink.train[:5]])
    last_loss = np.mean([loss for _, loss, _ in sink.train[-5:]])
    assert last_loss < first_loss / 3
    assert job.best_metrics["r2"] > 0.6
    assert sink.total_steps == 40 * 5
    assert sink.events[-1] == "finished"


def test_same_seed_same_loss_history():
    histories = []
    for _ in range(2):
        sink = ListSink()
        job = gradebook_job(TrainConfig.for_task(False, epochs=3, seed=7), sink, CLASSIFICATION, 60)
        job.setup()
        job.run()
        histories.append([loss for _, loss, _ in sink.train])
    assert histories[0] == histories[1]


def test_learning_rate_warms_up_then_decays():
    sink = ListSink()
    job = gradebook_job(TrainConfig.for_task(False, epochs=4, learning_rate=0.01, warmup_share=0.25), sink)
    job.setup()
    job.run()
    rates = [rate for _, _, rate in sink.train]
    peak = int(np.argmax(rates))
    assert rates[peak] == pytest.approx(0.01, rel=0.1)
    assert 0 < peak < len(rates) - 1
    assert rates[-1] < rates[peak] / 5


def test_stop_in_first_epoch_still_evaluates(tmp_path):
    event = threading.Event()
    sink = ListSink(stop_after=2, event=event)
    job = gradebook_job(TrainConfig.for_task(False, epochs=5), sink)
    job.setup()
    assert job.run(event) is False
    assert len(sink.train) == 2
    assert len(sink.validation) == 1
    metrics = job.save(tmp_path)
    assert "rmse" in metrics
    assert (tmp_path / "model" / "model.safetensors").exists()
    assert sink.events[-2:] == ["stopped", "saved"]


def test_text_scoring_run_saves_a_model_that_predicts(tmp_path, tiny_text_model):
    store = RunStore(tmp_path / "home")
    frame = make_essays(80)
    config = TrainConfig(model=str(tiny_text_model), epochs=2, batch_size=16, max_length=32, learning_rate=1e-3)
    record = create_run(store, frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                        config, data_name="essays.csv")
    record = execute_run(store, record.run_id)
    assert record.status == COMPLETED
    assert set(record.metrics) >= {"qwk", "exact_agreement", "adjacent_agreement", "rmse", "mae", "r2"}

    model_dir = record.run_dir / "model"
    for name in ("model.safetensors", "config.json", "tokenizer.json", "edutune.json"):
        assert (model_dir / name).exists(), name
    predictor = Predictor(record.run_dir)
    predicted = predictor.with_predictions(frame.head(5))
    assert predicted["prediction"].between(1, 4).all()
    # A score's confidence is the chance that the rounded score is the teacher's, from the validation error.
    assert predicted["confidence"].between(0, 1).all()

    # The saved model reproduces the validation predictions it was evaluated with.
    validation = pd.read_csv(record.run_dir / "validation_predictions.csv")
    again = predictor.predict_frame(frame.loc[validation["row"]])
    assert again.values == validation["prediction"].tolist()
    assert predictor.evaluate_frame(frame.loc[validation["row"]])["qwk"] == pytest.approx(record.metrics["qwk"])


def test_text_classification_has_confidence(tmp_path, tiny_text_model):
    store = RunStore(tmp_path / "home")
    frame = make_essays(60)
    frame["level"] = np.where(frame["score"] >= 3, "strong", "weak")
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=32)
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="level", text_column="essay"),
                                           config, data_name="essays.csv").run_id)
    assert record.status == COMPLETED
    assert record.metrics["labels"] == ["strong", "weak"]
    result = Predictor(record.run_dir).with_predictions(frame.head(4).drop(columns=["level"]))
    assert set(result["prediction"]) <= {"strong", "weak"}
    assert result["confidence"].between(0.5, 1.0).all()


def test_missing_model_folder_fails_with_message(tmp_path):
    store = RunStore(tmp_path / "home")
    config = TrainConfig(model="./no/such/model", epochs=1)
    record = create_run(store, make_essays(), ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                        config, data_name="essays.csv")
    record = execute_run(store, record.run_id)
    assert record.status == FAILED
    assert record.error["key"] == "model.folder_not_found"
    assert ModelError(record.error["key"], **record.error["params"]).message("en").startswith(
        'The model folder "./no/such/model" does not exist')


def test_hub_model_offline_fails_with_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    store = RunStore(tmp_path / "home")
    config = TrainConfig(model="edutune-tests/no-such-model", epochs=1)
    record = create_run(store, make_essays(), ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                        config, data_name="essays.csv")
    record = execute_run(store, record.run_id)
    assert record.status == FAILED
    assert record.error["key"] == "model.download_failed"


def test_invalid_settings_rejected_before_run(tmp_path):
    store = RunStore(tmp_path / "home")
    config = TrainConfig(epochs=0, learning_rate=5.0)
    assert [problem.params["setting"] for problem in config.problems()] == ["learning_rate", "epochs"]
    with pytest.raises(ConfigError) as raised:
        create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION), config, data_name="g")
    assert "learning_rate is 5.0" in raised.value.message("en")
    assert store.list_runs() == []


def test_stopped_run_is_recorded_as_stopped(tmp_path):
    store = RunStore(tmp_path / "home")
    record = create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=3), data_name="g")
    event = threading.Event()
    event.set()
    record = execute_run(store, record.run_id, event)
    assert record.status == STOPPED
    assert (record.run_dir / "model" / "edutune.json").exists()


def test_half_point_rubric_run_scores_on_its_points(tmp_path):
    """A 0-5 rubric in half points trains, reports QWK and predicts only on its points."""
    frame = make_gradebook(120)
    frame["band"] = np.clip(np.round((frame["final"] - 40) / 10 * 2) / 2, 0, 5)
    mapping = ColumnMapping(target="band", problem=REGRESSION, ignore_columns=["student_id", "final"],
                            score_min=0, score_max=5, score_step=0.5)
    store = RunStore(tmp_path)
    record = execute_run(store, create_run(store, frame, mapping, TrainConfig.for_task(False, epochs=30),
                                           data_name="bands").run_id)
    assert record.status == COMPLETED
    assert record.metrics["labels"] == [f"{point:g}" for point in np.arange(0, 5.01, 0.5)]
    assert 0 < record.metrics["qwk"] <= 1

    predicted = Predictor(record.run_dir).with_predictions(frame.head(20))
    assert set(predicted["prediction"]) <= set(np.arange(0, 5.01, 0.5))
    assert predicted["confidence"].between(0, 1).all()
