"""K-fold cross-validation of a fine-tuning run.

Small classes (30 to 300 rows) give one held-out split too few rows for a stable
estimate, so a cross-validated run trains one model per fold and reports each metric's
mean and standard deviation over the folds. Folds are stratified by class for
classification and grouped by the mapping's student column when it has one, so that no
student's rows are on both sides of a split.

What a cross-validated run leaves in its folder:

- ``metrics.json``: the mean of each scalar metric over the folds, ``spread`` (sample
  standard deviation), ``folds`` (each fold's metrics), ``pooled`` (scalar metrics of
  all out-of-fold predictions together) and the confusion matrix and per-class values
  of the out-of-fold predictions.
- ``validation_predictions.csv``: one out-of-fold prediction per row, each made by the
  fold model that did not see the row, with a ``fold`` column.
- ``model/``: a final model trained on every row for the median of the folds' best
  epochs. Its best epoch is chosen on its own training rows, so it has no held-out
  score of its own. The fold metrics estimate how well it does. When the run is stopped before
  the final model is finished, the best fold's model is saved instead, and
  ``cross_validation.final_model`` says which one it is.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold

from edutune_core import metrics as metric_lib
from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError, DataError
from edutune_core.tasks import CLASSIFICATION, PreparedData
from edutune_core.training import MetricsSink, TrainingJob, format_predictions

logger = logging.getLogger(__name__)

FINAL_ALL_ROWS = "all_rows"
FINAL_BEST_FOLD = "best_fold"


def fold_splits(data: PreparedData, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split row positions into ``folds`` pairs of training and validation positions.

    Every row is in exactly one validation part. With a student column, all rows of a
    student fall in the same validation part (StratifiedGroupKFold for classes,
    GroupKFold otherwise). Without one, classes use StratifiedKFold and other targets
    KFold. Splits are shuffled with ``seed``.

    Raises:
        ConfigError: ``folds`` is below 2 or above the number of rows.
        DataError: The student column has fewer students than ``folds``.
    """
    if folds < 2 or folds > len(data):
        raise ConfigError("evaluation.folds_out_of_range", folds=folds, rows=len(data))
    positions = np.arange(len(data))
    classes = data.targets if data.mapping.problem == CLASSIFICATION else None
    if data.students is not None:
        students = np.unique(data.students)
        if len(students) < folds:
            raise DataError("evaluation.too_few_students", column=data.mapping.student_column,
                            count=len(students), folds=folds)
        if classes is not None:
            splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        else:
            splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(positions, classes, groups=data.students))
    if classes is not None and np.bincount(classes).max() >= folds:
        splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        return list(splitter.split(positions, classes))
    return list(KFold(n_splits=folds, shuffle=True, random_state=seed).split(positions))


def planned_steps(train_rows: int, config: TrainConfig) -> int:
    """Return the optimizer steps of one job on ``train_rows`` rows, without early stopping."""
    rows_per_step = config.batch_size * config.accumulation_steps
    return math.ceil(train_rows / rows_per_step) * config.epochs


class ContinuedSink:
    """Forwards several jobs to one sink as if they were one run.

    Each job counts its steps and epochs from zero. This sink adds the steps and epochs
    of the jobs before it, so the live curves keep moving right, and it adds the fold
    number to every event. ``start`` of a job is not forwarded: the whole run is
    announced once with ``announce``.
    """

    def __init__(self, sink: MetricsSink) -> None:
        self.sink = sink
        self.fold: int | None = None
        self.forward_validation = True
        self._step_offset = 0
        self._epoch_offset = 0.0
        self._last_step = 0
        self._last_epoch = 0.0
        self._announced: int | None = None
        self._lock = threading.Lock()

    def announce(self, total_steps: int) -> None:
        """Tell the sink the planned steps of the whole run, again only when they change."""
        if total_steps != self._announced:
            self._announced = total_steps
            self.sink.start(total_steps)

    def next_job(self, fold: int | None, forward_validation: bool = True) -> None:
        """Continue after the steps of the previous job; ``fold`` None marks the final model."""
        with self._lock:
            self._step_offset, self._epoch_offset = self._last_step, self._last_epoch
        self.fold = fold
        self.forward_validation = forward_validation

    def start(self, total_steps: int) -> None:
        return None

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None:
        with self._lock:
            self._last_step = self._step_offset + step
            self._last_epoch = self._epoch_offset + epoch
            step, epoch = self._last_step, self._last_epoch
        self.sink.log_train(step, epoch, values)

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None:
        if self.forward_validation:
            self.sink.log_validation(self._step_offset + step, self._epoch_offset + epoch, values)

    def log_event(self, kind: str, detail: dict) -> None:
        self.sink.log_event(kind, {**detail, "fold": self.fold})


@dataclass
class FoldResult:
    """Outcome of one fold: its rows, its best metrics and its out-of-fold outputs."""

    fold: int
    train_rows: int
    validation_positions: np.ndarray
    metrics: dict
    raw: np.ndarray
    finished: bool


def cross_validate(data: PreparedData, config: TrainConfig, sink: MetricsSink,
                   stop_event: threading.Event | None, run_dir: Path) -> dict:
    """Train and evaluate one model per fold, then save a final model and the results.

    See the module docstring for the files written and which model is saved. The stop
    event is checked between folds and, inside a fold, at every optimizer step. A run
    stopped during its first fold still reports that fold's metrics.

    Args:
        data: Every training row of the run.
        config: Training settings; ``config.folds`` (at least 2) folds are used.
        sink: Receiver of progress; steps keep counting up across folds.
        stop_event: Set by the user to stop the run, or None.
        run_dir: The run's folder.

    Returns:
        The metrics written to ``metrics.json``.

    Raises:
        ConfigError: ``config.folds`` does not fit the number of rows.
        DataError: There are fewer students than folds.
        TrainingError: A fold's training failed (NaN loss, out of memory).
    """
    stop_event = stop_event or threading.Event()
    splits = fold_splits(data, config.folds, config.seed)
    progress = ContinuedSink(sink)
    progress.announce(sum(planned_steps(len(train), config) for train, _ in splits)
                      + planned_steps(len(data), config))
    results, best_job = _train_folds(data, config, splits, progress, stop_event)

    final_model, final_epochs = FINAL_BEST_FOLD, None
    if not stop_event.is_set():
        final_epochs = _final_epochs(results, config)
        final_job = _train_final(data, dataclasses.replace(config, epochs=final_epochs), progress, stop_event,
                                 sum(planned_steps(len(train), config) for train, _ in splits))
        if not stop_event.is_set():
            best_job, final_model = final_job, FINAL_ALL_ROWS
    best_job.save(run_dir)
    del best_job

    # A fold stopped part-way counts only when no fold finished, so that a run stopped
    # early still reports what it measured.
    counted = [result for result in results if result.finished] or results
    metrics = _summarize(data, counted, config, final_model, final_epochs)
    (run_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
    out_of_fold_table(data, counted).to_csv(run_dir / "validation_predictions.csv", index=False, encoding="utf-8")
    sink.log_event("cross_validation_done", {"folds": len(results), "final_model": final_model})
    return metrics


def _train_folds(data: PreparedData, config: TrainConfig, splits: list[tuple[np.ndarray, np.ndarray]],
                 progress: ContinuedSink, stop_event: threading.Event) -> tuple[list[FoldResult], TrainingJob]:
    """Train the folds in order and keep the job with the best primary metric."""
    family = metric_lib.metric_family(data.mapping.problem, data.score_points)
    primary, _ = metric_lib.PRIMARY_METRIC[family]
    results: list[FoldResult] = []
    best_job, best_value = None, None
    for fold, (train_rows, validation_rows) in enumerate(splits, start=1):
        # The first fold always runs, so that even a run stopped at once saves a model.
        if fold > 1 and stop_event.is_set():
            break
        progress.next_job(fold)
        progress.sink.log_event("fold_started", {"fold": fold, "folds": len(splits), "train_rows": len(train_rows),
                                                 "validation_rows": len(validation_rows)})
        job = TrainingJob(data.subset(train_rows), data.subset(validation_rows), config, progress)
        job.setup()
        finished = job.run(stop_event)
        results.append(FoldResult(fold, len(train_rows), validation_rows, job.best_metrics,
                                  job.best_validation_predictions, finished))
        value = job.best_metrics[primary]
        progress.sink.log_event("fold_done", {"fold": fold, primary: value, "epoch": job.best_metrics["epoch"]})
        logger.info("fold %d/%d: %s %.4f", fold, len(splits), primary, value)
        if metric_lib.is_improvement(family, value, best_value):
            best_job, best_value = job, value
        del job
    return results, best_job


def _final_epochs(results: list[FoldResult], config: TrainConfig) -> int:
    """Median of the folds' best epochs, rounded up, at least 1 and at most ``config.epochs``."""
    best_epochs = [result.metrics["epoch"] for result in results]
    return int(min(config.epochs, max(1, math.ceil(float(np.median(best_epochs)) - 1e-9))))


def _train_final(data: PreparedData, config: TrainConfig, progress: ContinuedSink,
                 stop_event: threading.Event, steps_before: int) -> TrainingJob:
    """Train on every row; its evaluations are on its own training rows, so none is forwarded."""
    progress.next_job(None, forward_validation=False)
    progress.announce(steps_before + planned_steps(len(data), config))
    progress.sink.log_event("final_model_started", {"rows": len(data), "epochs": config.epochs})
    every_row = data.subset(np.arange(len(data)))
    job = TrainingJob(every_row, every_row, config, progress)
    job.setup()
    job.run(stop_event)
    return job


def _summarize(data: PreparedData, counted: list[FoldResult], config: TrainConfig, final_model: str,
               final_epochs: int | None) -> dict:
    """Build the run's metrics: fold means and spread, per-fold values and pooled out-of-fold metrics."""
    fold_scalars = [_fold_entry(result) for result in counted]
    positions = np.concatenate([result.validation_positions for result in counted])
    raw = np.concatenate([result.raw for result in counted])
    predicted = raw.argmax(axis=1) if data.mapping.problem == CLASSIFICATION else raw
    pooled = metric_lib.compute_metrics(data.mapping.problem, data.targets[positions], predicted,
                                        labels=data.labels, score_points=data.score_points)
    scalar_names = set(metric_lib.SCALAR_METRICS)
    return {
        **{name: value for name, value in pooled.items() if name not in scalar_names},
        **metric_lib.summarize_folds(fold_scalars),
        "pooled": {name: pooled[name] for name in metric_lib.SCALAR_METRICS if name in pooled},
        "folds": fold_scalars,
        "epoch": final_epochs if final_epochs is not None else counted[0].metrics["epoch"],
        "validation_loss": float(np.mean([entry["validation_loss"] for entry in fold_scalars])),
        "cross_validation": {
            "folds": config.folds, "completed": len([result for result in counted if result.finished]),
            "rows": int(len(positions)), "grouped_by": data.mapping.student_column,
            "stratified": data.mapping.problem == CLASSIFICATION, "seed": config.seed,
            "final_model": final_model, "final_epochs": final_epochs,
        },
    }


def _fold_entry(result: FoldResult) -> dict:
    entry = {"fold": result.fold, "train_rows": result.train_rows,
             "validation_rows": int(len(result.validation_positions)),
             "epoch": float(result.metrics["epoch"]), "validation_loss": float(result.metrics["validation_loss"])}
    entry.update({name: float(result.metrics[name]) for name in metric_lib.SCALAR_METRICS if name in result.metrics})
    return entry


def out_of_fold_table(data: PreparedData, results: list[FoldResult]) -> pd.DataFrame:
    """Return the out-of-fold predictions in the layout of ``validation_predictions.csv``, plus ``fold``."""
    tables = []
    for result in results:
        part = data.subset(result.validation_positions)
        table = pd.DataFrame({"row": part.row_index, "fold": result.fold})
        table["target"] = part.targets if part.labels is None else [part.labels[i] for i in part.targets]
        table["prediction"] = format_predictions(result.raw, part.mapping.problem, part.labels, part.score_points)
        if part.labels is not None:
            for index, label in enumerate(part.labels):
                table[f"probability_{label}"] = result.raw[:, index].round(6)
        else:
            table["raw_prediction"] = result.raw.round(6)
        tables.append(table)
    return pd.concat(tables, ignore_index=True).sort_values("row", ignore_index=True)
