"""Learning-rate range test: raise the learning rate step by step and watch the loss.

The test trains a fresh copy of the model for a short while, multiplying the learning
rate by the same factor at every step from ``min_lr`` to ``max_lr``. The suggested
learning rate is where the smoothed loss falls fastest, a common rule for picking a rate
that learns quickly without diverging. The weights are thrown away afterwards.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import torch

from edutune_core import optim
from edutune_core.config import TrainConfig
from edutune_core.tasks import PreparedData
from edutune_core.training import MetricsSink, TrainingError, TrainingJob

logger = logging.getLogger(__name__)

MAX_STEPS = 200
MIN_STEPS = 20
# The test stops once the smoothed loss exceeds its best value by this factor.
DIVERGENCE_FACTOR = 4.0


def smooth(losses, smoothing: float = 0.9) -> np.ndarray:
    """Return the bias-corrected exponential moving average of ``losses``."""
    average, smoothed = 0.0, []
    for index, loss in enumerate(losses, start=1):
        average = smoothing * average + (1 - smoothing) * loss
        smoothed.append(average / (1 - smoothing**index))
    return np.asarray(smoothed)


def suggest_learning_rate(rates: np.ndarray, losses: np.ndarray) -> float:
    """Return a tenth of the rate at which the smoothed loss was lowest, within the tested range.

    The loss is lowest just before training becomes unstable, so a tenth of that rate
    keeps a margin. The steepest fall of the loss, another common rule, lands on noise
    at the start of the test when a batch's loss varies as much as it does on essays.
    """
    smoothed = smooth(losses)
    # Skip the first tenth of the points, where the average has seen too little loss.
    start = min(len(smoothed) - 1, max(3, len(smoothed) // 10))
    lowest = start + int(np.argmin(smoothed[start:]))
    return float(np.clip(rates[lowest] / 10, rates[0], rates[-1]))


def lr_range_test(train: PreparedData, config: TrainConfig, sink: MetricsSink,
                  stop_event: threading.Event | None = None, *, min_lr: float = 1e-7, max_lr: float = 1.0) -> dict:
    """Run the range test and return the tested rates, losses and the suggested rate.

    The test takes one epoch or ``MAX_STEPS`` steps, whichever is shorter, and at least
    ``MIN_STEPS`` (repeating the data when an epoch is shorter).
    """
    stop_event = stop_event or threading.Event()
    job = TrainingJob(train, train, config, sink)
    job.setup()
    steps = int(np.clip(job.steps_per_epoch, MIN_STEPS, MAX_STEPS))
    job.optimizer = optim.build_optimizer(job.adapter.model.parameters(), config, min_lr)
    growth = (max_lr / min_lr) ** (1 / (steps - 1))
    job.scheduler = torch.optim.lr_scheduler.LambdaLR(job.optimizer, lambda step: growth**step)
    job.adapter.model.train()

    rates, losses = [], []
    rows_per_step = config.batch_size * config.accumulation_steps
    order = np.concatenate([job.data_order.permutation(len(train)) for _ in range(steps * rows_per_step
                                                                                 // len(train) + 1)])
    for step in range(steps):
        if stop_event.is_set():
            break
        rate = job.scheduler.get_last_lr()[0]
        try:
            loss = job._optimizer_step(order[step * rows_per_step:(step + 1) * rows_per_step])
        except TrainingError:
            break
        rates.append(rate)
        losses.append(loss)
        sink.log_train(step + 1, (step + 1) / job.steps_per_epoch, {"loss": loss, "learning_rate": rate})
        smoothed = smooth(losses)
        if len(losses) > 5 and smoothed[-1] > DIVERGENCE_FACTOR * smoothed.min():
            break
    if len(rates) < 5:
        return {"rates": rates, "losses": losses, "suggested_learning_rate": None}
    suggestion = suggest_learning_rate(np.asarray(rates), np.asarray(losses))
    sink.log_event("lr_suggested", {"learning_rate": suggestion})
    logger.info("learning-rate range test over %d steps suggests %g", len(rates), suggestion)
    return {"rates": rates, "losses": losses, "suggested_learning_rate": suggestion}
