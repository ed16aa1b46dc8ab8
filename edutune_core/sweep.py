"""Small sweeps: one run per combination of the values of one or two settings."""

from __future__ import annotations

import dataclasses
import itertools
import uuid

import pandas as pd

from edutune_core.compare import metrics_table
from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError
from edutune_core.runstore import RunRecord

# Settings a sweep can vary, with the type their values are read as.
SWEEP_SETTINGS = {"learning_rate": float, "batch_size": int, "epochs": int, "freeze_layers": int, "model": str}
MAX_RUNS = 12


def parse_values(setting: str, text: str) -> list:
    """Read comma-separated values of ``setting``.

    Raises:
        ConfigError: The setting cannot be swept, a value has the wrong type, or there
            are fewer than two values.
    """
    if setting not in SWEEP_SETTINGS:
        raise ConfigError("sweep.unknown_setting", setting=setting, allowed=", ".join(SWEEP_SETTINGS))
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            values.append(SWEEP_SETTINGS[setting](item))
        except ValueError:
            raise ConfigError("sweep.bad_value", setting=setting, value=item) from None
    if len(set(values)) < 2:
        raise ConfigError("sweep.too_few_values", setting=setting, values=text)
    return list(dict.fromkeys(values))


def sweep_configs(base: TrainConfig, grid: dict[str, list]) -> list[tuple[dict, TrainConfig]]:
    """Return each combination of the grid with its config, all checked before any run starts.

    Raises:
        ConfigError: The grid has more than ``MAX_RUNS`` combinations, or a combination
            has an invalid setting.
    """
    names = list(grid)
    combinations = list(itertools.product(*(grid[name] for name in names)))
    if len(combinations) > MAX_RUNS:
        raise ConfigError("sweep.too_many_runs", runs=len(combinations), maximum=MAX_RUNS)
    configs = []
    for combination in combinations:
        values = dict(zip(names, combination))
        config = dataclasses.replace(base, **values)
        config.validate()
        configs.append((values, config))
    return configs


def new_sweep_id() -> str:
    return uuid.uuid4().hex[:8]


def sweep_runs(records: list[RunRecord], sweep_id: str) -> list[RunRecord]:
    return [record for record in records if record.summary.get("sweep", {}).get("id") == sweep_id]


def ranked_sweep(records: list[RunRecord]) -> pd.DataFrame:
    """Rank a sweep's runs by the validation metric, with the swept values as columns."""
    table = metrics_table(records)
    if table.empty:
        return table
    values = {record.run_id: record.summary["sweep"]["values"] for record in records}
    for name in next(iter(values.values())):
        table.insert(1, name, [values[run_id].get(name) for run_id in table["run_id"]])
    return table
