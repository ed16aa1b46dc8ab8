import os
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.jobs import JobManager
from edutune_core.progress import curves, format_duration, progress_of
from edutune_core.runner import create_run
from edutune_core.runstore import COMPLETED, INTERRUPTED, QUEUED, RUNNING, STOPPED, STOPPING, RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping
from edutune_core.uploads import UploadStore


def new_run(store: RunStore, epochs: int = 2):
    return create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION),
                      TrainConfig.for_task(False, epochs=epochs), data_name="gradebook.csv")


def wait_for(store: RunStore, run_id: str, statuses: tuple[str, ...], timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get_run(run_id)
        if record.status in statuses:
            return record
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stayed {store.get_run(run_id).status}")


def test_points_and_events_survive_a_new_store(tmp_path):
    store = RunStore(tmp_path)
    record = new_run(store)
    store.add_points(record.run_id, "train", 1, 0.5, {"loss": 2.0, "learning_rate": 0.1})
    store.add_points(record.run_id, "train", 2, 1.0, {"loss": 1.0, "learning_rate": 0.05})
    store.add_points(record.run_id, "validation", 2, 1.0, {"loss": 1.5, "rmse": 3.0})
    store.add_event(record.run_id, "epoch_done", {"epoch": 1})

    reopened = RunStore(tmp_path)
    train, validation = curves(reopened.points(record.run_id))
    assert train["loss"].tolist() == [2.0, 1.0]
    assert validation["rmse"].tolist() == [3.0]
    assert [event["kind"] for event in reopened.events(record.run_id)] == ["epoch_done"]
    assert reopened.get_run(record.run_id).summary["rows_used"] == 200


def test_progress_estimates_time_left(tmp_path):
    store = RunStore(tmp_path)
    record = new_run(store)
    store.set_total_steps(record.run_id, 10)
    store.set_status(record.run_id, RUNNING)
    for step in range(1, 5):
        store.add_points(record.run_id, "train", step, step / 5, {"loss": 1.0 / step, "learning_rate": 0.1})
    train, _ = curves(store.points(record.run_id))
    train["wall_time"] = [100.0, 101.0, 102.0, 103.0]
    progress = progress_of(store.get_run(record.run_id), train, now=103.0)
    assert progress.step == 4
    assert progress.fraction == pytest.approx(0.4)
    assert progress.seconds_left == pytest.approx(6.0)
    assert progress.loss == pytest.approx(0.25)


def test_format_duration():
    assert format_duration(None) == "-"
    assert format_duration(65) == "1:05"
    assert format_duration(3725) == "1:02:05"


def test_run_of_dead_process_marked_interrupted(tmp_path):
    store = RunStore(tmp_path)
    record = new_run(store)
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)
    store.set_status(record.run_id, RUNNING)
    store._write("UPDATE runs SET pid = ? WHERE run_id = ?", (dead_pid, record.run_id))
    alive = new_run(store)
    store.set_status(alive.run_id, RUNNING)
    store._write("UPDATE runs SET pid = ? WHERE run_id = ?", (os.getppid(), alive.run_id))

    assert store.mark_orphans_interrupted() == [record.run_id]
    assert store.get_run(record.run_id).status == INTERRUPTED
    assert store.get_run(alive.run_id).status == RUNNING


def test_manager_runs_jobs_in_order(tmp_path):
    store = RunStore(tmp_path)
    manager = JobManager(store)
    try:
        first, second = new_run(store, epochs=30), new_run(store, epochs=2)
        manager.submit(first.run_id)
        manager.submit(second.run_id)
        wait_for(store, first.run_id, (RUNNING,))
        assert manager.queue_position(second.run_id) == 1
        assert store.get_run(second.run_id).status == QUEUED
        assert wait_for(store, first.run_id, (COMPLETED,)).metrics["rmse"] > 0
        assert wait_for(store, second.run_id, (COMPLETED,)).status == COMPLETED
        assert store.get_run(first.run_id).updated_at <= store.get_run(second.run_id).updated_at
    finally:
        manager.shutdown()


def test_manager_stops_running_and_cancels_queued(tmp_path):
    store = RunStore(tmp_path)
    manager = JobManager(store)
    try:
        running, waiting = new_run(store, epochs=1000), new_run(store)
        manager.submit(running.run_id)
        manager.submit(waiting.run_id)
        wait_for(store, running.run_id, (RUNNING,))
        assert manager.stop(waiting.run_id) is True
        assert manager.stop(running.run_id) is True
        stopped = wait_for(store, running.run_id, (STOPPED,))
        assert (stopped.run_dir / "model" / "edutune.json").exists()
        assert store.get_run(waiting.run_id).status == STOPPED
        assert not (store.get_run(waiting.run_id).run_dir / "model").exists()
        assert manager.stop("no-such-run") is False
    finally:
        manager.shutdown()


class LateStoppingStore(RunStore):
    """A store whose "stopping" write lands late: after the job has recorded its end, or after five seconds."""

    def __init__(self, root):
        super().__init__(root)
        self.ended = threading.Event()

    def set_status(self, run_id, status, **options):
        if status == STOPPING:
            self.ended.wait(5.0)
        super().set_status(run_id, status, **options)
        if status in (STOPPED, COMPLETED):
            self.ended.set()


def test_fast_stop_stays_stopped(tmp_path):
    """A fast job records "stopped" as soon as the stop event is set, and no later "stopping" overwrites it."""
    store = LateStoppingStore(tmp_path)
    manager = JobManager(store)
    try:
        record = new_run(store, epochs=1000)
        manager.submit(record.run_id)
        wait_for(store, record.run_id, (RUNNING,))
        assert manager.stop(record.run_id) is True
        wait_for(store, record.run_id, (STOPPED,))
        deadline = time.monotonic() + 30
        while manager.is_managed(record.run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert store.get_run(record.run_id).status == STOPPED
    finally:
        manager.shutdown()


def test_status_write_only_from_active_statuses(tmp_path):
    store = RunStore(tmp_path)
    record = new_run(store)
    store.set_status(record.run_id, COMPLETED)
    store.set_status(record.run_id, STOPPING, only_from=(QUEUED, RUNNING))
    assert store.get_run(record.run_id).status == COMPLETED
    store.set_status(record.run_id, RUNNING)
    store.set_status(record.run_id, STOPPING, only_from=(QUEUED, RUNNING))
    assert store.get_run(record.run_id).status == STOPPING


def test_new_manager_marks_unfinished_runs_interrupted(tmp_path):
    store = RunStore(tmp_path)
    queued = new_run(store)
    JobManager(store).shutdown()
    assert store.get_run(queued.run_id).status == INTERRUPTED


def test_upload_store_keeps_recent_files(tmp_path):
    uploads = UploadStore(tmp_path)
    first = uploads.save(b"a,b\n1,2\n", "marks.csv")
    uploads.save(b"x\n1\n", "other.csv")
    again = uploads.save(b"a,b\n1,2\n", "marks.csv")
    assert again.upload_id == first.upload_id
    assert [item.file_name for item in UploadStore(tmp_path).recent()] == ["marks.csv", "other.csv"]
    assert again.path.read_bytes() == b"a,b\n1,2\n"


class UnreadableOnceStore(RunStore):
    """A store whose first read of one run fails, as SQLite does on a full disk."""

    def __init__(self, root, broken_run: str | None = None):
        super().__init__(root)
        self.broken_run = broken_run

    def get_run(self, run_id):
        if run_id == self.broken_run:
            self.broken_run = None
            raise sqlite3.OperationalError("disk I/O error")
        return super().get_run(run_id)


def test_worker_survives_unreadable_run(tmp_path):
    store = UnreadableOnceStore(tmp_path)
    manager = JobManager(store)
    try:
        first, second = new_run(store), new_run(store)
        store.broken_run = first.run_id
        manager.submit(first.run_id)
        manager.submit(second.run_id)
        assert wait_for(store, second.run_id, (COMPLETED,)).status == COMPLETED
        assert store.get_run(first.run_id).status == QUEUED
        assert not manager.is_managed(first.run_id)
    finally:
        manager.shutdown()
