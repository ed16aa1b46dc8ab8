"""Shared fixtures: a private data folder per test, tiny models and small tables."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Tests never reach a model hub: every model is bundled or built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


# Every JobManager made in this process. Pages keep theirs in Streamlit's resource cache,
# which outlives the test, so a run a page test started would otherwise train on in the
# background and change the timing and the random numbers of the tests after it.
_JOB_MANAGERS: list[weakref.ref] = []


@pytest.fixture(autouse=True, scope="session")
def _track_job_managers():
    from edutune_core.jobs import JobManager

    original = JobManager.__init__

    def record(self, *args, **kwargs):
        original(self, *args, **kwargs)
        _JOB_MANAGERS.append(weakref.ref(self))

    JobManager.__init__ = record
    yield
    JobManager.__init__ = original


@pytest.fixture
def edutune_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "edutune-home"
    monkeypatch.setenv("EDUTUNE_HOME", str(home))
    yield home
    for reference in _JOB_MANAGERS:
        manager = reference()
        if manager is not None and Path(manager.store.home).resolve() == home.resolve():
            manager.shutdown(timeout=60)


@pytest.fixture(scope="module")
def users_file(tmp_path_factory):
    """A users file with two teachers; hashing is slow on purpose, so it is made once per module."""
    from edutune_core.security import hash_password, write_user

    path = tmp_path_factory.mktemp("users") / "users.txt"
    write_user(path, "alice", hash_password("alice-password"))
    write_user(path, "王老师", hash_password("wang-password"))
    return path


@pytest.fixture
def signed_in_server(users_file, edutune_home, monkeypatch):
    """Serve the pages on a network address with the users file, and return a sign-in helper."""
    from streamlit import config as streamlit_config
    from streamlit.testing.v1 import AppTest

    from edutune_core import security

    original = streamlit_config.get_option("server.address")
    streamlit_config.set_option("server.address", "192.168.1.20")
    monkeypatch.setenv("EDUTUNE_USERS_FILE", str(users_file))
    monkeypatch.setattr(security, "SERVER_FAILURES", security.FailureWindow())

    def sign_in(name: str, password: str, page: str = "pages/history.py", lang: str = "en") -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["lang"] = lang
        at.run()
        at.switch_page(page).run()
        at.text_input(key="login_name").input(name)
        at.text_input(key="login_password").input(password)
        at.button[0].click().run()
        assert not at.exception, at.exception
        return at

    yield sign_in
    streamlit_config.set_option("server.address", original)


@pytest.fixture(scope="session")
def tiny_text_model(tmp_path_factory) -> Path:
    """A two-layer BERT with random weights and the bundled model's tokenizer, saved as a folder."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from edutune_core.models import bundled_model_path

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertForSequenceClassification(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(bundled_model_path()).save_pretrained(folder)
    return folder


def make_essays(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    """Short essays whose score (1-4) follows their length and their words."""
    rng = np.random.default_rng(seed)
    good = ["clear", "argument", "because", "evidence", "however", "therefore", "example", "conclusion"]
    weak = ["thing", "stuff", "like", "good", "bad", "very"]
    records = []
    for index in range(rows):
        score = int(rng.integers(1, 5))
        words = list(rng.choice(good, size=score * 4)) + list(rng.choice(weak, size=(5 - score) * 3))
        rng.shuffle(words)
        records.append({"essay_id": f"E{index:03d}", "essay": " ".join(words), "score": score})
    return pd.DataFrame(records)


def make_gradebook(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    """A gradebook whose final grade follows study hours and absences."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "student_id": [f"S{index:04d}" for index in range(rows)],
        "hours": rng.uniform(0, 10, rows).round(1),
        "absences": rng.integers(0, 20, rows),
        "class": rng.choice(["7A", "7B", "7C"], rows),
    })
    frame["final"] = (50 + 4 * frame["hours"] - 1.5 * frame["absences"] + rng.normal(0, 4, rows)).round().astype(int)
    return frame


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """A real `streamlit run app.py` on a free loopback port, with its own data folder."""
    port = free_port()
    environment = {**os.environ, "EDUTUNE_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port)],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=20)


def wait_for_server(base: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{base}/_stcore/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert process.poll() is None, process.stdout.read()
        assert time.monotonic() < deadline, f"server did not start within {timeout} s"
        time.sleep(0.5)
