"""The Ray executor on a two-CPU Ray instance that this module starts on the loopback address."""

import os
import signal
import socket
import time

import pytest

ray = pytest.importorskip("ray")

from conftest import make_gradebook  # noqa: E402
from edutune_core.config import TrainConfig  # noqa: E402
from edutune_core.executor import WAITING_EVENT, waiting_message  # noqa: E402
from edutune_core.i18n import EduTuneError  # noqa: E402
from edutune_core.jobs import JobManager  # noqa: E402
from edutune_core.predict import Predictor  # noqa: E402
from edutune_core.progress import curves  # noqa: E402
from edutune_core.runner import create_run, prepare_resume  # noqa: E402
from edutune_core.runstore import COMPLETED, INTERRUPTED, QUEUED, RUNNING, STOPPED, RunStore  # noqa: E402
from edutune_core.tasks import REGRESSION, ColumnMapping  # noqa: E402


@pytest.fixture(scope="module")
def ray_instance():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


@pytest.fixture
def cluster(ray_instance, tmp_path):
    store = RunStore(tmp_path / "home")
    manager = JobManager(store, executor="auto")
    yield store, manager
    manager.shutdown(timeout=60)


def new_run(store: RunStore, epochs: int, cluster: dict | None = None, **settings):
    config = TrainConfig.for_task(False, epochs=epochs, **settings)
    return create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION), config,
                      data_name="gradebook.csv", cluster=cluster)


def wait_for(store: RunStore, run_id: str, statuses: tuple[str, ...], timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        record = store.get_run(run_id)
        if record.status in statuses:
            return record
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stayed {store.get_run(run_id).status}; events: "
                         f"{[event['kind'] for event in store.events(run_id)]}")


def wait_for_event(store: RunStore, run_id: str, kind: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in store.events(run_id):
            if event["kind"] == kind:
                return event
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} recorded no {kind} event; status {store.get_run(run_id).status}")


def train_steps(store: RunStore, run_id: str) -> list[int]:
    return [point["step"] for point in store.points(run_id) if point["split"] == "train" and point["name"] == "loss"]


def test_ray_job_matches_local_history(cluster, tmp_path):
    store, manager = cluster
    remote = new_run(store, epochs=3)
    manager.submit(remote.run_id)
    finished = wait_for(store, remote.run_id, (COMPLETED, "failed"))
    assert finished.status == COMPLETED, finished.error

    local_store = RunStore(tmp_path / "local-home")
    local_manager = JobManager(local_store, executor="local")
    try:
        local = new_run(local_store, epochs=3)
        local_manager.submit(local.run_id)
        wait_for(local_store, local.run_id, (COMPLETED,))
    finally:
        local_manager.shutdown()

    remote_train, remote_validation = curves(store.points(remote.run_id))
    local_train, local_validation = curves(local_store.points(local.run_id))
    assert train_steps(store, remote.run_id) == list(range(1, finished.total_steps + 1))
    assert len(store.points(remote.run_id)) == len(local_store.points(local.run_id))
    assert remote_train["loss"].tolist() == pytest.approx(local_train["loss"].tolist(), rel=1e-4)
    assert remote_validation["loss"].tolist() == pytest.approx(local_validation["loss"].tolist(), rel=1e-4)
    assert finished.metrics["rmse"] == pytest.approx(local_store.get_run(local.run_id).metrics["rmse"], rel=1e-4)
    kinds = [event["kind"] for event in store.events(remote.run_id)]
    assert "cluster_started" in kinds
    assert kinds[-2:] == ["finished", "saved"]
    assert finished.summary["executor"]["workers"] == 1
    assert (finished.run_dir / "model" / "edutune.json").exists()


def test_ray_job_stops_and_resumes(cluster):
    store, manager = cluster
    record = new_run(store, epochs=150)
    manager.submit(record.run_id)
    wait_for_event(store, record.run_id, "checkpoint_saved")
    assert store.get_run(record.run_id).status == RUNNING
    assert manager.stop(record.run_id) is True
    stopped = wait_for(store, record.run_id, (STOPPED, "failed"))
    assert stopped.status == STOPPED, stopped.error
    assert (stopped.run_dir / "model" / "edutune.json").exists()
    steps_at_stop = len(train_steps(store, record.run_id))
    assert 0 < steps_at_stop < stopped.total_steps

    prepare_resume(store, record.run_id)
    manager.submit(record.run_id, resume=True)
    resumed = wait_for(store, record.run_id, (COMPLETED, "failed"), timeout=180)
    assert resumed.status == COMPLETED, resumed.error
    # Points after the checkpoint were dropped on resume, so every step appears once.
    assert train_steps(store, record.run_id) == list(range(1, resumed.total_steps + 1))
    assert "resumed" in [event["kind"] for event in store.events(record.run_id)]


def test_ray_job_waits_for_resources_and_cancels(cluster):
    store, manager = cluster
    # Three CPUs per worker never fit on this two-CPU instance, so the job stays queued in Ray.
    record = new_run(store, epochs=2, cluster={"cpus_per_worker": 3})
    manager.submit(record.run_id)
    event = wait_for_event(store, record.run_id, WAITING_EVENT, timeout=30)
    assert event["detail"]["requested"]["cpus_per_worker"] == 3
    assert event["detail"]["free"]["CPU"] == 2
    assert store.get_run(record.run_id).status == QUEUED
    english = waiting_message(store.get_run(record.run_id), store.events(record.run_id), "en")
    chinese = waiting_message(store.get_run(record.run_id), store.events(record.run_id), "zh")
    assert "3 CPU" in english
    assert "Free on the cluster: 2 CPU" in english
    assert "集群当前空闲" in chinese
    assert "Runs waiting for resources: 1" in manager.executor.caption("en")

    assert manager.stop(record.run_id) is True
    cancelled = wait_for(store, record.run_id, (STOPPED,), timeout=30)
    assert "cancelled" in [event["kind"] for event in store.events(record.run_id)]
    assert not (cancelled.run_dir / "model").exists()
    assert waiting_message(cancelled, store.events(record.run_id), "en") is None


def test_killed_worker_leaves_run_interrupted(cluster):
    store, manager = cluster
    record = new_run(store, epochs=150)
    manager.submit(record.run_id)
    started = wait_for_event(store, record.run_id, "cluster_started")
    wait_for_event(store, record.run_id, "checkpoint_saved")
    # The worker process belongs to the Ray instance this module started.
    os.kill(started["detail"]["pid"], signal.SIGKILL)
    interrupted = wait_for(store, record.run_id, (INTERRUPTED, COMPLETED, "failed"), timeout=60)
    assert interrupted.status == INTERRUPTED
    assert store.events(record.run_id)[-1]["detail"]["reason"] == "worker_lost"
    assert len(train_steps(store, record.run_id)) > 0

    prepare_resume(store, record.run_id)
    manager.submit(record.run_id, resume=True)
    resumed = wait_for(store, record.run_id, (COMPLETED, "failed"), timeout=180)
    assert resumed.status == COMPLETED, resumed.error
    assert train_steps(store, record.run_id) == list(range(1, resumed.total_steps + 1))


def test_two_worker_data_parallel_run(cluster):
    store, manager = cluster
    record = new_run(store, epochs=2, cluster={"workers": 2}, batch_size=16)
    manager.submit(record.run_id)
    finished = wait_for(store, record.run_id, (COMPLETED, "failed", INTERRUPTED), timeout=240)
    assert finished.status == COMPLETED, (finished.error, store.events(record.run_id)[-1])
    detail = finished.summary["data_parallel"]
    assert detail["workers"] == 2
    assert detail["effective_batch_size"] == 32
    assert detail["learning_rate_scale"] == 2.0
    assert detail["learning_rate"] == pytest.approx(2 * 1e-3)
    # 160 training rows in steps of 32 rows: 5 steps per epoch.
    assert finished.total_steps == 10
    assert train_steps(store, record.run_id) == list(range(1, 11))

    predictor = Predictor(finished.run_dir)
    predicted = predictor.with_predictions(make_gradebook(rows=5, seed=3).drop(columns=["final"]))
    assert len(predicted) == 5


def test_unreachable_cluster_address_fails_fast(ray_instance, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(EduTuneError) as raised:
        JobManager(RunStore(tmp_path / "home"), executor=f"127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert raised.value.key == "cluster.unreachable"
    assert f"127.0.0.1:{port}" in raised.value.message("en")
    assert "无法连接" in raised.value.message("zh")
