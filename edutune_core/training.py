"""The fine-tuning loop: a training job with an explicit lifecycle.

``TrainingJob(...)`` is cheap. ``setup()`` seeds every random generator, loads the
model and builds the optimizer and schedule. ``run(stop_event)`` trains, checks the stop
event once per step, evaluates after every epoch and keeps the best weights by the
validation metric. ``save()`` writes the model folder that ``edutune_core.predict``
loads. Every loss point and evaluation goes to a ``MetricsSink`` as it happens.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd
import torch
from torch.nn import functional

from edutune_core import metrics as metric_lib
from edutune_core.adapters import TableAdapter, TextAdapter
from edutune_core.config import TrainConfig
from edutune_core.tasks import CLASSIFICATION, TABULAR, PreparedData

logger = logging.getLogger(__name__)

MODEL_FILE_VERSION = 1
LOG_EVERY_STEPS = 10


class MetricsSink(Protocol):
    """Receiver of a training job's progress. Implementations must be thread-safe."""

    def start(self, total_steps: int) -> None: ...

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None: ...

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None: ...

    def log_event(self, kind: str, detail: dict) -> None: ...


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so two runs with the same seed train the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainingJob:
    """Fine-tunes one model on prepared training data and evaluates it on validation data."""

    def __init__(self, train: PreparedData, validation: PreparedData, config: TrainConfig,
                 sink: MetricsSink) -> None:
        self.train_data = train
        self.validation_data = validation
        self.config = config
        self.sink = sink
        self.problem = train.mapping.problem
        self.family = metric_lib.metric_family(self.problem, train.score_points)
        self.adapter: TextAdapter | TableAdapter | None = None
        self.best_metrics: dict | None = None
        self.best_validation_predictions: np.ndarray | None = None
        self.epochs_done = 0

    # Setup

    def setup(self) -> None:
        """Seed, load the model, encode the data and build the optimizer and schedule."""
        config = self.config
        seed_everything(config.seed)
        num_outputs = len(self.train_data.labels) if self.problem == CLASSIFICATION else 1
        text_task = self.train_data.task != TABULAR
        if text_task:
            self.adapter = TextAdapter.create(config.model, num_outputs, self.problem, config.max_length)
        else:
            self.adapter = TableAdapter.create(self.train_data, num_outputs)

        # Regression heads learn standardised targets; predictions are scaled back.
        if self.problem == CLASSIFICATION:
            self.target_scale = (0.0, 1.0)
        else:
            targets = self.train_data.targets
            self.target_scale = (float(targets.mean()), float(targets.std()) or 1.0)
        self.train_inputs = self.adapter.encode(self.train_data)
        self.validation_inputs = self.adapter.encode(self.validation_data)
        self.train_targets = target_tensor(self.train_data.targets, self.problem, self.target_scale)
        self.validation_targets = target_tensor(self.validation_data.targets, self.problem, self.target_scale)

        self.steps_per_epoch = math.ceil(len(self.train_data) / config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        learning_rate = config.effective_learning_rate(text_task)
        self.optimizer = torch.optim.AdamW(self.adapter.model.parameters(), lr=learning_rate,
                                           weight_decay=config.weight_decay)
        warmup_steps = int(self.total_steps * config.warmup_share)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: _linear_warmup_decay(step, warmup_steps, self.total_steps))
        self.data_order = np.random.default_rng(config.seed)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.sink.start(self.total_steps)
        logger.info("training %s on %d rows, validating on %d rows: %d epochs x %d steps, batch size %d, "
                    "learning rate %g", self.config.model if text_task else "the table network",
                    len(self.train_data), len(self.validation_data), config.epochs, self.steps_per_epoch,
                    config.batch_size, learning_rate)

    # Training

    def run(self, stop_event: threading.Event | None = None) -> bool:
        """Train until the last epoch or until ``stop_event`` is set.

        Returns:
            True when every epoch ran, False when the job was stopped early.
        """
        stop_event = stop_event or threading.Event()
        model = self.adapter.model
        step = 0
        for epoch in range(self.config.epochs):
            model.train()
            order = self.data_order.permutation(len(self.train_data))
            started = time.perf_counter()
            for inputs, targets in self.adapter.batches(self.train_inputs, self.train_targets, order,
                                                        self.config.batch_size):
                if stop_event.is_set():
                    break

                loss = compute_loss(self.problem, self.adapter.forward(inputs), targets)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                self.optimizer.step()
                self.scheduler.step()

                step += 1
                learning_rate = self.scheduler.get_last_lr()[0]
                self.sink.log_train(step, step / self.steps_per_epoch,
                                    {"loss": loss.item(), "learning_rate": learning_rate})
                if step % LOG_EVERY_STEPS == 0:
                    logger.info("step %d/%d loss %.4f (%.2f s/step)", step, self.total_steps, loss.item(),
                                (time.perf_counter() - started) / (step - epoch * self.steps_per_epoch))

            if stop_event.is_set() and self.epochs_done > 0:
                break
            # A run stopped during its first epoch still evaluates the weights it has,
            # so the user gets a usable model and honest metrics.
            self._evaluate_epoch(step, step / self.steps_per_epoch)
            if stop_event.is_set():
                break
        stopped = stop_event.is_set()
        self.sink.log_event("stopped" if stopped else "finished", {"step": step, "epochs": self.epochs_done})
        return not stopped

    def _evaluate_epoch(self, step: int, epoch: float) -> None:
        validation_loss, raw = self.predict_raw(self.validation_inputs, self.validation_targets)
        metrics = self.metrics_for(self.validation_data.targets, raw)
        scalars = {name: metrics[name] for name in metric_lib.SCALAR_METRICS if name in metrics}
        self.sink.log_validation(step, epoch, {"loss": validation_loss, **scalars})
        self.epochs_done += 1
        primary, _ = metric_lib.PRIMARY_METRIC[self.family]
        best = None if self.best_metrics is None else self.best_metrics[primary]
        if metric_lib.is_improvement(self.family, metrics[primary], best):
            self.best_metrics = {**metrics, "validation_loss": validation_loss, "epoch": epoch, "step": step}
            self.best_validation_predictions = raw
            self.best_state = copy.deepcopy(self.adapter.model.state_dict())
        logger.info("epoch %.2f: validation loss %.4f, %s %.4f", epoch, validation_loss, primary, metrics[primary])
        self.sink.log_event("epoch_done", {"epoch": epoch, "step": step, primary: metrics[primary]})

    # Evaluation

    def predict_raw(self, encoded, targets: torch.Tensor | None = None) -> tuple[float, np.ndarray]:
        return predict_outputs(self.adapter, encoded, self.problem, self.target_scale, self.config.batch_size, targets)

    def metrics_for(self, targets: np.ndarray, raw: np.ndarray) -> dict:
        data = self.train_data
        predicted = raw.argmax(axis=1) if self.problem == CLASSIFICATION else raw
        return metric_lib.compute_metrics(self.problem, targets, predicted, labels=data.labels,
                                          score_points=data.score_points)

    # Saving

    def save(self, run_dir: Path) -> dict:
        """Write the best weights and everything needed to predict, and return the best metrics."""
        if self.best_state is not None:
            self.adapter.model.load_state_dict(self.best_state)
        model_dir = run_dir / "model"
        extra = self.adapter.save(model_dir)
        data = self.train_data
        description = {
            "format_version": MODEL_FILE_VERSION,
            "adapter": self.adapter.kind,
            "task": data.task,
            "mapping": data.mapping.to_dict(),
            "labels": data.labels,
            "score_points": list(data.score_points) if data.score_points else None,
            "target_scale": list(self.target_scale),
            "config": self.config.to_dict(),
            **extra,
        }
        (model_dir / "edutune.json").write_text(json.dumps(description, ensure_ascii=False, indent=2), encoding="utf-8")
        if data.labels is not None:
            label_map = {str(index): label for index, label in enumerate(data.labels)}
            (model_dir / "label_map.json").write_text(json.dumps(label_map, ensure_ascii=False, indent=2), encoding="utf-8")
        metrics = self.best_metrics or {}
        (run_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")
        self._save_validation_predictions(run_dir)
        self.sink.log_event("saved", {"folder": str(model_dir)})
        return metrics

    def _save_validation_predictions(self, run_dir: Path) -> None:
        if self.best_validation_predictions is None:
            return
        data = self.validation_data
        table = pd.DataFrame({"row": data.row_index})
        table["target"] = data.targets if data.labels is None else [data.labels[i] for i in data.targets]
        table["prediction"] = format_predictions(self.best_validation_predictions, self.problem,
                                                 data.labels, data.score_points)
        table.to_csv(run_dir / "validation_predictions.csv", index=False, encoding="utf-8")


def target_tensor(targets: np.ndarray, problem: str, target_scale: tuple[float, float]) -> torch.Tensor:
    """Return class indices as longs, or values standardised with ``target_scale``."""
    if problem == CLASSIFICATION:
        return torch.as_tensor(targets, dtype=torch.long)
    mean, scale = target_scale
    return torch.as_tensor((targets - mean) / scale, dtype=torch.float32)


def compute_loss(problem: str, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for classes, mean squared error on standardised values for regression."""
    if problem == CLASSIFICATION:
        return functional.cross_entropy(outputs, targets)
    return functional.mse_loss(outputs.squeeze(-1), targets)


@torch.inference_mode()
def predict_outputs(adapter, encoded, problem: str, target_scale: tuple[float, float], batch_size: int,
                    targets: torch.Tensor | None = None) -> tuple[float, np.ndarray]:
    """Run the model over encoded rows in order.

    Returns:
        The mean loss (NaN without targets) and the raw outputs: class probabilities,
        or values on the target's own scale.
    """
    model = adapter.model
    was_training = model.training
    model.eval()
    order = np.arange(len(encoded))
    losses, outputs = [], []
    for inputs, batch_targets in adapter.batches(encoded, targets, order, batch_size):
        batch_outputs = adapter.forward(inputs)
        if batch_targets is not None:
            losses.append(compute_loss(problem, batch_outputs, batch_targets).item() * len(batch_outputs))
        outputs.append(batch_outputs.float())
    model.train(was_training)
    return _decode_outputs(torch.cat(outputs), problem, target_scale, losses, len(order))


def format_predictions(raw: np.ndarray, problem: str, labels: list[str] | None,
                       score_points: tuple[int, int] | None) -> list:
    """Turn raw outputs into what a teacher reads: class names, whole score points or values."""
    if problem == CLASSIFICATION:
        return [labels[index] for index in raw.argmax(axis=1)]
    if score_points is not None:
        return metric_lib.round_to_points(raw, score_points).tolist()
    return [round(float(value), 3) for value in raw]


def _decode_outputs(outputs: torch.Tensor, problem: str, target_scale: tuple[float, float],
                    losses: list[float], count: int) -> tuple[float, np.ndarray]:
    loss = sum(losses) / count if losses else float("nan")
    if problem == CLASSIFICATION:
        return loss, torch.softmax(outputs, dim=-1).numpy()
    mean, scale = target_scale
    return loss, outputs.squeeze(-1).numpy().astype(np.float64) * scale + mean


def _linear_warmup_decay(step: int, warmup_steps: int, total_steps: int) -> float:
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    remaining = total_steps - step
    return max(0.0, remaining / max(1, total_steps - warmup_steps))
