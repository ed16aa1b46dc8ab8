"""Read a run's recorded points back as curves and a progress summary for the pages."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from edutune_core.runstore import RunRecord


@dataclass
class Progress:
    """State of a run, computed from its recorded points.

    Attributes:
        step: Optimizer steps done.
        total_steps: Steps planned, or None before the job has started.
        epoch: Epochs done, fractional within an epoch.
        elapsed_seconds: Time since the first recorded step.
        seconds_left: Estimated time to the last step, or None before two steps.
        loss: Train loss of the last step.
        learning_rate: Learning rate of the last step.
        steps_per_second: Mean speed so far.
    """

    step: int = 0
    total_steps: int | None = None
    epoch: float = 0.0
    elapsed_seconds: float = 0.0
    seconds_left: float | None = None
    loss: float | None = None
    learning_rate: float | None = None
    steps_per_second: float | None = None

    @property
    def fraction(self) -> float:
        if not self.total_steps:
            return 0.0
        return min(1.0, self.step / self.total_steps)


def curves(points: list[dict]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pivot points into a train table (one row per step) and a validation table (one per epoch)."""
    frame = pd.DataFrame(points, columns=["split", "step", "epoch", "name", "value", "wall_time"])
    tables = []
    for split in ("train", "validation"):
        part = frame[frame["split"] == split]
        if part.empty:
            tables.append(pd.DataFrame(columns=["step", "epoch", "wall_time"]))
            continue
        table = part.pivot_table(index=["step", "epoch"], columns="name", values="value", aggfunc="last")
        table = table.reset_index()
        table["wall_time"] = part.groupby("step")["wall_time"].max().to_numpy()
        tables.append(table.sort_values("step", ignore_index=True))
    return tables[0], tables[1]


def progress_of(record: RunRecord, train: pd.DataFrame, now: float | None = None) -> Progress:
    """Summarise progress from the train curve of ``curves``."""
    if train.empty:
        return Progress(total_steps=record.total_steps)
    last = train.iloc[-1]
    step = int(last["step"])
    elapsed = float(last["wall_time"] - train["wall_time"].iloc[0])
    speed = (step - int(train["step"].iloc[0])) / elapsed if elapsed > 0 else None
    seconds_left = None
    if speed and record.total_steps:
        seconds_left = max(0.0, (record.total_steps - step) / speed)
        if record.is_active and now is not None:
            # Time since the last point counts against the estimate, so a slow step shows.
            seconds_left = max(0.0, seconds_left - (now - float(last["wall_time"])))
    return Progress(step=step, total_steps=record.total_steps, epoch=float(last["epoch"]),
                    elapsed_seconds=elapsed, seconds_left=seconds_left, loss=float(last.get("loss", float("nan"))),
                    learning_rate=float(last.get("learning_rate", float("nan"))), steps_per_second=speed)


def format_duration(seconds: float | None) -> str:
    """Format seconds as ``h:mm:ss`` or ``m:ss``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def current_time() -> float:
    return time.time()
