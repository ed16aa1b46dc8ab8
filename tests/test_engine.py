"""Training-engine guarantees: exact resume, crash recovery, NaN and memory guards, options."""

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import ROOT, make_essays, make_gradebook
from edutune_core.checkpoint import find_checkpoint
from edutune_core.config import TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.jobs import JobManager
from edutune_core.optim import class_weight_tensor, schedule_factor
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run, prepare_resume
from edutune_core.runstore import COMPLETED, FAILED, INTERRUPTED, STOPPED, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping


class StopAfter:
    """A stop event that sets itself once the run has recorded ``steps`` train points."""

    def __init__(self, store: RunStore, run_id: str, steps: int):
        self.event = threading.Event()
        self.store, self.run_id, self.steps = store, run_id, steps
        original = store.add_points

        def add_points(run_id, split, step, epoch, values):
            original(run_id, split, step, epoch, values)
            if split == "train" and step >= self.steps:
                self.event.set()

        store.add_points = add_points


def train_losses(store: RunStore, run_id: str) -> list[float]:
    return [point["value"] for point in store.points(run_id) if point["split"] == "train" and point["name"] == "loss"]


def gradebook_run(store: RunStore, **settings):
    config = TrainConfig.for_task(False, **{"epochs": 4, "seed": 3, **settings})
    return create_run(store, make_gradebook(), ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60,
                                                             ignore_columns=["student_id"]), config, data_name="g")


@pytest.mark.parametrize("stop_step", [3, 7, 14])
def test_resume_matches_uninterrupted_table_run(tmp_path, stop_step):
    store = RunStore(tmp_path)
    full = execute_run(store, gradebook_run(store).run_id)
    expected = train_losses(store, full.run_id)

    record = gradebook_run(store)
    stopper = StopAfter(store, record.run_id, stop_step)
    assert execute_run(store, record.run_id, stopper.event).status == STOPPED
    assert len(train_losses(store, record.run_id)) == stop_step
    prepare_resume(store, record.run_id)
    resumed = execute_run(store, record.run_id, resume=True)

    assert resumed.status == COMPLETED
    assert train_losses(store, record.run_id) == expected
    assert resumed.metrics["accuracy"] == full.metrics["accuracy"]


def test_resume_matches_uninterrupted_text_run(tmp_path, tiny_text_model):
    store = RunStore(tmp_path)
    config = TrainConfig(model=str(tiny_text_model), epochs=2, batch_size=8, max_length=32, seed=5)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION)
    frame = make_essays(48)
    full = execute_run(store, create_run(store, frame, mapping, config, data_name="e").run_id)
    record = create_run(store, frame, mapping, config, data_name="e")
    stopper = StopAfter(store, record.run_id, 6)
    execute_run(store, record.run_id, stopper.event)
    prepare_resume(store, record.run_id)
    execute_run(store, record.run_id, resume=True)
    assert train_losses(store, record.run_id) == pytest.approx(train_losses(store, full.run_id), abs=1e-6)


def test_killed_process_is_interrupted_then_resumed(tmp_path):
    home = tmp_path / "home"
    store = RunStore(home)
    data = tmp_path / "gradebook.csv"
    make_gradebook(400).to_csv(data, index=False)
    log = tmp_path / "train.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "edutune_core", "train", "--data", str(data), "--target", "final",
         "--problem", "regression", "--epochs", "60", "--batch-size", "8"],
        cwd=ROOT, env={**os.environ, "EDUTUNE_HOME": str(home)}, stdout=subprocess.DEVNULL, stderr=log.open("w"))
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        runs = store.list_runs()
        if runs and find_checkpoint(runs[0].run_dir) and len(train_losses(store, runs[0].run_id)) > 200:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    runs = store.list_runs()
    assert runs, log.read_text()[-2000:]
    run_id = runs[0].run_id
    recorded = train_losses(store, run_id)

    manager = JobManager(store)
    try:
        assert store.get_run(run_id).status == INTERRUPTED
        assert train_losses(store, run_id) == recorded
        prepare_resume(store, run_id)
        manager.submit(run_id, resume=True)
        deadline = time.monotonic() + 120
        while store.get_run(run_id).status != COMPLETED and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        manager.shutdown()
    record = store.get_run(run_id)
    assert record.status == COMPLETED, record.error
    steps = [point["step"] for point in store.points(run_id) if point["split"] == "train" and point["name"] == "loss"]
    assert steps == list(range(1, record.total_steps + 1))
    assert (record.run_dir / "model" / "edutune.json").exists()


def test_interrupted_run_resumes_without_duplicate_points(tmp_path):
    store = RunStore(tmp_path)
    record = gradebook_run(store, epochs=3)
    stopper = StopAfter(store, record.run_id, 8)
    execute_run(store, record.run_id, stopper.event)
    # A process that died after the checkpoint left a few more points behind.
    for step in (9, 10):
        store.add_points(record.run_id, "train", step, step / 5, {"loss": 9.0, "learning_rate": 0.1})
    store.set_status(record.run_id, INTERRUPTED)
    prepare_resume(store, record.run_id)
    resumed = execute_run(store, record.run_id, resume=True)
    steps = [point["step"] for point in store.points(record.run_id)
             if point["split"] == "train" and point["name"] == "loss"]
    assert resumed.total_steps == 15
    assert steps == list(range(1, 16))
    assert 9.0 not in train_losses(store, record.run_id)


def test_resume_rejects_completed_and_checkpointless_runs(tmp_path):
    store = RunStore(tmp_path)
    done = execute_run(store, gradebook_run(store, epochs=1).run_id)
    with pytest.raises(EduTuneError) as raised:
        prepare_resume(store, done.run_id)
    assert raised.value.key == "train.not_resumable"
    assert "completed" in raised.value.message("en")

    fresh = gradebook_run(store)
    store.set_status(fresh.run_id, INTERRUPTED)
    with pytest.raises(EduTuneError) as raised:
        prepare_resume(store, fresh.run_id)
    assert raised.value.key == "train.no_checkpoint"
    assert "没有可以继续的检查点" in raised.value.message("zh")


def test_nan_loss_stops_with_step_and_advice(tmp_path):
    store = RunStore(tmp_path)
    frame = make_gradebook()
    frame.loc[0, "hours"] = np.inf
    config = TrainConfig.for_task(False, learning_rate=0.5, epochs=5)
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="final", problem=REGRESSION), config,
                                           data_name="g").run_id)
    assert record.status == FAILED
    assert record.error["key"] == "train.nan_loss"
    message = EduTuneError(record.error["key"], **record.error["params"]).message("en")
    assert message.startswith(f"Training stopped at step {record.error['params']['step']}: the loss became")
    assert "learning rate (0.5) too high" in message
    assert "损失变成了" in EduTuneError(record.error["key"], **record.error["params"]).message("zh")
    assert any(event["kind"] == "non_finite_loss" for event in store.events(record.run_id))


def test_early_stopping_ends_before_last_epoch(tmp_path):
    store = RunStore(tmp_path)
    frame = make_gradebook()
    frame["final"] = np.random.default_rng(0).integers(0, 100, len(frame))
    config = TrainConfig.for_task(False, epochs=40, early_stopping_patience=2)
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="final", problem=REGRESSION), config,
                                           data_name="noise").run_id)
    assert record.status == COMPLETED
    epochs = [event for event in store.events(record.run_id) if event["kind"] == "epoch_done"]
    assert len(epochs) < 40
    assert [event["kind"] for event in store.events(record.run_id)].count("early_stopped") == 1


def test_class_weights_raise_minority_recall(tmp_path):
    rng = np.random.default_rng(1)
    rows = 600
    signal_value = rng.normal(size=rows)
    frame = pd.DataFrame({"x": signal_value + rng.normal(scale=1.2, size=rows), "noise": rng.normal(size=rows)})
    frame["label"] = np.where(signal_value > 1.3, "risk", "ok")
    recalls = {}
    for weighted in (False, True):
        store = RunStore(tmp_path / str(weighted))
        config = TrainConfig.for_task(False, epochs=15, class_weights=weighted, seed=2)
        record = execute_run(store, create_run(store, frame, ColumnMapping(target="label"), config,
                                               data_name="imbalanced").run_id)
        recalls[weighted] = record.metrics["recall_per_class"]["risk"]
    assert recalls[True] > recalls[False] + 0.1


def test_class_weight_tensor_balances_counts():
    weights = class_weight_tensor(np.array([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


@pytest.mark.parametrize("kind, expected", [("linear", [0.5, 1.0, 0.5, 0.0]), ("constant", [0.5, 1.0, 1.0, 1.0]),
                                            ("cosine", [0.5, 1.0, 0.5, 0.0])])
def test_schedule_factors(kind, expected):
    assert [schedule_factor(step, 1, 3, kind) for step in (0, 1, 2, 3)] == pytest.approx(expected)


def test_bf16_freeze_and_sgd_options_train(tmp_path, tiny_text_model):
    store = RunStore(tmp_path)
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=8, max_length=32, precision="bf16",
                         freeze_embeddings=True, freeze_layers=1, optimizer="sgd", scheduler="cosine",
                         accumulation_steps=2, learning_rate=0.01)
    record = execute_run(store, create_run(store, make_essays(40), ColumnMapping(target="score", text_column="essay",
                                                                                 problem=REGRESSION),
                                           config, data_name="e").run_id)
    assert record.status == COMPLETED, record.error
    assert record.total_steps == 2  # 32 training rows / (8 x 2 accumulated)
    assert Predictor(record.run_dir).predict_frame(make_essays(5)).values


def test_lora_run_saves_a_plain_model(tmp_path, tiny_text_model):
    store = RunStore(tmp_path)
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=8, max_length=32, lora_rank=4)
    frame = make_essays(40)
    frame["level"] = np.where(frame["score"] >= 3, "high", "low")
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="level", text_column="essay"), config,
                                           data_name="e").run_id)
    assert record.status == COMPLETED, record.error
    saved = (record.run_dir / "model" / "config.json").read_text()
    assert "lora" not in saved.lower()
    assert set(Predictor(record.run_dir).predict_frame(frame.head(3)).values) <= {"high", "low"}


def test_memory_returns_after_repeated_runs(tmp_path):
    """Twenty start/stop cycles of one manager leave resident memory where it was."""
    store = RunStore(tmp_path)
    manager = JobManager(store)

    def resident_bytes() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    try:
        def cycle():
            record = gradebook_run(store, epochs=1000)
            manager.submit(record.run_id)
            while not store.points(record.run_id):
                time.sleep(0.01)
            manager.stop(record.run_id)
            while store.get_run(record.run_id).status != STOPPED:
                time.sleep(0.01)

        for _ in range(3):
            cycle()
        baseline = resident_bytes()
        for _ in range(20):
            cycle()
        growth = resident_bytes() - baseline
    finally:
        manager.shutdown()
    assert growth < 40 * 2**20, f"resident memory grew by {growth / 2**20:.1f} MiB"


def test_memory_estimate_grows_with_batch_and_length():
    from edutune_core.memory import MemoryEstimate, estimate_text_training

    small = estimate_text_training(TrainConfig(batch_size=8, max_length=128))
    large = estimate_text_training(TrainConfig(batch_size=32, max_length=512))
    assert 0 < small.needed < large.needed
    assert estimate_text_training(TrainConfig(model="some-org/not-downloaded")) is None
    assert not MemoryEstimate(needed=9 * 2**30, available=10 * 2**30).fits
    assert MemoryEstimate(needed=7 * 2**30, available=10 * 2**30).fits
