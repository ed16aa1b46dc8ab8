"""Learning curve: the validation metric when training on 25, 50, 75 and 100 % of the training rows.

A curve that still rises at 100 % suggests that scoring more essays (or adding more
students) would likely help, and a flat one suggests it would not. Each point trains the run's
model again with the run's settings on a seeded, class-stratified subset of the run's
training rows and evaluates it on the run's validation rows. The TF-IDF or table
baseline gets the same points, which costs little. A cross-validated run uses its first
fold's split. The result is cached in the run folder as ``learning_curve.json``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading

import numpy as np
from sklearn.model_selection import train_test_split

from edutune_core import metrics as metric_lib
from edutune_core.baseline import baseline_kinds, evaluate_split
from edutune_core.config import TrainConfig
from edutune_core.crossval import fold_splits
from edutune_core.evaluation import require_snapshot
from edutune_core.runner import load_all_rows, load_run_data
from edutune_core.runstore import RunRecord
from edutune_core.tasks import CLASSIFICATION, PreparedData
from edutune_core.training import TrainingJob

logger = logging.getLogger(__name__)

CURVE_FILE = "learning_curve.json"
SHARES = (0.25, 0.5, 0.75, 1.0)


class _QuietSink:
    """Discards progress: a learning-curve point is not a run of its own."""

    def start(self, total_steps: int) -> None:
        return None

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None:
        return None

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None:
        return None

    def log_event(self, kind: str, detail: dict) -> None:
        return None


def training_subset(train: PreparedData, share: float, seed: int) -> PreparedData:
    """Return ``share`` of the training rows, stratified by class when every class keeps a row."""
    if share >= 1.0:
        return train
    positions = np.arange(len(train))
    stratify = train.targets if train.mapping.problem == CLASSIFICATION else None
    size = max(2, int(round(len(train) * share)))
    if stratify is not None and (size < len(train.labels) or np.bincount(stratify).min() < 2):
        stratify = None
    kept, _ = train_test_split(positions, train_size=size, random_state=seed, stratify=stratify)
    return train.subset(np.sort(kept))


def curve_points(train: PreparedData, validation: PreparedData, config: TrainConfig,
                 shares: tuple[float, ...] = SHARES, stop_event: threading.Event | None = None) -> list[dict]:
    """Train and evaluate the model and the baselines on growing shares of ``train``.

    Returns:
        One entry per share that was reached before ``stop_event`` was set:
        ``{"share", "rows", "model": scalar metrics, "baselines": {kind: scalar metrics}}``.

    Raises:
        TrainingError: Training failed on one of the subsets.
    """
    points = []
    single_run = dataclasses.replace(config, folds=0)
    for share in shares:
        if stop_event is not None and stop_event.is_set():
            break
        subset = training_subset(train, share, config.seed)
        job = TrainingJob(subset, validation, single_run, _QuietSink())
        job.setup()
        job.run(stop_event)
        baselines = evaluate_split(subset, validation, config.seed)
        points.append({"share": share, "rows": len(subset), "model": _scalars(job.best_metrics),
                       "baselines": {kind: _scalars(baselines[kind]) for kind in baseline_kinds(subset)}})
        logger.info("learning curve: %d rows (%.0f %%) done", len(subset), share * 100)
        del job
    return points


def _scalars(metrics: dict) -> dict[str, float]:
    return {name: float(metrics[name]) for name in metric_lib.SCALAR_METRICS if name in metrics}


def learning_curve(record: RunRecord, stop_event: threading.Event | None = None) -> dict:
    """Compute the learning curve of a run, or read it from ``learning_curve.json``.

    Returns:
        ``{"run_id", "points": [...]}`` as ``curve_points`` returns them.

    Raises:
        EvaluationError: The run's data snapshot is missing.
        TrainingError: Training failed on one of the subsets.
    """
    path = record.run_dir / CURVE_FILE
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("run_id") == record.run_id:
            return cached
    require_snapshot(record)
    config = TrainConfig.from_dict(record.config["train"])
    if config.folds >= 2:
        data = load_all_rows(record)
        train_rows, validation_rows = fold_splits(data, config.folds, config.seed)[0]
        train, validation = data.subset(train_rows), data.subset(validation_rows)
    else:
        train, validation = load_run_data(record)
    result = {"run_id": record.run_id, "points": curve_points(train, validation, config, stop_event=stop_event)}
    if len(result["points"]) == len(SHARES):
        path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    return result
