"""Start `streamlit run app.py` as a real server on a free loopback port and check that it responds."""

import subprocess
import urllib.request

import pytest

from conftest import wait_for_server


def get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read().decode("utf-8", "replace")


def test_server_answers(server):
    base, process = server
    wait_for_server(base, process)
    assert get(f"{base}/_stcore/health") == (200, "ok")
    status, page = get(base)
    assert status == 200
    assert 'id="root"' in page


def test_server_binds_loopback_by_default(server):
    base, process = server
    wait_for_server(base, process)
    port = int(base.rsplit(":", 1)[1])
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True).stdout
    if not listening:
        pytest.skip("the ss tool is not available to list listening sockets")
    local_addresses = [line.split()[3] for line in listening.splitlines()]
    assert local_addresses == [f"127.0.0.1:{port}"]
