"""Start `streamlit run app.py` as a real server on a free loopback port and check it answers."""

import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def server(tmp_path):
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


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_server_answers(server):
    base, process = server
    deadline = time.monotonic() + 60
    while True:
        try:
            status, body = get(f"{base}/_stcore/health")
            break
        except OSError:
            assert process.poll() is None, process.stdout.read()
            assert time.monotonic() < deadline, "server did not start within 60 s"
            time.sleep(0.5)
    assert (status, body) == (200, "ok")
    status, page = get(base)
    assert status == 200
    assert "<div id=\"root\">" in page or "id=\"root\"" in page


def test_server_binds_loopback_by_default(server):
    base, process = server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            get(f"{base}/_stcore/health")
            break
        except OSError:
            time.sleep(0.5)
    port = int(base.rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    if not listening:
        pytest.skip("the ss tool is not available to list listening sockets")
    local_addresses = [line.split()[3] for line in listening.splitlines()]
    assert local_addresses == [f"127.0.0.1:{port}"]
