"""Faults on a real server: killed while training or while writing a checkpoint, a full or read-only disk.

The kill tests start `streamlit run app.py` on loopback, train through Chromium, kill
the server with SIGKILL and start it again on the same EDUTUNE_HOME. The disk tests
mount a small or read-only tmpfs inside an unprivileged user and mount namespace
(``unshare -r -m``), so they are skipped where the kernel does not allow one.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import shlex
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import ROOT, make_gradebook
from edutune_core.checkpoint import find_checkpoint
from edutune_core.config import TrainConfig
from edutune_core.jobs import JobManager
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run, prepare_resume
from edutune_core.runstore import COMPLETED, INTERRUPTED, RUNNING, STOPPED, RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping
from test_browser import (  # noqa: F401 - chromium is a fixture
    CHROMIUM,
    SAMPLES,
    Steps,
    choose_option,
    chromium,
    launch_server,
    loss_points,
    open_page,
    set_number,
    status_line,
    upload,
    wait_for_more_points,
    wait_until,
)

RUN_NAME = "gradebook_en.csv · final_score"
browser_only = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium package is not installed")


# Watching a folder with inotify, so a kill lands while a checkpoint is being written


class CreationWatch:
    """Report files and folders created in watched folders, through Linux inotify."""

    IN_CREATE = 0x100

    def __init__(self) -> None:
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        self.folders: dict[int, Path] = {}

    def add(self, folder: Path) -> None:
        descriptor = self.libc.inotify_add_watch(self.fd, str(folder).encode(), self.IN_CREATE)
        if descriptor < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch failed for {folder}")
        self.folders[descriptor] = folder

    def wait(self, timeout: float) -> list[Path]:
        """Return the paths created since the last call, waiting up to ``timeout`` seconds for one."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        data = os.read(self.fd, 65536)
        created, offset = [], 0
        while offset < len(data):
            descriptor, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            name = data[offset + 16:offset + 16 + length].rstrip(b"\0").decode()
            created.append(self.folders[descriptor] / name)
            offset += 16 + length
        return created

    def close(self) -> None:
        os.close(self.fd)


def kill_during_checkpoint(watch: CreationWatch, runs_dir: Path, process: subprocess.Popen, nth: int,
                           timeout: float = 180) -> Path:
    """SIGKILL ``process`` as soon as it starts writing its ``nth`` checkpoint; return the run folder."""
    deadline = time.monotonic() + timeout
    run_dir, writes = None, 0
    while time.monotonic() < deadline:
        for path in watch.wait(timeout=1.0):
            if run_dir is None and path.parent == runs_dir:
                run_dir = path
                watch.add(run_dir)
            elif path == (run_dir / "checkpoint.tmp" if run_dir else None):
                writes += 1
                if writes == nth:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=30)
                    return run_dir
    raise AssertionError(f"the server wrote {writes} checkpoints in {timeout} s, fewer than {nth}")


# Driving the server


def start_gradebook_run(page, epochs: int) -> None:
    """Upload the English gradebook and start a run with one held-out split (no cross-validation)."""
    page.get_by_role("heading", name="Data", exact=True).wait_for()
    upload(page, "gradebook_en.csv", "File", "Continue to training")
    page.get_by_role("link", name="Continue to training").click()
    page.get_by_role("heading", name="Train", exact=True).wait_for()
    set_number(page, "Epochs", epochs)
    page.get_by_text("Advanced settings").click()
    choose_option(page, "Cross-validation folds", "-")
    page.get_by_role("button", name="Start training").click()
    status_line(page, RUN_NAME, "running").wait_for()


def recorded_loss_points(store: RunStore, run_id: str) -> list[tuple[str, int]]:
    return [(point["split"], point["step"]) for point in store.points(run_id) if point["name"] == "loss"]


def check_interrupted_page(page, store: RunStore, run_id: str) -> None:
    """The Train page shows the interrupted run, the warning, Resume, and every recorded loss point."""
    status_line(page, RUN_NAME, "interrupted").wait_for()
    page.get_by_text("This run was interrupted: the server stopped while it was training.").wait_for()
    page.get_by_role("button", name="Resume").wait_for()
    expected = len(recorded_loss_points(store, run_id))
    wait_until(lambda: loss_points(page) == expected, f"{expected} loss points on the chart", timeout=30)


def check_finished_cleanly(store: RunStore, run_id: str) -> None:
    record = store.get_run(run_id)
    assert record.status == COMPLETED, record.error
    steps = [step for split, step in recorded_loss_points(store, run_id) if split == "train"]
    assert steps == list(range(1, record.total_steps + 1))
    assert not (record.run_dir / "checkpoint.tmp").exists()
    assert find_checkpoint(record.run_dir) is not None
    rows = pd.read_csv(SAMPLES / "gradebook_en.csv").head(5)
    assert len(Predictor(record.run_dir).predict_frame(rows).values) == 5


@browser_only
def test_server_killed_mid_training_resumes(chromium, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with launch_server(home) as (base, process):
        page = open_page(chromium, f"{base}/data", "en-US")
        step = Steps(page, "kill_mid_training")
        with step("train_two_epochs"):
            start_gradebook_run(page, epochs=25)
            store = RunStore(home)
            run_id = store.list_runs()[0].run_id
            wait_until(lambda: [split for split, _ in recorded_loss_points(store, run_id)].count("validation") >= 2,
                       "two validation points")
        with step("kill_server"):
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
            killed_at = recorded_loss_points(store, run_id)
            assert store.get_run(run_id).status == RUNNING
        page.context.close()

    with launch_server(home) as (base, _):
        page = open_page(chromium, f"{base}/train", "en-US")
        step.page = page
        with step("restarted_shows_interrupted"):
            check_interrupted_page(page, store, run_id)
            assert store.get_run(run_id).status == INTERRUPTED
            assert recorded_loss_points(store, run_id) == killed_at
        with step("resume_finishes"):
            page.get_by_role("button", name="Resume").click()
            status_line(page, RUN_NAME, "completed").wait_for(timeout=240_000)
            check_finished_cleanly(store, run_id)
        page.context.close()


@browser_only
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="watching folders needs Linux inotify")
def test_server_killed_during_checkpoint_write(chromium, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # A table checkpoint takes a few milliseconds to write. The server runs at the lowest
    # priority, so that the test process wakes up and kills it before the write completes.
    with launch_server(home, wrapper=lambda command: ["nice", "-n", "19", *command]) as (base, process):
        page = open_page(chromium, f"{base}/data", "en-US")
        step = Steps(page, "kill_in_checkpoint")
        watch = CreationWatch()
        try:
            with step("kill_while_writing_third_checkpoint"):
                page.get_by_role("heading", name="Data", exact=True).wait_for()
                watch.add(home / "runs")
                start_gradebook_run(page, epochs=25)
                run_dir = kill_during_checkpoint(watch, home / "runs", process, nth=3)
        finally:
            watch.close()
        page.context.close()

    partial = run_dir / "checkpoint.tmp"
    assert partial.is_dir()
    assert not (partial / "progress.json").exists(), "the kill came after the checkpoint was complete"
    assert find_checkpoint(run_dir) == run_dir / "checkpoint"

    store = RunStore(home)
    run_id = next(record.run_id for record in store.list_runs() if record.run_dir == run_dir.resolve())
    with launch_server(home) as (base, _):
        page = open_page(chromium, f"{base}/train", "en-US")
        step.page = page
        with step("restarted_shows_interrupted"):
            check_interrupted_page(page, store, run_id)
        with step("resume_finishes"):
            page.get_by_role("button", name="Resume").click()
            status_line(page, RUN_NAME, "completed").wait_for(timeout=240_000)
            check_finished_cleanly(store, run_id)
        page.context.close()


# Checkpoint states after a crash, without a server


def stopped_run(store: RunStore):
    """Train a table run until its second checkpoint, then stop it, as the Stop button does."""
    record = create_run(store, make_gradebook(120), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=6, batch_size=16), data_name="gradebook.csv")
    stop = threading.Event()

    def stop_after_two_epochs() -> None:
        while len([p for p in store.points(record.run_id) if p["split"] == "validation"]) < 2:
            time.sleep(0.01)
        stop.set()

    threading.Thread(target=stop_after_two_epochs, daemon=True).start()
    assert execute_run(store, record.run_id, stop).status == STOPPED
    return store.get_run(record.run_id)


def resume_to_end(store: RunStore, run_id: str):
    prepare_resume(store, run_id)
    return execute_run(store, run_id, resume=True)


def test_partial_checkpoint_folder_is_ignored(tmp_path):
    store = RunStore(tmp_path / "home")
    record = stopped_run(store)
    partial = record.run_dir / "checkpoint.tmp"
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"\x00" * 100)
    assert find_checkpoint(record.run_dir) == record.run_dir / "checkpoint"

    finished = resume_to_end(store, record.run_id)
    assert finished.status == COMPLETED, finished.error
    assert sorted(path.name for path in record.run_dir.glob("checkpoint*")) == ["checkpoint"]


def test_crash_between_renames_uses_old_checkpoint(tmp_path):
    store = RunStore(tmp_path / "home")
    record = stopped_run(store)
    # The state after write_checkpoint renamed checkpoint to checkpoint.old and before it
    # renamed checkpoint.tmp to checkpoint: a half-written new one and the previous one.
    (record.run_dir / "checkpoint").rename(record.run_dir / "checkpoint.old")
    (record.run_dir / "checkpoint.tmp").mkdir()
    assert find_checkpoint(record.run_dir) == record.run_dir / "checkpoint.old"

    finished = resume_to_end(store, record.run_id)
    assert finished.status == COMPLETED, finished.error
    assert sorted(path.name for path in record.run_dir.glob("checkpoint*")) == ["checkpoint"]


def test_killed_process_run_marked_interrupted(tmp_path):
    """A run whose process died is interrupted for the next job manager, with its points kept."""
    store = RunStore(tmp_path / "home")
    record = stopped_run(store)
    points = store.points(record.run_id)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    store.set_status(record.run_id, RUNNING)
    with contextlib.closing(sqlite3.connect(store.db_path)) as connection, connection:
        connection.execute("UPDATE runs SET pid = ? WHERE run_id = ?", (dead.pid, record.run_id))
    manager = JobManager(RunStore(tmp_path / "home"))
    try:
        assert store.get_run(record.run_id).status == INTERRUPTED
        assert store.points(record.run_id) == points
    finally:
        manager.shutdown()


# A full or read-only disk, on a real tmpfs inside an unprivileged mount namespace


def namespaces_allowed() -> bool:
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-r", "-m", "true"], capture_output=True).returncode == 0


needs_namespace = pytest.mark.skipif(not namespaces_allowed(), reason="unshare -r -m is not allowed on this kernel")
CREATE_STORE = f"{shlex.quote(sys.executable)} -c 'import sys; from edutune_core.runstore import RunStore; RunStore(sys.argv[1])'"


def on_tmpfs(home: Path, size: str, then: str = ""):
    """Return a ``launch_server`` wrapper that mounts a tmpfs of ``size`` on ``home`` and runs ``then`` first."""
    def wrap(command: list[str]) -> list[str]:
        script = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(home))}"
        if then:
            script += f" && {then}"
        return ["unshare", "-r", "-m", "sh", "-c", f"{script} && exec {shlex.join(command)}"]
    return wrap


@browser_only
@needs_namespace
@pytest.mark.parametrize("case, size, then, reason", [
    ("full_disk", "64k", "dd if=/dev/zero of={home}/filler bs=1k count=100 2>/dev/null; true",
     "database or disk is full"),
    ("read_only_empty", "1m", "mount -o remount,ro {home}", "Read-only file system"),
    ("read_only_store", "1m", CREATE_STORE + " {home} && mount -o remount,ro {home}", "unable to open database file"),
], ids=["full_disk", "read_only_empty", "read_only_store"])
def test_unwritable_data_folder_shows_message(chromium, tmp_path, case, size, then, reason):
    home = tmp_path / "home"
    home.mkdir()
    wrapper = on_tmpfs(home, size, then.format(home=shlex.quote(str(home))))
    with launch_server(home, wrapper=wrapper) as (base, process):
        for path, locale, expected in (("history", "en-US", f'EduTune cannot write to its data folder "{home}": {reason}.'),
                                       ("", "zh-CN", f"EduTune 无法写入数据文件夹“{home}”")):
            page = open_page(chromium, f"{base}/{path}", locale)
            step = Steps(page, f"disk_{case}_{locale}")
            with step("message"):
                page.get_by_text(expected).wait_for()
                assert page.get_by_text("This app has encountered an error").count() == 0
            page.context.close()
        assert process.poll() is None


@browser_only
@needs_namespace
def test_low_disk_space_warns(chromium, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with launch_server(home, wrapper=on_tmpfs(home, "4m")) as (base, _):
        page = open_page(chromium, f"{base}/data", "en-US")
        with Steps(page, "disk_low_space")("warning"):
            page.get_by_text(f"The disk that holds EduTune's data folder \"{home}\" has only").wait_for()
            page.get_by_role("heading", name="Data", exact=True).wait_for()
        page.context.close()


FULL_DURING_TRAINING = """
import json, os, sys, time
from pathlib import Path
import numpy as np
import pandas as pd
sys.path.insert(0, "tests")
from conftest import ROOT, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.jobs import JobManager
from edutune_core.runner import create_run
from edutune_core.runstore import ACTIVE_STATUSES, RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping

home = Path(sys.argv[1])
ballast = home / "ballast"
store = RunStore(home)
manager = JobManager(store)

def fill_disk(keep_bytes):
    # Leave only keep_bytes free, after the run's data snapshot is written.
    free = os.statvfs(home).f_bavail * os.statvfs(home).f_frsize
    ballast.write_bytes(bytes(max(free - keep_bytes, 0)))

def wide_gradebook():
    # 400 extra score columns make the table network's checkpoint (about 470 KB) larger
    # than the space left, while the run store still has room to record the failure.
    frame = make_gradebook(120)
    extra = np.random.default_rng(0).integers(0, 10, size=(120, 400))
    return pd.concat([frame, pd.DataFrame(extra, columns=[f"q{index}" for index in range(400)])], axis=1)

def train(epochs, full):
    frame = wide_gradebook() if full else make_gradebook(120)
    record = create_run(store, frame, ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=epochs, batch_size=16), data_name="gradebook.csv")
    if full:
        fill_disk(200 * 1024)
    manager.submit(record.run_id)
    deadline = time.monotonic() + 60
    while store.get_run(record.run_id).status in ACTIVE_STATUSES and time.monotonic() < deadline:
        time.sleep(0.1)
    record = store.get_run(record.run_id)
    return {"status": record.status, "error": record.error}

first = train(3, full=True)
ballast.unlink()
print(json.dumps({"first": first, "second": train(1, full=False)}), flush=True)
"""


@needs_namespace
def test_full_disk_during_training_is_recorded(tmp_path):
    """A run that fills the disk is recorded as failed with the reason, and the next run trains once space is free."""
    home = tmp_path / "home"
    home.mkdir()
    script = f"mount -t tmpfs -o size=1200k tmpfs {shlex.quote(str(home))} && exec {shlex.quote(sys.executable)} -c \"$0\" {shlex.quote(str(home))}"
    finished = subprocess.run(["unshare", "-r", "-m", "sh", "-c", script, FULL_DURING_TRAINING], cwd=ROOT,
                              capture_output=True, text=True, timeout=240)
    lines = finished.stdout.strip().splitlines()
    assert lines, f"the process ended with code {finished.returncode}:\n{finished.stderr[-1500:]}"
    result = json.loads(lines[-1])
    assert result["first"]["status"] == "failed"
    assert "No space left on device" in json.dumps(result["first"]["error"])
    assert result["second"]["status"] == "completed"
