"""The executor setting, without Ray: parsing, errors, and a local path that never imports Ray."""

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from edutune_core.executor import (AUTO, LOCAL, ClusterOptions, LocalExecutor, build_executor, parse_executor,
                                   split_address)
from edutune_core.i18n import ConfigError, EduTuneError
from edutune_core.jobs import JobManager
from edutune_core.runstore import RunStore


@pytest.mark.parametrize("value, expected", [
    (None, LOCAL), ("", LOCAL), ("  local ", LOCAL), ("LOCAL", LOCAL), ("auto", AUTO), ("Auto", AUTO),
    ("127.0.0.1:6379", "127.0.0.1:6379"), ("ray://head.example:10001", "ray://head.example:10001"),
    ("[::1]:6379", "[::1]:6379"),
])
def test_parse_executor_accepts(value, expected):
    assert parse_executor(value) == expected


@pytest.mark.parametrize("value", ["ray", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", "host:port",
                                   "http://host:80", "ray://", ":6379", "a b:1", "ray://user@host:1"])
def test_parse_executor_rejects(value):
    with pytest.raises(ConfigError) as raised:
        parse_executor(value)
    assert raised.value.key == "cluster.invalid_executor"
    assert value.strip() in raised.value.message("en")
    assert value.strip() in raised.value.message("zh")


def test_split_address():
    assert split_address("ray://127.0.0.1:10001") == ("127.0.0.1", 10001)
    assert split_address("[::1]:6379") == ("::1", 6379)
    assert split_address(AUTO) is None


def test_default_executor_is_local(monkeypatch, tmp_path):
    monkeypatch.delenv("EDUTUNE_EXECUTOR", raising=False)
    manager = JobManager(RunStore(tmp_path))
    try:
        assert isinstance(manager.executor, LocalExecutor)
        assert manager.executor.caption("en") == "Training runs on this machine."
        assert manager.executor.caption("zh") == "训练在本机上运行。"
    finally:
        manager.shutdown()


def test_invalid_executor_env_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv("EDUTUNE_EXECUTOR", "ray:/oops")
    with pytest.raises(ConfigError) as raised:
        JobManager(RunStore(tmp_path))
    assert raised.value.key == "cluster.invalid_executor"


def test_cluster_executor_without_ray(monkeypatch):
    # A None entry in sys.modules makes `import ray` raise ImportError, as without Ray.
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.delitem(sys.modules, "edutune_core.ray_executor", raising=False)
    with pytest.raises(EduTuneError) as raised:
        build_executor("auto")
    assert raised.value.key == "cluster.ray_missing"
    assert "requirements-cluster.txt" in raised.value.message("en")
    assert "requirements-cluster.txt" in raised.value.message("zh")


@pytest.mark.parametrize("values, setting", [
    ({"workers": 0}, "workers"), ({"workers": 2.5}, "workers"), ({"cpus_per_worker": 0}, "cpus_per_worker"),
    ({"gpus_per_worker": -1}, "gpus_per_worker"), ({"lr_scaling": "sqrt"}, "lr_scaling"),
])
def test_cluster_options_rejected(values, setting):
    with pytest.raises(ConfigError) as raised:
        ClusterOptions.from_dict(values).validate()
    assert raised.value.params["setting"] == setting


def test_cluster_options_from_env(monkeypatch):
    monkeypatch.setenv("EDUTUNE_RAY_WORKERS", "4")
    monkeypatch.setenv("EDUTUNE_RAY_CPUS_PER_WORKER", "2")
    options = ClusterOptions.from_env()
    assert options.workers == 4
    assert options.cpus_per_worker == 2.0
    monkeypatch.setenv("EDUTUNE_RAY_WORKERS", "many")
    with pytest.raises(ConfigError):
        ClusterOptions.from_env()


LOCAL_JOB = """
import sys, time
sys.path.insert(0, "tests")
from conftest import make_gradebook
import edutune_core
from edutune_core.config import TrainConfig
from edutune_core.jobs import JobManager
from edutune_core.runner import create_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping

store = RunStore(sys.argv[1])
manager = JobManager(store)
record = create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION),
                    TrainConfig.for_task(False, epochs=1), data_name="gradebook.csv")
manager.submit(record.run_id)
while store.get_run(record.run_id).is_active:
    time.sleep(0.05)
manager.shutdown()
print(store.get_run(record.run_id).status, "ray" in sys.modules)
"""


def test_local_job_never_imports_ray(tmp_path, monkeypatch):
    monkeypatch.delenv("EDUTUNE_EXECUTOR", raising=False)
    finished = subprocess.run([sys.executable, "-c", LOCAL_JOB, str(tmp_path / "home")], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["completed", "False"]


@pytest.mark.parametrize("args, key_text", [
    (["--executor", "not an address"], 'The executor setting "not an address" is invalid'),
    (["--executor", "127.0.0.1:1"], "Cannot connect to the Ray cluster at 127.0.0.1:1"),
    (["--workers", "0"], "workers"),
])
def test_cli_rejects_bad_executor_settings(tmp_path, args, key_text):
    data = tmp_path / "gradebook.csv"
    data.write_text("hours,final\n1,50\n2,60\n", encoding="utf-8")
    finished = subprocess.run([sys.executable, "-m", "edutune_core", "train", "--data", str(data), "--target",
                               "final", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              env={**os.environ, "EDUTUNE_HOME": str(tmp_path / "home")})
    assert finished.returncode == 2
    assert key_text in finished.stderr
    # The settings are checked before a run is recorded.
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
