"""The run store: every run's settings, status, metric points and events in SQLite.

Each run also has a folder (data snapshot, model, metrics). The database is the one
source of truth that every page, browser session, command-line call and server restart
reads, so a refresh or a restart shows exactly what was recorded. Writes happen as the
run goes, one short transaction each, and the database runs in WAL mode so readers
never block the training thread.

With sign-in by user name, each run has an owner. A ``RunStore`` returned by
``for_user`` lists and opens only that user's runs and the runs shared with everyone,
and records new runs as that user's. The job manager and the command line use the
unrestricted store.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from edutune_core.i18n import EduTuneError

logger = logging.getLogger(__name__)

QUEUED, RUNNING, STOPPING = "queued", "running", "stopping"
COMPLETED, STOPPED, FAILED, INTERRUPTED = "completed", "stopped", "failed", "interrupted"
# A deleted run keeps its row (name, settings, curves), so the history can show that it
# was deleted. Its folder with the data snapshot, weights and checkpoint is gone.
DELETED = "deleted"
# Files and folders a run writes into its folder (see runner, checkpoint, training, evaluation and
# ray_executor, whose TorchTrainer writes ray_train).
_RUN_FILES = ("train_data.parquet", "validation_data.parquet", "model", "checkpoint", "checkpoint.tmp",
              "checkpoint.old", "metrics.json", "validation_predictions.csv", "ray_train")
ACTIVE_STATUSES = (QUEUED, RUNNING, STOPPING)
FINAL_STATUSES = (COMPLETED, STOPPED, FAILED, INTERRUPTED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    task TEXT NOT NULL,
    model TEXT NOT NULL,
    data_name TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    pid INTEGER,
    total_steps INTEGER,
    config_json TEXT NOT NULL,
    summary_json TEXT NOT NULL,
    metrics_json TEXT,
    error_json TEXT,
    owner TEXT,
    shared INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS points (
    run_id TEXT NOT NULL,
    split TEXT NOT NULL,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    wall_time REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS points_by_run ON points (run_id, step);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    wall_time REAL NOT NULL,
    kind TEXT NOT NULL,
    detail_json TEXT NOT NULL
);
"""


def default_home() -> Path:
    """Return the data folder: ``$EDUTUNE_HOME``, else ``~/.edutune``."""
    return Path(os.environ.get("EDUTUNE_HOME") or Path.home() / ".edutune").expanduser()


@dataclass
class RunRecord:
    """One row of the runs table, with its JSON columns decoded."""

    run_id: str
    name: str
    created_at: float
    updated_at: float
    status: str
    task: str
    model: str
    data_name: str
    run_dir: Path
    pid: int | None
    total_steps: int | None
    config: dict
    summary: dict
    metrics: dict | None
    error: dict | None
    owner: str | None = None
    shared: bool = False

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class RunStore:
    """SQLite database plus one folder per run under ``home/runs``.

    Safe to share between threads: every call opens its own short-lived connection.

    Attributes:
        user: The signed-in user this store works for, or None for every run.
    """

    user: str | None = None

    def __init__(self, home: Path | str | None = None) -> None:
        """Open or create the store.

        Raises:
            EduTuneError: ``store.not_writable`` when the folder or the database cannot be
                created or written (read-only disk, full disk, a file in the way).
        """
        self.home = Path(home) if home is not None else default_home()
        self.runs_dir = self.home / "runs"
        self.db_path = self.home / "edutune.sqlite"
        try:
            self.runs_dir.mkdir(parents=True, exist_ok=True)
            with closing(self._connect()) as connection, connection:
                connection.execute("PRAGMA journal_mode=WAL")
                connection.executescript(_SCHEMA)
                _add_missing_columns(connection)
        except (OSError, sqlite3.Error) as error:
            reason = getattr(error, "strerror", None) or str(error)
            logger.error("cannot use the data folder %s: %s", self.home, reason)
            raise EduTuneError("store.not_writable", folder=str(self.home), reason=reason) from error

    def for_user(self, user: str | None) -> RunStore:
        """Return a store over the same database that shows ``user`` only their own and shared runs.

        ``None`` returns a store over every run, as for a server without user names.
        """
        view = copy.copy(self)
        view.user = user
        return view

    def can_see(self, record: RunRecord) -> bool:
        """Return True when this store's user may open ``record``: their own, shared, or no user set."""
        return self.user is None or record.owner == self.user or record.shared

    def can_change(self, record: RunRecord) -> bool:
        """Return True when this store's user may stop, resume, share or delete ``record``."""
        return self.user is None or record.owner == self.user

    def set_shared(self, run_id: str, shared: bool) -> None:
        """Share a run with every signed-in user, or stop sharing it.

        Raises:
            KeyError: This store's user cannot see a run with this id.
            PermissionError: The run belongs to another user.
        """
        record = self.get_run(run_id)
        if not self.can_change(record):
            raise PermissionError(f"run {run_id} belongs to another user")
        self._write("UPDATE runs SET shared = ?, updated_at = ? WHERE run_id = ?", (int(shared), time.time(), run_id))
        self.add_event(run_id, "shared" if shared else "unshared", {"user": self.user})

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.db_path, timeout=30)
        connection.row_factory = sqlite3.Row
        return connection

    def _write(self, sql: str, parameters: tuple | list = ()) -> None:
        with closing(self._connect()) as connection, connection:
            connection.execute(sql, parameters)

    def create_run(self, *, name: str, task: str, model: str, data_name: str, config: dict,
                   summary: dict, run_dir: Path | str | None = None) -> RunRecord:
        """Record a new queued run and create its folder."""
        run_id = time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        folder = Path(run_dir) if run_dir is not None else self.runs_dir / run_id
        folder.mkdir(parents=True, exist_ok=True)
        now = time.time()
        self._write(
            "INSERT INTO runs (run_id, name, created_at, updated_at, status, task, model, data_name,"
            " run_dir, config_json, summary_json, owner) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run_id, name, now, now, QUEUED, task, model, data_name, str(folder.resolve()),
             json.dumps(config), json.dumps(summary, default=str), self.user),
        )
        logger.info("created run %s (%s, %s) in %s", run_id, task, model, folder)
        return self.get_run(run_id)

    def set_status(self, run_id: str, status: str, *, error: dict | None = None,
                   only_from: tuple[str, ...] | None = None) -> None:
        """Record a run's status; with ``only_from``, only while the run has one of those statuses.

        The check and the write are one statement, so a job thread that records the end
        of its run at the same moment cannot have its status overwritten.
        """
        pid = os.getpid() if status == RUNNING else None
        sql = "UPDATE runs SET status = ?, updated_at = ?, pid = COALESCE(?, pid), error_json = ? WHERE run_id = ?"
        params: tuple = (status, time.time(), pid, json.dumps(error) if error else None, run_id)
        if only_from is not None:
            sql += f" AND status IN ({', '.join('?' * len(only_from))})"
            params += tuple(only_from)
        self._write(sql, params)

    def set_total_steps(self, run_id: str, total_steps: int) -> None:
        self._write("UPDATE runs SET total_steps = ? WHERE run_id = ?", (total_steps, run_id))

    def set_metrics(self, run_id: str, metrics: dict) -> None:
        self._write("UPDATE runs SET metrics_json = ?, updated_at = ? WHERE run_id = ?",
                    (json.dumps(metrics), time.time(), run_id))

    def update_summary(self, run_id: str, values: dict) -> None:
        summary = self.get_run(run_id).summary | values
        self._write("UPDATE runs SET summary_json = ? WHERE run_id = ?", (json.dumps(summary, default=str), run_id))

    def add_points(self, run_id: str, split: str, step: int, epoch: float, values: dict[str, float]) -> None:
        """Record metric points of one step (``split="train"``) or one evaluation (``"validation"``)."""
        self.add_point_batch(run_id, [(split, step, epoch, values, None)])

    def add_point_batch(self, run_id: str, points: list[tuple[str, int, float, dict[str, float], float | None]]) -> None:
        """Record the points of many steps in one transaction.

        Each item is ``(split, step, epoch, values, wall_time)``; a ``wall_time`` of None
        records the current time.
        """
        now = time.time()
        rows = [(run_id, split, step, epoch, name, float(value), wall_time or now)
                for split, step, epoch, values, wall_time in points for name, value in values.items()]
        with closing(self._connect()) as connection, connection:
            connection.executemany("INSERT INTO points VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def delete_points_after(self, run_id: str, step: int) -> None:
        """Drop the points recorded after ``step``, before a run continues from a checkpoint there."""
        self._write("DELETE FROM points WHERE run_id = ? AND step > ?", (run_id, step))

    def add_event(self, run_id: str, kind: str, detail: dict | None = None) -> None:
        self._write("INSERT INTO events VALUES (?, ?, ?, ?)", (run_id, time.time(), kind, json.dumps(detail or {})))

    def get_run(self, run_id: str) -> RunRecord:
        """Return one run.

        Raises:
            KeyError: No run has this id, or it is another user's unshared run.
        """
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None or not self.can_see(_record(row)):
            raise KeyError(run_id)
        return _record(row)

    def list_runs(self) -> list[RunRecord]:
        """Return every run this store's user may see, newest first."""
        with closing(self._connect()) as connection:
            if self.user is None:
                rows = connection.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
            else:
                rows = connection.execute("SELECT * FROM runs WHERE owner = ? OR shared = 1 ORDER BY created_at DESC",
                                          (self.user,)).fetchall()
        return [_record(row) for row in rows]

    def points(self, run_id: str) -> list[dict]:
        """Return the metric points of a run in the order they were recorded."""
        with closing(self._connect()) as connection:
            rows = connection.execute(
                "SELECT split, step, epoch, name, value, wall_time FROM points WHERE run_id = ? ORDER BY rowid",
                (run_id,)).fetchall()
        return [dict(row) for row in rows]

    def events(self, run_id: str) -> list[dict]:
        with closing(self._connect()) as connection:
            rows = connection.execute("SELECT wall_time, kind, detail_json FROM events WHERE run_id = ? ORDER BY rowid",
                                      (run_id,)).fetchall()
        return [{"wall_time": row["wall_time"], "kind": row["kind"], "detail": json.loads(row["detail_json"])}
                for row in rows]

    def mark_orphans_interrupted(self, *, include_own_process: bool = False) -> list[str]:
        """Mark active runs whose process is gone as interrupted, and return their ids.

        A run recorded as running by a live process (a command-line job next to the
        server) is left alone. ``include_own_process`` also marks runs of this process,
        which a new job manager uses because it knows no thread of its own runs them.
        """
        orphans = []
        for record in self.list_runs():
            if not record.is_active:
                continue
            own = record.pid == os.getpid()
            if record.pid is None or (own and include_own_process) or (not own and not _process_alive(record.pid)):
                orphans.append(record.run_id)
        for run_id in orphans:
            self.set_status(run_id, INTERRUPTED)
            self.add_event(run_id, "interrupted", {})
            logger.info("marked run %s as interrupted: its process is gone", run_id)
        return orphans

    def delete_run(self, run_id: str) -> None:
        with closing(self._connect()) as connection, connection:
            for table in ("points", "events", "runs"):
                connection.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    def mark_deleted(self, run_id: str) -> RunRecord:
        """Delete a run's files (data snapshot, predictions, weights, checkpoint) and keep its row as deleted.

        A folder under ``runs_dir`` is removed whole. A folder elsewhere (a command-line
        ``--output``) may hold the user's own files, so only the names in ``_RUN_FILES``
        are removed from it, and the folder itself only when it is then empty. The
        metrics are cleared too, so pages that list runs with metrics skip it.

        Raises:
            KeyError: No run has this id.
            ValueError: The run is queued or training; stop it first.
            PermissionError: The run belongs to another user.
            OSError: A file could not be removed; the row is left unchanged.
        """
        record = self.get_run(run_id)
        if not self.can_change(record):
            raise PermissionError(f"run {run_id} belongs to another user")
        if record.is_active:
            raise ValueError(f"run {run_id} is {record.status}; stop it before deleting it")
        folder = record.run_dir
        if folder.exists() and folder.resolve().is_relative_to(self.runs_dir.resolve()):
            shutil.rmtree(folder)
        elif folder.exists():
            for name in _RUN_FILES:
                path = folder / name
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                elif path.exists() or path.is_symlink():
                    path.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()
        self._write("UPDATE runs SET status = ?, updated_at = ?, metrics_json = NULL WHERE run_id = ?",
                    (DELETED, time.time(), run_id))
        self.add_event(run_id, "deleted", {})
        logger.info("deleted the files of run %s in %s", run_id, folder)
        return self.get_run(run_id)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _add_missing_columns(connection: sqlite3.Connection) -> None:
    # Databases made before runs had owners lack these columns; their runs get no owner.
    present = {row["name"] for row in connection.execute("PRAGMA table_info(runs)")}
    if "owner" not in present:
        connection.execute("ALTER TABLE runs ADD COLUMN owner TEXT")
    if "shared" not in present:
        connection.execute("ALTER TABLE runs ADD COLUMN shared INTEGER NOT NULL DEFAULT 0")


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        run_id=row["run_id"], name=row["name"], created_at=row["created_at"], updated_at=row["updated_at"],
        status=row["status"], task=row["task"], model=row["model"], data_name=row["data_name"],
        run_dir=Path(row["run_dir"]), pid=row["pid"], total_steps=row["total_steps"],
        config=json.loads(row["config_json"]), summary=json.loads(row["summary_json"]),
        metrics=json.loads(row["metrics_json"]) if row["metrics_json"] else None,
        error=json.loads(row["error_json"]) if row["error_json"] else None,
        owner=row["owner"], shared=bool(row["shared"]),
    )
