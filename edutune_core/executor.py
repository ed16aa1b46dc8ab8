"""Executors: the place where training jobs run, a thread of this process (``local``) or a Ray cluster.

The setting comes from ``$EDUTUNE_EXECUTOR`` or the command line's ``--executor``:
``local`` (the default), ``auto`` (the Ray cluster started on this machine with
``ray start --head``), ``host:port`` (a cluster's GCS address) or ``ray://host:port``
(a Ray Client server). This module never imports Ray; ``edutune_core.ray_executor``
does, and only when a cluster address is set.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass

from edutune_core.i18n import ConfigError, EduTuneError, translate
from edutune_core.runstore import QUEUED, RunRecord, RunStore

EXECUTOR_ENV = "EDUTUNE_EXECUTOR"
WORKERS_ENV = "EDUTUNE_RAY_WORKERS"
CPUS_PER_WORKER_ENV = "EDUTUNE_RAY_CPUS_PER_WORKER"
GPUS_PER_WORKER_ENV = "EDUTUNE_RAY_GPUS_PER_WORKER"
LOCAL = "local"
AUTO = "auto"
RAY_CLIENT_PREFIX = "ray://"
# Seconds to wait for a TCP connection to a cluster address before reporting it unreachable.
CONNECT_TIMEOUT_S = 5.0
LR_SCALINGS = ("linear", "none")
MAX_WORKERS = 256
# Event recorded while a cluster job waits for the resources it requested.
WAITING_EVENT = "waiting_for_resources"


def parse_executor(value: str | None) -> str:
    """Return the normalised executor setting: ``local``, ``auto`` or a cluster address.

    Raises:
        ConfigError: ``cluster.invalid_executor`` when ``value`` matches no accepted form.
    """
    setting = (value or "").strip()
    if setting.lower() in ("", LOCAL):
        return LOCAL
    if setting.lower() == AUTO:
        return AUTO
    host_port = setting[len(RAY_CLIENT_PREFIX):] if setting.startswith(RAY_CLIENT_PREFIX) else setting
    host, _, port = host_port.rpartition(":")
    valid = bool(host) and port.isdigit() and 0 < int(port) < 65536 and not any(
        character.isspace() or character in "/?#@" for character in host)
    if not valid:
        raise ConfigError("cluster.invalid_executor", value=setting)
    return setting


def split_address(setting: str) -> tuple[str, int] | None:
    """Return the host and port of a cluster address, or None for ``auto``."""
    if setting == AUTO:
        return None
    host_port = setting[len(RAY_CLIENT_PREFIX):] if setting.startswith(RAY_CLIENT_PREFIX) else setting
    host, _, port = host_port.rpartition(":")
    return host.strip("[]"), int(port)


def check_reachable(setting: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Open and close a TCP connection to the cluster address, so a wrong one fails fast.

    Ray's own connection attempts retry for a long time; this check turns a closed port
    or an unknown host into an error within ``timeout`` seconds.

    Raises:
        EduTuneError: ``cluster.unreachable`` when no connection can be made.
    """
    address = split_address(setting)
    if address is None:
        return
    try:
        with socket.create_connection(address, timeout=timeout):
            pass
    except OSError as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise EduTuneError("cluster.unreachable", address=setting, reason=reason) from error


@dataclass
class ClusterOptions:
    """Resources that a cluster job requests.

    Attributes:
        workers: Data-parallel worker processes for one job. More than one trains
            through Ray Train's ``TorchTrainer``.
        cpus_per_worker: Logical CPUs that Ray reserves for each worker.
        gpus_per_worker: GPUs per worker; None takes one when the training device
            is ``cuda``, or ``auto`` on a cluster that has GPUs, else none.
        lr_scaling: ``"linear"`` multiplies the learning rate by ``workers``, because
            each optimizer step then averages the gradient over ``workers`` times as
            many rows. ``"none"`` keeps the learning rate.
    """

    workers: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    lr_scaling: str = "linear"

    def validate(self) -> None:
        """Raise the first invalid option.

        Raises:
            ConfigError: An option is out of range.
        """
        checks = [
            ("workers", self.workers, isinstance(self.workers, int) and 1 <= self.workers <= MAX_WORKERS,
             f"1 – {MAX_WORKERS}"),
            ("cpus_per_worker", self.cpus_per_worker, 0 < self.cpus_per_worker <= 1024, "0 – 1024"),
            ("gpus_per_worker", self.gpus_per_worker,
             self.gpus_per_worker is None or 0 <= self.gpus_per_worker <= 64, "0 – 64"),
        ]
        for name, value, valid, allowed in checks:
            if not valid:
                raise ConfigError("config.out_of_range", setting=name, value=value, allowed=allowed)
        if self.lr_scaling not in LR_SCALINGS:
            raise ConfigError("config.unknown_choice", setting="lr_scaling", value=self.lr_scaling,
                              allowed=", ".join(LR_SCALINGS))

    def to_dict(self) -> dict:
        return {"workers": self.workers, "cpus_per_worker": self.cpus_per_worker,
                "gpus_per_worker": self.gpus_per_worker, "lr_scaling": self.lr_scaling}

    @classmethod
    def from_dict(cls, values: dict) -> ClusterOptions:
        names = ("workers", "cpus_per_worker", "gpus_per_worker", "lr_scaling")
        return cls(**{name: values[name] for name in names if name in values})

    @classmethod
    def from_env(cls) -> ClusterOptions:
        """Read the defaults for jobs started from the pages.

        Raises:
            ConfigError: A variable is not a number, or out of range.
        """
        options = cls()
        for variable, name, parse in ((WORKERS_ENV, "workers", int), (CPUS_PER_WORKER_ENV, "cpus_per_worker", float),
                                      (GPUS_PER_WORKER_ENV, "gpus_per_worker", float)):
            raw = os.environ.get(variable, "").strip()
            if not raw:
                continue
            try:
                setattr(options, name, parse(raw))
            except ValueError:
                raise ConfigError("config.out_of_range", setting=variable, value=raw, allowed="a number") from None
        options.validate()
        return options


class LocalExecutor:
    """Runs each job in the job manager's own thread, as ``edutune_core.runner.execute_run``."""

    name = LOCAL
    # The job manager's first-in, first-out queue decides when a local job starts.
    queues_jobs = False

    def run(self, store: RunStore, run_id: str, stop_event: threading.Event, *, resume: bool = False) -> RunRecord:
        from edutune_core.runner import execute_run

        return execute_run(store, run_id, stop_event, resume=resume)

    def caption(self, lang: str) -> str:
        """Return the line the sidebar shows: where jobs run."""
        return translate("cluster.executor_local", lang)


def build_executor(setting: str | None = None, options: ClusterOptions | None = None):
    """Return the executor for ``setting``, or for ``$EDUTUNE_EXECUTOR`` when it is None.

    A cluster setting connects to the cluster now, so a wrong address fails here and
    not when the first job starts.

    Raises:
        ConfigError: The setting or a resource variable is invalid.
        EduTuneError: ``cluster.ray_missing`` when Ray is not installed, or
            ``cluster.unreachable`` when the cluster does not respond.
    """
    setting = parse_executor(os.environ.get(EXECUTOR_ENV) if setting is None else setting)
    if setting == LOCAL:
        return LocalExecutor()
    options = options or ClusterOptions.from_env()
    check_reachable(setting)
    try:
        from edutune_core.ray_executor import RayExecutor
    except ImportError as error:
        raise EduTuneError("cluster.ray_missing", executor=setting) from error
    return RayExecutor(setting, options)


def waiting_message(record: RunRecord, events: list[dict], lang: str) -> str | None:
    """Return the "waiting for resources" line of a queued cluster run, or None.

    ``events`` are the run's events from ``RunStore.events``. The line names the
    resources the run requested and what the cluster had free when it was recorded.
    """
    if record.status != QUEUED:
        return None
    for event in reversed(events):
        if event["kind"] in ("started", "resumed", "cluster_started"):
            return None
        if event["kind"] == WAITING_EVENT:
            return translate("cluster.waiting", lang, **event["detail"]["message"])
    return None
