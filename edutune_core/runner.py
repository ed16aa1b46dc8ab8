"""Create a run from a table and a mapping, and execute it from start to saved model.

``create_run`` does every check that needs no model (mapping, targets, settings), so
bad input is rejected before anything is queued, and snapshots the data into the run's
folder. ``execute_run`` is what a job thread or the command line calls: it reads the
snapshot back, trains, saves and records the outcome in the run store.
"""

from __future__ import annotations

import dataclasses

import gc
import json
import logging
import math
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from edutune_core.config import TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.models import TABULAR_MODEL
from edutune_core.checkpoint import find_checkpoint
from edutune_core.runstore import COMPLETED, FAILED, INTERRUPTED, QUEUED, RUNNING, STOPPED, RunRecord, RunStore
from edutune_core.tasks import CLASSIFICATION, TABULAR, ColumnMapping, PreparedData, prepare_data
from edutune_core.training import TrainingJob

logger = logging.getLogger(__name__)

TRAIN_SNAPSHOT = "train_data.parquet"
VALIDATION_SNAPSHOT = "validation_data.parquet"


class StoreSink:
    """Records a job's progress in the run store as it happens."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store = store
        self.run_id = run_id

    def start(self, total_steps: int) -> None:
        self.store.set_total_steps(self.run_id, total_steps)
        self.store.add_event(self.run_id, "started", {"total_steps": total_steps})

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None:
        self.store.add_points(self.run_id, "train", step, epoch, values)

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None:
        self.store.add_points(self.run_id, "validation", step, epoch, values)

    def log_event(self, kind: str, detail: dict) -> None:
        self.store.add_event(self.run_id, kind, detail)
        if kind == "hardware":
            self.store.update_summary(self.run_id, {"hardware": detail})
        if kind == "resumed":
            # Points recorded after the checkpoint (by a process that died) are dropped,
            # so the curve continues from the step the job resumed at.
            self.store.delete_points_after(self.run_id, detail["step"])


@dataclass
class JobSpec:
    """Job description that runs on any executor: the run id, its folder and its settings.

    The local executor and a cluster worker run the same spec. The folder must be
    readable and writable at the same path wherever the job runs.
    """

    run_id: str
    run_dir: Path
    config: dict

    @classmethod
    def from_record(cls, record: RunRecord) -> JobSpec:
        return cls(run_id=record.run_id, run_dir=Path(record.run_dir), config=record.config)

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "run_dir": str(self.run_dir), "config": self.config}

    @classmethod
    def from_dict(cls, values: dict) -> JobSpec:
        return cls(run_id=values["run_id"], run_dir=Path(values["run_dir"]), config=values["config"])


@dataclass
class RunOutcome:
    """Result of a job: its final status, metrics and values to merge into the run's summary."""

    status: str
    metrics: dict | None = None
    summary: dict | None = None

    def to_dict(self) -> dict:
        return {"status": self.status, "metrics": self.metrics, "summary": self.summary}

    @classmethod
    def from_dict(cls, values: dict) -> RunOutcome:
        return cls(status=values["status"], metrics=values.get("metrics"), summary=values.get("summary"))


def split_rows(data: PreparedData, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into training and validation, stratified by class when possible."""
    positions = np.arange(len(data))
    stratify = data.targets if data.mapping.problem == CLASSIFICATION else None
    test_size: float | int = share
    if stratify is not None:
        validation_rows = max(int(round(len(data) * share)), len(data.labels))
        if validation_rows >= len(data) or np.bincount(stratify).min() < 2:
            stratify = None
        elif math.ceil(len(data) * share) < len(data.labels):
            # A stratified split needs one validation row per class at least; scikit-learn
            # rejects a smaller share instead of rounding it up.
            test_size = len(data.labels)
    return train_test_split(positions, test_size=test_size, random_state=seed, stratify=stratify)


def data_summary(frame: pd.DataFrame, data: PreparedData, validation: PreparedData | None) -> dict:
    """Describe the training data for the history page, without any raw rows."""
    summary = {
        "rows": int(len(frame)),
        "rows_used": int(len(data)),
        "columns": [str(column) for column in frame.columns],
        "dropped_rows": data.dropped_rows,
        "problem": data.mapping.problem,
        "labels": data.labels,
        "score_points": data.score_points,
    }
    if data.labels is not None:
        counts = np.bincount(data.targets, minlength=len(data.labels))
        summary["label_counts"] = {label: int(count) for label, count in zip(data.labels, counts)}
    else:
        summary["target_mean"] = float(np.mean(data.targets))
        summary["target_std"] = float(np.std(data.targets))
    if validation is not None:
        summary["validation_rows"] = int(len(validation))
    return summary


def create_run(store: RunStore, frame: pd.DataFrame, mapping: ColumnMapping, config: TrainConfig, *,
               data_name: str, validation_frame: pd.DataFrame | None = None,
               run_dir: Path | str | None = None, name: str | None = None,
               extra_summary: dict | None = None, cluster: dict | None = None) -> RunRecord:
    """Check the data and settings, snapshot the data and record a queued run.

    ``cluster`` holds the resources that a cluster executor requests for this run (see
    ``edutune_core.executor.ClusterOptions``); without it the executor's defaults apply.

    Raises:
        DataError: The mapping does not fit the table.
        ConfigError: A setting is out of range.
    """
    config.validate()
    data = prepare_data(frame, mapping)
    validation = None
    if validation_frame is not None:
        # A validation file only needs rows to compare with. The training checks (ten rows,
        # two per class) would reject the small validation part of a small class.
        validation = prepare_data(validation_frame, mapping, labels=data.labels, check_rows=False)
    warm_start = Path(config.model).expanduser().is_dir()
    model = config.model if data.task != TABULAR or warm_start else TABULAR_MODEL
    # A table network starts from random weights, so the stored settings name it rather
    # than the default text model.
    config = dataclasses.replace(config, model=model)
    record = store.create_run(
        name=name or f"{data_name} · {mapping.target}", task=data.task, model=model, data_name=data_name,
        config={"train": config.to_dict(), "mapping": mapping.to_dict(), **({"cluster": cluster} if cluster else {})},
        summary=data_summary(frame, data, validation) | (extra_summary or {}), run_dir=run_dir,
    )
    _write_snapshot(frame, record.run_dir / TRAIN_SNAPSHOT)
    if validation_frame is not None:
        _write_snapshot(validation_frame, record.run_dir / VALIDATION_SNAPSHOT)
    return record


def _write_snapshot(frame: pd.DataFrame, path: Path) -> None:
    # Parquet needs string column names and one type per column; mixed object
    # columns are stored as text, which is how the loader reads them anyway.
    table = frame.copy()
    table.columns = [str(column) for column in table.columns]
    for column in table.columns:
        if table[column].dtype == object:
            table[column] = table[column].map(lambda value: value if value is None or isinstance(value, str) else str(value))
    table.to_parquet(path, index=False)


def load_all_rows(record: RunRecord | JobSpec) -> PreparedData:
    """Rebuild every training row of a run from its snapshot, before any split."""
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    return prepare_data(pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT), mapping)


def load_run_data(record: RunRecord | JobSpec) -> tuple[PreparedData, PreparedData]:
    """Rebuild the training and validation data of a run from its snapshot."""
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    config = TrainConfig.from_dict(record.config["train"])
    data = load_all_rows(record)
    validation_path = record.run_dir / VALIDATION_SNAPSHOT
    if validation_path.exists():
        return data, prepare_data(pd.read_parquet(validation_path), mapping, labels=data.labels, check_rows=False)
    train_rows, validation_rows = split_rows(data, config.validation_share, config.seed)
    return data.subset(train_rows), data.subset(validation_rows)


def prepare_resume(store: RunStore, run_id: str) -> RunRecord:
    """Check that a run can continue from its checkpoint and queue it again.

    Raises:
        EduTuneError: The run is not stopped or interrupted, or has no checkpoint.
    """
    record = store.get_run(run_id)
    if record.status not in (STOPPED, INTERRUPTED):
        raise EduTuneError("train.not_resumable", run_id=run_id, status=record.status)
    if find_checkpoint(record.run_dir) is None:
        raise EduTuneError("train.no_checkpoint", run_id=run_id)
    store.set_status(run_id, QUEUED)
    return store.get_run(run_id)


def run_job(spec: JobSpec, sink, stop_event: threading.Event | None = None, *, resume: bool = False,
            make_job=TrainingJob) -> RunOutcome:
    """Train the run described by ``spec``, reporting to ``sink``, and return how it ended.

    This touches no run store, so a cluster worker runs it as it is. ``make_job``
    builds the training job; a data-parallel worker passes a subclass of ``TrainingJob``.

    Raises:
        EduTuneError: An error the user can fix (bad data, NaN loss, out of memory).
    """
    config = TrainConfig.from_dict(spec.config["train"])
    if config.lr_range_test:
        from edutune_core.lr_finder import lr_range_test

        result = lr_range_test(load_all_rows(spec), config, sink, stop_event)
        return RunOutcome(COMPLETED if result["suggested_learning_rate"] else STOPPED,
                          summary={"lr_range_test": result})
    if config.folds >= 2:
        from edutune_core.crossval import cross_validate

        metrics = cross_validate(load_all_rows(spec), config, sink, stop_event, spec.run_dir)
        finished = stop_event is None or not stop_event.is_set()
        return RunOutcome(COMPLETED if finished else STOPPED, metrics=metrics)
    train, validation = load_run_data(spec)
    job = make_job(train, validation, config, sink, checkpoint_dir=spec.run_dir)
    job.setup()
    if resume:
        job.resume(find_checkpoint(spec.run_dir))
    finished = job.run(stop_event)
    metrics = job.save(spec.run_dir)
    return RunOutcome(COMPLETED if finished else STOPPED, metrics=metrics)


def execute_run(store: RunStore, run_id: str, stop_event: threading.Event | None = None, *,
                resume: bool = False) -> RunRecord:
    """Train a recorded run to the end (or until stopped), save it and record the outcome.

    With ``resume``, training continues from the run's checkpoint, and metric points
    recorded after the checkpoint (by a process that died) are dropped first.

    Errors the user can fix are recorded on the run with their message key, so every
    page can show them in the reader's language. Other errors are logged with their
    traceback and recorded as an internal error.
    """
    record = store.get_run(run_id)
    store.set_status(run_id, RUNNING)
    try:
        outcome = run_job(JobSpec.from_record(record), StoreSink(store, run_id), stop_event, resume=resume)
        record_outcome(store, run_id, outcome)
    except EduTuneError as error:
        logger.warning("run %s failed: %s", run_id, error)
        record_failure(store, run_id, failure_of(error))
    except Exception as error:  # noqa: BLE001 - a job thread must record every failure
        logger.exception("run %s failed with an internal error", run_id)
        record_failure(store, run_id, failure_of(error))
    finally:
        # Free the model and optimizer memory of the finished job now, before the thread ends.
        gc.collect()
    return store.get_run(run_id)


def record_outcome(store: RunStore, run_id: str, outcome: RunOutcome) -> None:
    """Record the summary values, metrics and final status of a job that ended without an error."""
    if outcome.summary:
        store.update_summary(run_id, outcome.summary)
    if outcome.metrics is not None:
        store.set_metrics(run_id, outcome.metrics)
    store.set_status(run_id, outcome.status)


def failure_of(error: Exception) -> dict:
    """Return the error record of a failed job: the message key and its parameters.

    An ``EduTuneError`` keeps its own key. Any other exception becomes
    ``run.internal_error`` with its type and text.
    """
    if isinstance(error, EduTuneError):
        return {"key": error.key, "params": _json_safe(error.params)}
    return {"key": "run.internal_error", "params": {"error": f"{type(error).__name__}: {error}"[:300]}}


def record_failure(store: RunStore, run_id: str, error: dict) -> None:
    """Record a failed run; when even that cannot be written (a full disk), log it instead of raising.

    The job thread must survive to run the next queued job. A run whose failure was not
    recorded stays running in the database until the next server start marks it interrupted.
    """
    try:
        store.set_status(run_id, FAILED, error=error)
        store.add_event(run_id, "failed", error)
    except (sqlite3.Error, OSError) as store_error:
        logger.error("could not record the failure of run %s (%s): %s", run_id, error.get("key"), store_error)


def _json_safe(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))
