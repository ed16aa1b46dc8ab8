"""Budgeted search: Optuna picks each run's settings within ranges, one run after another.

A search is an Optuna study in ``<home>/optuna.sqlite`` (Optuna's RDB storage), so it
outlives the server process. Each trial is an ordinary EduTune run, tagged with the
search id like a grid sweep's runs, and queued through the job manager. A driver
thread asks the study for the next trial only when the previous run has ended, and
tells the study the run's best validation metric. Stopping a search leaves the trial
of the current run unfinished, and resuming continues that run before it asks for more.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
    distribution_to_json,
    json_to_distribution,
)
from optuna.trial import FrozenTrial, TrialState

from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError, EduTuneError
from edutune_core.metrics import PRIMARY_METRIC, metric_family
from edutune_core.runner import _write_snapshot, create_run, prepare_resume
from edutune_core.runstore import (
    ACTIVE_STATUSES,
    COMPLETED,
    DELETED,
    INTERRUPTED,
    QUEUED,
    STOPPED,
    STOPPING,
    RunRecord,
    RunStore,
)
from edutune_core.sweep import new_sweep_id
from edutune_core.tasks import ColumnMapping, prepare_data

logger = logging.getLogger(__name__)

# Settings a search can vary and how their text is read: a (min, max) range on a log
# scale, a set of values, or a (min, max) range of whole numbers.
LOG_RANGE, VALUE_SET, INT_RANGE = "log_range", "value_set", "int_range"
SEARCH_SETTINGS = {"learning_rate": LOG_RANGE, "batch_size": VALUE_SET, "epochs": INT_RANGE,
                   "freeze_layers": INT_RANGE}
MAX_TRIALS = 50
STUDY_FILE = "optuna.sqlite"
SEARCH_KIND = "search"
SNAPSHOT = "train_data.parquet"
POLL_SECONDS = 0.5
_FINISHED_STATES = (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)


def parse_space(texts: dict[str, str]) -> dict[str, BaseDistribution]:
    """Read the search ranges the user typed, one text per setting, leaving out empty texts.

    ``learning_rate``, ``epochs`` and ``freeze_layers`` take "min, max" and
    ``batch_size`` takes the values to choose from, separated by commas.

    Raises:
        ConfigError: A setting cannot be searched, a value is not a number, a range
            does not have two ends or has its minimum above its maximum, a learning
            rate is not positive, or no setting has a range.
    """
    space = {}
    for setting, text in texts.items():
        if setting not in SEARCH_SETTINGS:
            raise ConfigError("search.unknown_setting", setting=setting, allowed=", ".join(SEARCH_SETTINGS))
        items = [item.strip() for item in (text or "").split(",") if item.strip()]
        if not items:
            continue
        kind = SEARCH_SETTINGS[setting]
        values = [_read_number(setting, item, float if kind == LOG_RANGE else int) for item in items]
        if kind == VALUE_SET:
            space[setting] = CategoricalDistribution(sorted(set(values)))
            continue
        if len(values) != 2:
            raise ConfigError("search.bad_range", setting=setting, text=text)
        low, high = values
        if low > high:
            raise ConfigError("search.min_above_max", setting=setting, low=low, high=high)
        if kind == LOG_RANGE:
            if low <= 0:
                raise ConfigError("search.not_positive", setting=setting, value=low)
            space[setting] = FloatDistribution(low, high, log=True)
        else:
            space[setting] = IntDistribution(low, high)
    if not space:
        raise ConfigError("search.no_ranges", allowed=", ".join(SEARCH_SETTINGS))
    return space


def _read_number(setting: str, text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        raise ConfigError("search.bad_value", setting=setting, value=text) from None


def check_search(base: TrainConfig, space: dict[str, BaseDistribution], budget: int) -> None:
    """Check the budget and that every end of every range is a valid setting, before any run starts.

    Raises:
        ConfigError: The budget is outside 1 – ``MAX_TRIALS``, or a range end is outside
            the setting's allowed values (``config.out_of_range``).
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or not 1 <= budget <= MAX_TRIALS:
        raise ConfigError("search.bad_budget", budget=budget, maximum=MAX_TRIALS)
    for setting, distribution in space.items():
        for value in _range_ends(distribution):
            dataclasses.replace(base, **{setting: value}).validate()


def _range_ends(distribution: BaseDistribution) -> list:
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    return [distribution.low, distribution.high]


@dataclass
class SearchInfo:
    """A search as its study records it: settings, budget, metric and trials so far."""

    search_id: str
    budget: int
    metric: str
    maximize: bool
    space: dict[str, BaseDistribution]
    finished: int
    unfinished: int
    best_value: float | None

    @property
    def done(self) -> bool:
        return self.finished >= self.budget


def study_storage(home: Path | str) -> optuna.storages.RDBStorage:
    """Return the Optuna storage of the searches in ``home``, opened once per process."""
    return _storage(str(Path(home).resolve() / STUDY_FILE))


@functools.cache
def _storage(path: str) -> optuna.storages.RDBStorage:
    # SQLite waits up to 30 s for a lock instead of failing when a page reads while the driver writes.
    return optuna.storages.RDBStorage(f"sqlite:///{path}", engine_kwargs={"connect_args": {"timeout": 30}})


def _study_name(search_id: str) -> str:
    return f"edutune-search-{search_id}"


def search_folder(store: RunStore, search_id: str) -> Path:
    return store.home / "searches" / search_id


def create_search(store: RunStore, frame: pd.DataFrame, mapping: ColumnMapping, base: TrainConfig,
                  space: dict[str, BaseDistribution], budget: int, *, data_name: str) -> str:
    """Check everything, record a new study with its data snapshot and return the search id.

    The study's direction follows the task's primary validation metric (for example
    maximise macro-F1 for classes, minimise RMSE for numbers).

    Raises:
        ConfigError: An invalid range, budget or base setting.
        DataError: The mapping does not fit the table.
    """
    base = dataclasses.replace(base, lr_range_test=False)
    base.validate()
    check_search(base, space, budget)
    data = prepare_data(frame, mapping)
    metric, maximize = PRIMARY_METRIC[metric_family(data.mapping.problem, data.score_points)]
    search_id = new_sweep_id()
    folder = search_folder(store, search_id)
    folder.mkdir(parents=True, exist_ok=True)
    _write_snapshot(frame, folder / SNAPSHOT)
    study = optuna.create_study(storage=study_storage(store.home), study_name=_study_name(search_id),
                                direction="maximize" if maximize else "minimize")
    attributes = {"budget": budget, "metric": metric, "owner": store.user, "base": base.to_dict(),
                  "mapping": mapping.to_dict(),
                  "data_name": data_name, "space": {name: distribution_to_json(distribution)
                                                    for name, distribution in space.items()}}
    for key, value in attributes.items():
        study.set_user_attr(key, value)
    logger.info("created search %s: %d trials over %s, %s %s", search_id, budget, ", ".join(space),
                "maximising" if maximize else "minimising", metric)
    return search_id


def _load_study(store: RunStore, search_id: str, *, seed_offset: int | None = None) -> optuna.Study:
    storage = study_storage(store.home)
    sampler = None
    if seed_offset is not None:
        attributes = storage.get_study_user_attrs(storage.get_study_id_from_name(_study_name(search_id)))
        budget = attributes["budget"]
        # The seed moves on with the trials already recorded, so a resumed search does not
        # draw the same random settings again. TPE samples at random until it has
        # n_startup_trials results; Optuna's default of 10 would leave a budget of 12
        # with only two guided trials.
        sampler = optuna.samplers.TPESampler(seed=TrainConfig.from_dict(attributes["base"]).seed + seed_offset,
                                             n_startup_trials=min(10, max(2, budget // 3)))
    return optuna.load_study(study_name=_study_name(search_id), storage=storage, sampler=sampler)


def search_info(store: RunStore, search_id: str) -> SearchInfo:
    """Read a search's budget, metric and progress from its study.

    Raises:
        KeyError: No search has this id.
    """
    try:
        study = _load_study(store, search_id)
    except KeyError:
        raise KeyError(search_id) from None
    attributes = study.user_attrs
    trials = study.get_trials(deepcopy=False)
    completed = [trial.value for trial in trials if trial.state == TrialState.COMPLETE]
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    best = None
    if completed:
        best = max(completed) if maximize else min(completed)
    return SearchInfo(search_id=search_id, budget=attributes["budget"], metric=attributes["metric"],
                      maximize=maximize,
                      space={name: json_to_distribution(text) for name, text in attributes["space"].items()},
                      finished=sum(trial.state in _FINISHED_STATES for trial in trials),
                      unfinished=sum(trial.state not in _FINISHED_STATES for trial in trials), best_value=best)


class SearchDriver:
    """Runs one search's trials, one run at a time, on a background thread.

    The thread only talks to the run store, the job manager and the study, never to a page.

    Args:
        store: Where runs are recorded.
        manager: The job manager that trains the runs (``edutune_core.jobs.JobManager``).
        search_id: A search made by ``create_search``.
    """

    def __init__(self, store: RunStore, manager, search_id: str) -> None:
        self.store = store
        self.manager = manager
        self.search_id = search_id
        self._stop_event = threading.Event()
        self._current_run: str | None = None
        self._thread = threading.Thread(target=self._drive_logged, name=f"edutune-search-{search_id}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the search and its current run. The run's trial stays unfinished, so a resume continues it."""
        self._stop_event.set()
        run_id = self._current_run
        if run_id is not None:
            self.manager.stop(run_id)
        logger.info("stop requested for search %s", self.search_id)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _drive_logged(self) -> None:
        try:
            self._drive()
        except Exception:  # noqa: BLE001 - a dying background thread must leave a trace in the log
            logger.exception("search %s stopped with an internal error", self.search_id)

    def _drive(self) -> None:
        logger.info("search %s started", self.search_id)
        while not self._stop_event.is_set():
            study = _load_study(self.store, self.search_id, seed_offset=len(self._trials(None)))
            unfinished = self._trials(study, finished=False)
            if unfinished:
                trial_number = unfinished[0].number
                run_id = self._continue_trial(study, unfinished[0])
            elif len(self._trials(study, finished=True)) >= study.user_attrs["budget"]:
                logger.info("search %s used its budget of %d trials", self.search_id, study.user_attrs["budget"])
                return
            else:
                trial = study.ask({name: json_to_distribution(text)
                                   for name, text in study.user_attrs["space"].items()})
                trial_number = trial.number
                try:
                    run_id = self._new_run(study, trial.number, trial.params, trial)
                except EduTuneError as error:
                    # create_run rejected the settings or the data: the trial fails without a run.
                    logger.warning("search %s: trial %d failed before its run started: %s", self.search_id,
                                   trial.number, error)
                    study.tell(trial.number, state=TrialState.FAIL)
                    continue
            if run_id is None:
                continue
            record = self._wait(run_id)
            if self._stop_event.is_set():
                break
            self._tell(study, trial_number, record)
        logger.info("search %s stopped", self.search_id)

    def _trials(self, study: optuna.Study | None, *, finished: bool | None = None) -> list[FrozenTrial]:
        study = study or _load_study(self.store, self.search_id)
        trials = study.get_trials(deepcopy=False)
        if finished is None:
            return trials
        return [trial for trial in trials if (trial.state in _FINISHED_STATES) == finished]

    def _new_run(self, study: optuna.Study, number: int, params: dict, trial: optuna.Trial | None = None) -> str:
        attributes = study.user_attrs
        base = TrainConfig.from_dict(attributes["base"])
        config = dataclasses.replace(base, **params)
        frame = pd.read_parquet(search_folder(self.store, self.search_id) / SNAPSHOT)
        label = ", ".join(f"{name}={value:.2g}" if isinstance(value, float) else f"{name}={value}"
                          for name, value in params.items())
        # Each trial belongs to the user who started the search (None without user names).
        owner_store = self.store.for_user(attributes.get("owner"))
        record = create_run(owner_store, frame, ColumnMapping.from_dict(attributes["mapping"]), config,
                            data_name=attributes["data_name"],
                            name=f"{attributes['data_name']} · #{number + 1} · {label}",
                            extra_summary={"sweep": {"id": self.search_id, "kind": SEARCH_KIND, "trial": number,
                                                     "values": params}})
        if trial is not None:
            trial.set_user_attr("run_id", record.run_id)
        self._submit(record.run_id)
        logger.info("search %s: trial %d is run %s (%s)", self.search_id, number, record.run_id, label)
        return record.run_id

    def _continue_trial(self, study: optuna.Study, trial: FrozenTrial) -> str | None:
        """Continue the run of a trial left unfinished by a stop or a restart.

        Returns:
            The run id to wait for, or None when the trial's result was reported to the
            study here because its run had already ended or is gone.
        """
        run_id = trial.user_attrs.get("run_id") or self._run_of_trial(trial.number)
        if run_id is None:
            # The process ended between asking for the trial and creating its run.
            return self._new_run(study, trial.number, trial.params)
        record = self._wait_while_stopping(run_id)
        if record is None or record.status == DELETED:
            study.tell(trial.number, state=TrialState.FAIL)
            return None
        if record.status in ACTIVE_STATUSES:
            if not self.manager.is_managed(run_id):
                logger.info("search %s: run %s is %s outside this job manager; waiting for it",
                            self.search_id, run_id, record.status)
            return run_id
        if record.status in (STOPPED, INTERRUPTED):
            self._resubmit(run_id)
            return run_id
        self._tell(study, trial.number, record)
        return None

    def _run_of_trial(self, number: int) -> str | None:
        for record in self.store.list_runs():
            sweep = record.summary.get("sweep", {})
            if sweep.get("id") == self.search_id and sweep.get("trial") == number:
                return record.run_id
        return None

    def _resubmit(self, run_id: str) -> None:
        try:
            prepare_resume(self.store, run_id)
            self._submit(run_id, resume=True)
            logger.info("search %s: resuming run %s from its checkpoint", self.search_id, run_id)
        except EduTuneError:
            # A run cancelled before it started has no checkpoint, so it trains anew.
            self.store.set_status(run_id, QUEUED)
            self._submit(run_id)
            logger.info("search %s: run %s has no checkpoint and starts again", self.search_id, run_id)

    def _submit(self, run_id: str, *, resume: bool = False) -> None:
        self._current_run = run_id
        self.manager.submit(run_id, resume=resume)
        if self._stop_event.is_set():
            # A stop that came between creating the run and queueing it.
            self.manager.stop(run_id)

    def _wait_while_stopping(self, run_id: str) -> RunRecord | None:
        while True:
            try:
                record = self.store.get_run(run_id)
            except KeyError:
                return None
            if record.status != STOPPING or self._stop_event.wait(POLL_SECONDS):
                return record

    def _wait(self, run_id: str) -> RunRecord | None:
        """Wait until the run has ended or the search is stopped."""
        while True:
            try:
                record = self.store.get_run(run_id)
            except KeyError:
                return None
            if record.status not in ACTIVE_STATUSES or self._stop_event.wait(POLL_SECONDS):
                return record

    def _tell(self, study: optuna.Study, number: int, record: RunRecord | None) -> None:
        metric = study.user_attrs["metric"]
        value = (record.metrics or {}).get(metric) if record is not None else None
        if record is not None and record.status in (COMPLETED, STOPPED) and value is not None:
            study.tell(number, float(value))
            logger.info("search %s: trial %d finished with %s = %.4g", self.search_id, number, metric, value)
        else:
            study.tell(number, state=TrialState.FAIL)
            logger.info("search %s: trial %d failed (run %s is %s)", self.search_id, number,
                        record.run_id if record else "?", record.status if record else "missing")


class SearchDrivers:
    """The drivers of one process, at most one per search."""

    def __init__(self, store: RunStore, manager) -> None:
        self.store = store
        self.manager = manager
        self._drivers: dict[str, SearchDriver] = {}
        self._lock = threading.Lock()

    def start(self, search_id: str) -> bool:
        """Start or resume a search; return False when its driver already runs or its budget is used."""
        if search_info(self.store, search_id).done:
            return False
        with self._lock:
            driver = self._drivers.get(search_id)
            if driver is not None and driver.is_alive():
                return False
            driver = self._drivers[search_id] = SearchDriver(self.store, self.manager, search_id)
        driver.start()
        return True

    def stop(self, search_id: str) -> bool:
        """Stop a search; return False when no driver of this process runs it."""
        with self._lock:
            driver = self._drivers.get(search_id)
        if driver is None or not driver.is_alive():
            return False
        driver.stop()
        return True

    def is_running(self, search_id: str) -> bool:
        with self._lock:
            driver = self._drivers.get(search_id)
        return driver is not None and driver.is_alive()

    def join(self, search_id: str, timeout: float | None = None) -> None:
        with self._lock:
            driver = self._drivers.get(search_id)
        if driver is not None:
            driver.join(timeout)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every driver and wait for its thread; used by tests and at exit."""
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            driver.stop()
        for driver in drivers:
            driver.join(timeout)


def search_summary(record: RunRecord) -> dict | None:
    """Return the search tag of a run, or None for a run outside any search."""
    sweep = record.summary.get("sweep")
    return sweep if sweep and sweep.get("kind") == SEARCH_KIND else None


def space_to_text(space: dict[str, BaseDistribution]) -> dict[str, str]:
    """Write a search space back as the texts ``parse_space`` reads."""
    return {name: ", ".join(str(value) for value in _range_ends(distribution)) for name, distribution in space.items()}

