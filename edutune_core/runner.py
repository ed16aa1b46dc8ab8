"""Create a run from a table and a mapping, and execute it from start to saved model.

``create_run`` does every check that needs no model (mapping, targets, settings), so
bad input is rejected before anything is queued, and snapshots the data into the run's
folder. ``execute_run`` is what a job thread or the command line calls: it reads the
snapshot back, trains, saves and records the outcome in the run store.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
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


def split_rows(data: PreparedData, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split row positions into training and validation, stratified by class when possible."""
    positions = np.arange(len(data))
    stratify = data.targets if data.mapping.problem == CLASSIFICATION else None
    if stratify is not None:
        validation_rows = max(int(round(len(data) * share)), len(data.labels))
        if validation_rows >= len(data) or np.bincount(stratify).min() < 2:
            stratify = None
    return train_test_split(positions, test_size=share, random_state=seed, stratify=stratify)


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
               extra_summary: dict | None = None) -> RunRecord:
    """Check the data and settings, snapshot the data and record a queued run.

    Raises:
        DataError: The mapping does not fit the table.
        ConfigError: A setting is out of range.
    """
    config.validate()
    data = prepare_data(frame, mapping)
    validation = None
    if validation_frame is not None:
        validation = prepare_data(validation_frame, mapping, labels=data.labels)
    warm_start = Path(config.model).expanduser().is_dir()
    model = config.model if data.task != TABULAR or warm_start else TABULAR_MODEL
    record = store.create_run(
        name=name or f"{data_name} · {mapping.target}", task=data.task, model=model, data_name=data_name,
        config={"train": config.to_dict(), "mapping": mapping.to_dict()},
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


def load_all_rows(record: RunRecord) -> PreparedData:
    """Rebuild every training row of a run from its snapshot, before any split."""
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    return prepare_data(pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT), mapping)


def load_run_data(record: RunRecord) -> tuple[PreparedData, PreparedData]:
    """Rebuild the training and validation data of a run from its snapshot."""
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    config = TrainConfig.from_dict(record.config["train"])
    data = load_all_rows(record)
    validation_path = record.run_dir / VALIDATION_SNAPSHOT
    if validation_path.exists():
        return data, prepare_data(pd.read_parquet(validation_path), mapping, labels=data.labels)
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
    job = None
    config = TrainConfig.from_dict(record.config["train"])
    try:
        if config.lr_range_test:
            from edutune_core.lr_finder import lr_range_test

            result = lr_range_test(load_all_rows(record), config, StoreSink(store, run_id), stop_event)
            store.update_summary(run_id, {"lr_range_test": result})
            store.set_status(run_id, COMPLETED if result["suggested_learning_rate"] else STOPPED)
            return store.get_run(run_id)
        if config.folds >= 2:
            from edutune_core.crossval import cross_validate

            metrics = cross_validate(load_all_rows(record), config, StoreSink(store, run_id), stop_event,
                                     record.run_dir)
            finished = stop_event is None or not stop_event.is_set()
        else:
            train, validation = load_run_data(record)
            job = TrainingJob(train, validation, config, StoreSink(store, run_id), checkpoint_dir=record.run_dir)
            job.setup()
            if resume:
                folder = find_checkpoint(record.run_dir)
                job.resume(folder)
                store.delete_points_after(run_id, job.step)
            finished = job.run(stop_event)
            metrics = job.save(record.run_dir)
        store.set_metrics(run_id, metrics)
        store.set_status(run_id, COMPLETED if finished else STOPPED)
    except EduTuneError as error:
        logger.warning("run %s failed: %s", run_id, error)
        _record_failure(store, run_id, {"key": error.key, "params": _json_safe(error.params)})
    except Exception as error:  # noqa: BLE001 - a job thread must record every failure
        logger.exception("run %s failed with an internal error", run_id)
        _record_failure(store, run_id, {"key": "run.internal_error",
                                        "params": {"error": f"{type(error).__name__}: {error}"[:300]}})
    finally:
        # Drop the model and optimizer before the thread ends so their memory is freed now.
        del job
        gc.collect()
    return store.get_run(run_id)


def _record_failure(store: RunStore, run_id: str, error: dict) -> None:
    store.set_status(run_id, FAILED, error=error)
    store.add_event(run_id, "failed", error)


def _json_safe(params: dict) -> dict:
    return json.loads(json.dumps(params, default=str))
