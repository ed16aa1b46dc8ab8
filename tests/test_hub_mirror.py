"""Hub downloads through a hub mirror started here on 127.0.0.1.

The server speaks the part of the Hugging Face hub's HTTP interface that huggingface_hub
uses to download a model: ``/api/models/{id}`` (also with ``/revision/{rev}``), the tree
listing and ``/{id}/resolve/{rev}/{file}`` with the ``X-Repo-Commit`` and ``ETag``
headers. huggingface_hub reads ``HF_ENDPOINT`` when it is imported, so each load runs in
a fresh Python process with its own environment and cache.
"""

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from conftest import ROOT, free_port

REPO = "edutune-test/tiny-bert"
MISSING_REPO = "edutune-test/no-such-model"
PRIVATE_REPO = "edutune-test/private-model"
SILENT_REPO = "edutune-test/silent-model"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
HUB_TIMEOUT_SECONDS = 2


class MirrorHandler(BaseHTTPRequestHandler):
    """Serves the files of ``server.model_folder`` as the only revision of ``REPO``."""

    def log_message(self, format, *args) -> None:
        self.server.requests.append(f"{self.command} {unquote(urlsplit(self.path).path)}")

    def do_HEAD(self) -> None:
        self.answer(send_body=False)

    def do_GET(self) -> None:
        self.answer(send_body=True)

    def answer(self, send_body: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        if SILENT_REPO in path:
            # Accept the connection and never send a response, like a hub behind a broken proxy.
            self.server.closing.wait(60)
            return
        if PRIVATE_REPO in path:
            self.send_error_response(401, "RepoNotFound", "Invalid username or password.", send_body)
            return
        if REPO not in path:
            self.send_error_response(404, "RepoNotFound", "Repository not found", send_body)
            return
        files = {item.name: item for item in self.server.model_folder.iterdir() if item.is_file()}
        if path.startswith(f"/api/models/{REPO}/tree/"):
            listing = [{"type": "file", "path": name, "size": item.stat().st_size, "oid": COMMIT}
                       for name, item in files.items()]
            self.send_json(listing, send_body)
        elif path.startswith(f"/api/models/{REPO}"):
            self.send_json({"id": REPO, "modelId": REPO, "sha": COMMIT, "private": False,
                            "siblings": [{"rfilename": name} for name in files]}, send_body)
        elif path.startswith(f"/{REPO}/resolve/"):
            name = path.rsplit("/", 1)[-1]
            if name not in files:
                self.send_error_response(404, "EntryNotFound", "Entry not found", send_body)
                return
            content = files[name].read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(content)))
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("ETag", f'"{hashlib.sha256(content).hexdigest()}"')
            self.end_headers()
            if send_body:
                self.wfile.write(content)
        else:
            self.send_error_response(404, "RepoNotFound", "Repository not found", send_body)

    def send_json(self, value, send_body: bool) -> None:
        content = json.dumps(value).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if send_body:
            self.wfile.write(content)

    def send_error_response(self, status: int, code: str, message: str, send_body: bool) -> None:
        content = json.dumps({"error": message}).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        self.end_headers()
        if send_body:
            self.wfile.write(content)


@pytest.fixture(scope="module")
def mirror(tiny_text_model):
    server = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    server.daemon_threads = True
    server.model_folder = Path(tiny_text_model)
    server.requests = []
    server.closing = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()


# Loads each model id and prints one JSON line per id: the outcome and the seconds it took.
# With "train", the first id is fine-tuned for one epoch and its run predicts one text.
LOAD_SCRIPT = """
import json, sys, time
from edutune_core.i18n import EduTuneError
from edutune_core.models import load_text_model

for model_id in sys.argv[2:]:
    started = time.monotonic()
    try:
        if sys.argv[1] == "train":
            import pandas as pd
            from edutune_core.config import TrainConfig
            from edutune_core.predict import Predictor
            from edutune_core.runner import create_run, execute_run
            from edutune_core.runstore import RunStore
            from edutune_core.tasks import CLASSIFICATION, ColumnMapping

            store = RunStore()
            config = TrainConfig(model=model_id, epochs=1, batch_size=16, max_length=32, learning_rate=1e-3)
            mapping = ColumnMapping(target="score", text_column="essay", problem=CLASSIFICATION)
            essays = pd.DataFrame({"essay": [f"clear argument because evidence {i}" if i % 2 else f"stuff like good {i}"
                                             for i in range(40)], "score": [1 + i % 2 for i in range(40)]})
            record = create_run(store, essays, mapping, config, data_name="essays.csv")
            record = execute_run(store, record.run_id)
            outcome = {"status": record.status, "error": record.error}
            if record.status == "completed":
                essay = pd.DataFrame({"essay": ["a clear argument with evidence"]})
                outcome["prediction"] = Predictor(record.run_dir).predict_frame(essay).values
        else:
            tokenizer, model = load_text_model(model_id, 2, "classification")
            outcome = {"status": "loaded", "layers": model.config.num_hidden_layers}
    except EduTuneError as error:
        outcome = {"status": "error", "key": error.key, "en": error.message("en"), "zh": error.message("zh")}
    print(json.dumps({"model": model_id, "seconds": time.monotonic() - started, **outcome}), flush=True)
"""


def load_through(endpoint: str, tmp_path: Path, mode: str, *model_ids: str) -> dict[str, dict]:
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "EDUTUNE_OFFLINE", "HF_TOKEN")}
    environment |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home"),
                    "EDUTUNE_HOME": str(tmp_path / "edutune-home"), "EDUTUNE_HUB_TIMEOUT": str(HUB_TIMEOUT_SECONDS),
                    "HF_HUB_DISABLE_XET": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", LOAD_SCRIPT, mode, *model_ids], cwd=ROOT, env=environment,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    return {line["model"]: line for line in lines}


def test_hub_model_downloads_trains_and_predicts(mirror, tmp_path):
    endpoint = f"http://127.0.0.1:{mirror.server_address[1]}"
    outcome = load_through(endpoint, tmp_path, "train", REPO)[REPO]

    assert outcome["status"] == "completed", outcome
    assert outcome["prediction"][0] in {"1", "2"}
    snapshot = tmp_path / "hf-home" / "hub" / "models--edutune-test--tiny-bert" / "snapshots" / COMMIT
    assert (snapshot / "config.json").is_file()
    assert (snapshot / "model.safetensors").is_file()
    assert f"GET /api/models/{REPO}" in mirror.requests
    assert f"GET /{REPO}/resolve/{COMMIT}/model.safetensors" in mirror.requests


@pytest.fixture(scope="module")
def hub_failures(mirror, tmp_path_factory) -> dict[str, dict]:
    endpoint = f"http://127.0.0.1:{mirror.server_address[1]}"
    return load_through(endpoint, tmp_path_factory.mktemp("hub-failures"), "load", MISSING_REPO, PRIVATE_REPO,
                        SILENT_REPO)


def test_hub_missing_model_message(hub_failures):
    outcome = hub_failures[MISSING_REPO]
    assert outcome["key"] == "hub.not_found"
    assert f'"{MISSING_REPO}" was not found on the model hub (http://127.0.0.1:' in outcome["en"]
    assert f"找不到模型“{MISSING_REPO}”" in outcome["zh"]


def test_hub_login_required_message(hub_failures):
    outcome = hub_failures[PRIVATE_REPO]
    assert outcome["key"] == "model.needs_login"
    assert "needs a Hugging Face login" in outcome["en"]
    assert PRIVATE_REPO in outcome["zh"]


def test_hub_silent_server_times_out(hub_failures):
    outcome = hub_failures[SILENT_REPO]
    assert outcome["key"] == "hub.timed_out"
    assert f"did not answer within {HUB_TIMEOUT_SECONDS} seconds" in outcome["en"]
    assert f"{HUB_TIMEOUT_SECONDS} 秒内没有响应" in outcome["zh"]
    assert outcome["seconds"] < HUB_TIMEOUT_SECONDS + 10


def test_hub_closed_port_is_unreachable(tmp_path):
    started = time.monotonic()
    outcome = load_through(f"http://127.0.0.1:{free_port()}", tmp_path, "load", REPO)[REPO]

    assert outcome["key"] == "hub.unreachable"
    assert "cannot be reached" in outcome["en"]
    assert "无法连接模型中心" in outcome["zh"]
    assert outcome["seconds"] < HUB_TIMEOUT_SECONDS + 10
    assert time.monotonic() - started < 120


def test_hub_offline_without_cache_message(tmp_path, monkeypatch):
    from edutune_core.i18n import ModelError
    from edutune_core.models import load_text_model

    # conftest sets HF_HUB_OFFLINE=1 for every test, so this process never connects.
    with pytest.raises(ModelError) as raised:
        load_text_model(REPO, 2, "classification")
    assert raised.value.key == "model.download_failed"
