"""The fine-tuning loop: a training job with an explicit lifecycle.

``TrainingJob(...)`` is cheap. ``setup()`` seeds every random generator, loads the
model and builds the optimizer and schedule; ``resume()`` then optionally restores a
checkpoint. ``run(stop_event)`` trains, checks the stop event once per optimizer step,
evaluates after every epoch, keeps the best weights by the validation metric and writes
a checkpoint after every epoch and when stopped. ``save()`` writes the model folder that
``edutune_core.predict`` loads. Every loss point and evaluation goes to a
``MetricsSink`` as it happens.
"""

from __future__ import annotations

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

from edutune_core import checkpoint as checkpoints
from edutune_core import metrics as metric_lib
from edutune_core import optim
from edutune_core.adapters import TableAdapter, TextAdapter
from edutune_core.char_model import CHAR_MODEL, CharAdapter
from edutune_core.config import TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.images import ARCHITECTURES, Augmentation, ImageAdapter
from edutune_core.tasks import CLASSIFICATION, IMAGE_CLASSIFICATION, TABULAR, PreparedData

logger = logging.getLogger(__name__)

MODEL_FILE_VERSION = 1
LOG_EVERY_STEPS = 10


class MetricsSink(Protocol):
    """Receiver of a training job's progress. Implementations must be thread-safe."""

    def start(self, total_steps: int) -> None: ...

    def log_train(self, step: int, epoch: float, values: dict[str, float]) -> None: ...

    def log_validation(self, step: int, epoch: float, values: dict[str, float]) -> None: ...

    def log_event(self, kind: str, detail: dict) -> None: ...


class TrainingError(EduTuneError):
    """Training stopped because of its numbers or the hardware (NaN loss, out of memory)."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so two runs with the same seed train the same way."""
    # NOTE: these generators are global to the process. Two jobs that train at once in
    # one server (EDUTUNE_MAX_JOBS above 1) draw from the same ones, and then the same
    # seed no longer repeats a run exactly.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class TrainingJob:
    """Fine-tunes one model on prepared training data and evaluates it on validation data.

    Args:
        train: Training rows.
        validation: Rows held out for evaluation after every epoch.
        config: Training settings.
        sink: Receiver of loss points, evaluations and events.
        checkpoint_dir: Folder for checkpoints (the run folder), or None to write none.
    """

    # Data-parallel training (edutune_core.ray_executor) runs one job per process:
    # process ``rank`` of ``world_size`` takes every ``world_size``-th row of each
    # optimizer step, and ``_sync_gradients`` sums the gradients of all processes.
    # ``learning_rate_scale`` multiplies the learning rate. One process trains alone.
    rank = 0
    world_size = 1
    learning_rate_scale = 1.0

    def __init__(self, train: PreparedData, validation: PreparedData, config: TrainConfig,
                 sink: MetricsSink, checkpoint_dir: Path | None = None) -> None:
        self.train_data = train
        self.validation_data = validation
        self.config = config
        self.sink = sink
        self.checkpoint_dir = checkpoint_dir
        self.problem = train.mapping.problem
        self.family = metric_lib.metric_family(self.problem, train.score_points)
        self.adapter: TextAdapter | TableAdapter | None = None
        self.best_metrics: dict | None = None
        self.best_validation_predictions: np.ndarray | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        # Position in training: completed epochs, optimizer steps and rows of the
        # current epoch's order already used. A checkpoint stores all three.
        self.epoch = 0
        self.step = 0
        self.position = 0
        self.order: np.ndarray | None = None
        self.epochs_done = 0
        self.epochs_without_improvement = 0

    # Setup

    def setup(self) -> None:
        """Seed, load the model, encode the data and build the optimizer and schedule."""
        config = self.config
        seed_everything(config.seed)
        self.device = optim.pick_device(config.device)
        num_outputs = len(self.train_data.labels) if self.problem == CLASSIFICATION else 1
        text_task = self.train_data.task not in (TABULAR, IMAGE_CLASSIFICATION)
        if self.train_data.task == IMAGE_CLASSIFICATION:
            self.adapter = ImageAdapter.create(config.model if config.model in ARCHITECTURES else "resnet18",
                                               num_outputs, config.image_size,
                                               Augmentation.from_dict(config.augmentation))
            self.sink.log_event("image_model", {"pretrained": self.adapter.pretrained})
        elif text_task and config.model == CHAR_MODEL:
            self.adapter = CharAdapter.create(self.train_data, num_outputs, config.max_length)
        elif text_task:
            self.adapter = TextAdapter.create(config.model, num_outputs, self.problem, config.max_length,
                                              config.truncation)
            optim.freeze_text_layers(self.adapter.model, config)
            if config.lora_rank:
                self.adapter.model = optim.add_lora(self.adapter.model, config)
        elif Path(config.model).expanduser().is_dir():
            self.adapter, columns = TableAdapter.warm_start(Path(config.model).expanduser(), self.train_data,
                                                            num_outputs)
            self.sink.log_event("warm_start", {"from": config.model, **columns})
            logger.info("continuing from the table model in %s; columns not matched: %s", config.model, columns)
        else:
            self.adapter = TableAdapter.create(self.train_data, num_outputs)
        self.adapter.model.to(self.device)
        self.precision = fit_to_device(self.adapter, config, self.device)

        # Regression heads learn standardised targets; predictions are scaled back.
        if self.problem == CLASSIFICATION:
            self.target_scale = (0.0, 1.0)
        else:
            targets = self.train_data.targets
            self.target_scale = (float(targets.mean()), float(targets.std()) or 1.0)
        self.loss_weights = None
        if config.class_weights and self.problem == CLASSIFICATION:
            self.loss_weights = optim.class_weight_tensor(self.train_data.targets, num_outputs).to(self.device)
        self.train_inputs = self.adapter.encode(self.train_data)
        self.train_lengths = self.adapter.lengths(self.train_inputs) if isinstance(self.adapter, TextAdapter) else None
        self.validation_inputs = self.adapter.encode(self.validation_data)
        self.train_targets = target_tensor(self.train_data.targets, self.problem, self.target_scale)
        self.validation_targets = target_tensor(self.validation_data.targets, self.problem, self.target_scale)

        self.steps_per_epoch = math.ceil(len(self.train_data) / self.rows_per_step)
        self.total_steps = self.steps_per_epoch * config.epochs
        # The character model starts from random weights, like the table network.
        self.learning_rate = (config.effective_learning_rate(text_task and config.model != CHAR_MODEL)
                              * self.learning_rate_scale)
        self.optimizer = optim.build_optimizer(self.adapter.model.parameters(), config, self.learning_rate)
        self.scheduler = optim.build_scheduler(self.optimizer, config, self.total_steps)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.data_order = np.random.default_rng(config.seed)
        self.sink.start(self.total_steps)
        self.sink.log_event("hardware", {"device": self.device.type, "precision": self.precision,
                                         "tokens_per_pass": getattr(self.adapter, "tokens_per_pass", None)})
        logger.info("training %s on %d rows, validating on %d rows, on %s: %d epochs x %d steps, batch size %d "
                    "(x%d accumulated), learning rate %g, %s", self._model_name(),
                    len(self.train_data), len(self.validation_data), self.device, config.epochs,
                    self.steps_per_epoch, config.batch_size, config.accumulation_steps, self.learning_rate,
                    self.precision)

    def _model_name(self) -> str:
        if self.train_data.task == IMAGE_CLASSIFICATION:
            return self.adapter.architecture
        return self.config.model if self.train_data.task != TABULAR else "the table network"

    @property
    def rows_per_step(self) -> int:
        """Rows of one optimizer step over all data-parallel processes: the effective batch size."""
        return self.config.batch_size * self.config.accumulation_steps * self.world_size

    def resume(self, folder: Path) -> None:
        """Restore weights, optimizer, schedule, random states and data position from a checkpoint."""
        model_state, best_state, training_state, progress = checkpoints.read_checkpoint(folder)
        self.adapter.model.load_state_dict(model_state)
        self.best_state = best_state
        self.optimizer.load_state_dict(training_state["optimizer"])
        self.scheduler.load_state_dict(training_state["scheduler"])
        self.data_order.bit_generator.state = training_state["data_order"]
        checkpoints.restore_random_states(training_state)
        self.epoch, self.step, self.position = progress["epoch"], progress["step"], progress["position"]
        self.order = np.asarray(progress["order"], dtype=np.int64) if progress["order"] is not None else None
        self.epochs_done = progress["epochs_done"]
        self.epochs_without_improvement = progress["epochs_without_improvement"]
        self.best_metrics = progress["best_metrics"]
        if progress.get("best_predictions") is not None:
            self.best_validation_predictions = np.asarray(progress["best_predictions"])
        self.sink.log_event("resumed", {"step": self.step, "epoch": self.epoch})
        logger.info("resumed at step %d (epoch %d, row %d of the epoch)", self.step, self.epoch, self.position)

    def write_checkpoint(self) -> None:
        if self.checkpoint_dir is None:
            return
        predictions = self.best_validation_predictions
        progress = {"epoch": self.epoch, "step": self.step, "position": self.position,
                    "order": None if self.order is None else self.order.tolist(),
                    "epochs_done": self.epochs_done, "epochs_without_improvement": self.epochs_without_improvement,
                    "best_metrics": self.best_metrics,
                    "best_predictions": None if predictions is None else predictions.tolist()}
        checkpoints.write_checkpoint(self.checkpoint_dir, model_state=self.adapter.model.state_dict(),
                                     best_state=self.best_state, optimizer=self.optimizer, scheduler=self.scheduler,
                                     data_order=self.data_order, progress=progress)
        self.sink.log_event("checkpoint_saved", {"step": self.step})

    # Training

    def run(self, stop_event: threading.Event | None = None) -> bool:
        """Train until the last epoch, early stopping, or until ``stop_event`` is set.

        Returns:
            True when training ended by itself, False when it was stopped.

        Raises:
            TrainingError: The loss became NaN or infinite, or memory ran out.
        """
        stop_event = stop_event or threading.Event()
        while self.epoch < self.config.epochs:
            if self.order is None:
                self.order = self._epoch_order()
            stopped = self._train_epoch(stop_event)
            if stopped and self.epochs_done > 0:
                break
            # A run stopped during its first epoch still evaluates the weights it has,
            # so the user gets a usable model and honest metrics.
            improved = self._evaluate_epoch(self.step, self.step / self.steps_per_epoch)
            if stopped:
                break
            self.epoch, self.position, self.order = self.epoch + 1, 0, None
            self.epochs_without_improvement = 0 if improved else self.epochs_without_improvement + 1
            self.write_checkpoint()
            if 0 < self.config.early_stopping_patience <= self.epochs_without_improvement:
                self.sink.log_event("early_stopped", {"epoch": self.epoch, "patience": self.config.early_stopping_patience})
                logger.info("early stopping after epoch %d", self.epoch)
                break
        stopped = stop_event.is_set()
        if stopped:
            self.write_checkpoint()
        self.sink.log_event("stopped" if stopped else "finished", {"step": self.step, "epochs": self.epochs_done})
        return not stopped

    def _epoch_order(self) -> np.ndarray:
        """Draw a new random order of the training rows, with text rows in batches of similar length."""
        if self.config.group_by_length and isinstance(self.adapter, TextAdapter):
            return optim.length_grouped_order(self.data_order, self.train_lengths, self.rows_per_step)
        return self.data_order.permutation(len(self.train_data))

    def _train_epoch(self, stop_event: threading.Event) -> bool:
        """Train on the rest of the current epoch's order; return True when stopped."""
        model = self.adapter.model
        model.train()
        started, first_step = time.perf_counter(), self.step
        while self.position < len(self.order):
            if stop_event.is_set():
                return True
            rows = self.order[self.position:self.position + self.rows_per_step]
            loss = self._optimizer_step(rows)
            self.position += len(rows)
            self.step += 1
            self.sink.log_train(self.step, self.step / self.steps_per_epoch,
                                {"loss": loss, "learning_rate": self.scheduler.get_last_lr()[0]})
            if self.step % LOG_EVERY_STEPS == 0:
                logger.info("step %d/%d loss %.4f (%.2f s/step)", self.step, self.total_steps, loss,
                            (time.perf_counter() - started) / (self.step - first_step))
        return False

    def _optimizer_step(self, rows: np.ndarray) -> float:
        """Accumulate gradients over ``rows`` in batches, then take one optimizer step."""
        config = self.config
        total_loss = 0.0
        self.optimizer.zero_grad(set_to_none=True)
        try:
            own_rows = rows[self.rank::self.world_size]
            if self.train_lengths is not None:
                # The step's gradient is a sum over its rows, so their order does not matter.
                # Longest first, each pass and accumulated batch pads to similar lengths.
                own_rows = own_rows[np.argsort(-self.train_lengths[own_rows], kind="stable")]
            for inputs, targets in self.adapter.batches(self.train_inputs, self.train_targets, own_rows,
                                                        config.batch_size):
                inputs, targets = _to_device(inputs, self.device), targets.to(self.device)
                with optim.autocast_context(self.device, self.precision):
                    outputs = self.adapter.forward(inputs)
                loss = compute_loss(self.problem, outputs.float(), targets, self.loss_weights)
                self._check_finite(loss)
                share = len(targets) / len(rows)
                self.scaler.scale(loss * share).backward()
                total_loss += loss.item() * share
        except (torch.OutOfMemoryError, RuntimeError) as error:
            if not optim.is_out_of_memory(error):
                raise
            raise TrainingError("train.out_of_memory", device=str(self.device), batch_size=config.batch_size,
                                max_length=config.max_length, smaller_batch=max(1, config.batch_size // 2)) from error
        total_loss = self._sync_gradients(total_loss)
        if config.max_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.adapter.model.parameters(), config.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return total_loss

    def _sync_gradients(self, loss: float) -> float:
        """Combine the gradients and the loss of all data-parallel processes; one process keeps its own."""
        return loss

    def _check_finite(self, loss: torch.Tensor) -> None:
        if torch.isfinite(loss):
            return
        self.sink.log_event("non_finite_loss", {"step": self.step + 1, "value": str(loss.item())})
        raise TrainingError("train.nan_loss", step=self.step + 1, value=str(loss.item()),
                            learning_rate=f"{self.learning_rate:g}", precision=self.precision)

    def _evaluate_epoch(self, step: int, epoch: float) -> bool:
        """Evaluate on the validation rows, keep the best weights, and tell whether they improved."""
        validation_loss, raw = self.predict_raw(self.validation_inputs, self.validation_targets)
        metrics = self.metrics_for(self.validation_data.targets, raw)
        scalars = {name: metrics[name] for name in metric_lib.SCALAR_METRICS if name in metrics}
        self.sink.log_validation(step, epoch, {"loss": validation_loss, **scalars})
        self.epochs_done += 1
        primary, _ = metric_lib.PRIMARY_METRIC[self.family]
        best = None if self.best_metrics is None else self.best_metrics[primary]
        improved = metric_lib.is_improvement(self.family, metrics[primary], best)
        if improved:
            self.best_metrics = {**metrics, "validation_loss": validation_loss, "epoch": epoch, "step": step}
            self.best_validation_predictions = raw
            self.best_state = {name: tensor.detach().to("cpu", copy=True)
                               for name, tensor in self.adapter.model.state_dict().items()}
        logger.info("epoch %.2f: validation loss %.4f, %s %.4f", epoch, validation_loss, primary, metrics[primary])
        self.sink.log_event("epoch_done", {"epoch": epoch, "step": step, primary: metrics[primary]})
        return improved

    # Evaluation

    def predict_raw(self, encoded, targets: torch.Tensor | None = None) -> tuple[float, np.ndarray]:
        return predict_outputs(self.adapter, encoded, self.problem, self.target_scale, self.config.batch_size,
                               targets, device=self.device, precision=self.precision)

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
        if self.config.lora_rank and hasattr(self.adapter.model, "merge_and_unload"):
            # The saved model is a plain model with the adapters merged into its weights.
            self.adapter.model = self.adapter.model.merge_and_unload()
        self.adapter.model.to("cpu")
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
        # Class probabilities (ROC-AUC, calibration, alert thresholds) and the score
        # before rounding (standardised mean difference) are kept for evaluation.
        if data.labels is not None:
            for index, label in enumerate(data.labels):
                table[f"probability_{label}"] = self.best_validation_predictions[:, index].round(6)
        else:
            table["raw_prediction"] = self.best_validation_predictions.round(6)
        table.to_csv(run_dir / "validation_predictions.csv", index=False, encoding="utf-8")


def fit_to_device(adapter, config: TrainConfig, device: torch.device) -> str:
    """Set a text adapter's padding and pass size for ``device`` and return the precision to compute in."""
    is_text = isinstance(adapter, TextAdapter)
    if is_text:
        adapter.pad_to_multiple_of = config.pad_to_multiple_of
        adapter.tokens_per_pass = optim.tokens_per_pass(config.tokens_per_pass, device)
    return optim.resolve_precision(config.precision, device, is_text)


def target_tensor(targets: np.ndarray, problem: str, target_scale: tuple[float, float]) -> torch.Tensor:
    """Return class indices as longs, or values standardised with ``target_scale``."""
    if problem == CLASSIFICATION:
        return torch.as_tensor(targets, dtype=torch.long)
    mean, scale = target_scale
    return torch.as_tensor((targets - mean) / scale, dtype=torch.float32)


def compute_loss(problem: str, outputs: torch.Tensor, targets: torch.Tensor,
                 class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy for classes (optionally weighted), mean squared error on standardised values."""
    if problem == CLASSIFICATION:
        return functional.cross_entropy(outputs, targets, weight=class_weights)
    return functional.mse_loss(outputs.squeeze(-1), targets)


def _to_device(inputs: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {name: tensor.to(device) for name, tensor in inputs.items()}


@torch.inference_mode()
def predict_outputs(adapter, encoded, problem: str, target_scale: tuple[float, float], batch_size: int,
                    targets: torch.Tensor | None = None, device: torch.device | None = None,
                    precision: str = "fp32") -> tuple[float, np.ndarray]:
    """Run the model over encoded rows, text rows from the longest to the shortest.

    Returns:
        The mean loss (NaN without targets) and the raw outputs in the rows' own order:
        class probabilities, or values on the target's own scale.
    """
    model = adapter.model
    was_training = model.training
    model.eval()
    inference_order = getattr(adapter, "inference_order", None)
    order = inference_order(encoded) if inference_order else np.arange(len(encoded))
    losses, outputs = [], []
    device = device or torch.device("cpu")
    with optim.autocast_context(device, precision):
        for inputs, batch_targets in adapter.batches(encoded, targets, order, batch_size):
            batch_outputs = adapter.forward(_to_device(inputs, device)).float().cpu()
            if batch_targets is not None:
                losses.append(compute_loss(problem, batch_outputs, batch_targets).item() * len(batch_outputs))
            outputs.append(batch_outputs)
    model.train(was_training)
    ordered = torch.cat(outputs)
    restored = torch.empty_like(ordered)
    restored[torch.from_numpy(order)] = ordered
    return _decode_outputs(restored, problem, target_scale, losses, len(order))


def format_predictions(raw: np.ndarray, problem: str, labels: list[str] | None,
                       score_points: tuple | None) -> list:
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

