"""Access control, the offline switch, run imports and deletion, with real files and servers."""

from __future__ import annotations

import http.server
import io
import json
import logging
import os
import struct
import subprocess
import sys
import threading
import tomllib
import zipfile

import pytest
from streamlit import config as streamlit_config
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from edutune_core import security
from edutune_core.config import TrainConfig
from edutune_core.export import RunImportError, export_run, import_run
from edutune_core.i18n import EduTuneError
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, DELETED, RunStore
from edutune_core.security import (
    LOGIN,
    OPEN,
    REFUSE,
    FailureWindow,
    LoginThrottle,
    PasswordHash,
    SecurityError,
    access_mode,
    check_login,
    clean_display_name,
    configured_password,
    hash_password,
    is_loopback,
    safe_relative_path,
    verify_password,
)
from edutune_core.tasks import REGRESSION, ColumnMapping
from pages.common.ui import PAGES as MENU

APP = str(ROOT / "app.py")
PAGES = [script for script, _title, _icon in MENU]


# Passwords and access modes


def test_password_hash_round_trip():
    stored = hash_password("correct horse")
    parsed = PasswordHash.from_text(stored.to_text())
    assert verify_password("correct horse", parsed)
    assert not verify_password("correct hors", parsed)
    assert not verify_password("", parsed)
    assert hash_password("correct horse").salt != stored.salt


@pytest.mark.parametrize("text", ["", "plain-password", "scrypt$16384$8$1$c2FsdA==", "bcrypt$1$2$3$AAAA$BBBB",
                                  "scrypt$1000$8$1$" + "A" * 24 + "$" + "B" * 44,
                                  "scrypt$16384$8$1$!!notbase64!!$" + "B" * 44])
def test_password_hash_rejects_bad_lines(text):
    with pytest.raises(ValueError):
        PasswordHash.from_text(text)


@pytest.mark.parametrize("address, expected", [
    ("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("0.0.0.0", False), ("::", False), ("", False), (None, False), ("192.168.1.20", False),
    ("10.0.0.5", False), ("school-server.local", False),
])
def test_is_loopback(address, expected):
    assert is_loopback(address) is expected


def test_configured_password_from_environment():
    stored = configured_password({security.PASSWORD_ENV: "long enough"})
    assert verify_password("long enough", stored)
    assert configured_password({}) is None
    assert configured_password({security.PASSWORD_ENV: ""}) is None


def test_configured_password_too_short():
    with pytest.raises(SecurityError) as caught:
        configured_password({security.PASSWORD_ENV: "short"})
    assert caught.value.key == "security.password_too_short"
    assert "8" in caught.value.message("en")


def test_password_file_wins_over_environment(tmp_path):
    path = tmp_path / "password"
    path.write_text(hash_password("from the file").to_text() + "\n", encoding="utf-8")
    stored = configured_password({security.PASSWORD_FILE_ENV: str(path), security.PASSWORD_ENV: "from the variable"})
    assert verify_password("from the file", stored)
    assert not verify_password("from the variable", stored)


@pytest.mark.parametrize("content, key", [(None, "security.password_file_unreadable"),
                                          ("correct horse", "security.password_file_invalid")])
def test_password_file_errors(tmp_path, content, key):
    path = tmp_path / "password"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(SecurityError) as caught:
        configured_password({security.PASSWORD_FILE_ENV: str(path)})
    assert caught.value.key == key
    assert str(path) in caught.value.message("zh")


@pytest.mark.parametrize("address, environment, expected", [
    ("127.0.0.1", {}, OPEN),
    ("localhost", {}, OPEN),
    ("0.0.0.0", {}, REFUSE),
    (None, {}, REFUSE),
    ("192.168.1.20", {"EDUTUNE_PASSWORD": "long enough"}, LOGIN),
    ("127.0.0.1", {"EDUTUNE_PASSWORD": "long enough"}, LOGIN),
])
def test_access_mode(address, environment, expected):
    mode, stored = access_mode(address, environment)
    assert mode == expected
    assert (stored is not None) == (expected == LOGIN)


def test_login_throttle_locks_and_doubles():
    throttle = LoginThrottle()
    for _ in range(4):
        throttle.record_failure(now=1000.0)
    assert throttle.seconds_left(now=1000.0) == 0
    throttle.record_failure(now=1000.0)
    assert throttle.seconds_left(now=1000.0) == 30
    throttle.record_failure(now=1030.0)
    assert throttle.seconds_left(now=1030.0) == 60
    for _ in range(20):
        throttle.record_failure(now=2000.0)
    assert throttle.seconds_left(now=2000.0) == 900
    throttle.record_success()
    assert throttle.seconds_left(now=2000.0) == 0


def test_failure_window_limits_whole_server():
    window = FailureWindow(limit=3, window=60.0)
    for second in range(3):
        window.record_failure(now=100.0 + second)
    assert window.seconds_left(now=103.0) == 57
    assert window.seconds_left(now=160.5) == 0


def test_check_login_counts_and_never_logs_password(caplog):
    stored = hash_password("correct horse")
    throttle, window = LoginThrottle(max_failures=2), FailureWindow()
    with caplog.at_level(logging.INFO, logger="edutune_core.security"):
        assert not check_login("battery staple", stored, throttle, window, now=10.0)
        assert not check_login("battery staple", stored, throttle, window, now=11.0)
        with pytest.raises(SecurityError) as caught:
            check_login("correct horse", stored, throttle, window, now=12.0)
    assert caught.value.key == "security.locked"
    assert "29" in caught.value.message("en")
    assert "failed login: 2 in this session, 2 since the server started" in caplog.text
    assert "battery" not in caplog.text
    assert check_login("correct horse", stored, throttle, window, now=100.0)
    assert throttle.failures == 0


# The gate on every page (AppTest runs the real pages without a browser)


@pytest.fixture
def server_address():
    """Set Streamlit's ``server.address`` for AppTest and put the configured one back afterwards."""
    original = streamlit_config.get_option("server.address")

    def set_address(address: str) -> None:
        streamlit_config.set_option("server.address", address)

    yield set_address
    streamlit_config.set_option("server.address", original)


def run_page(page: str, lang: str = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    if page != "app.py":
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("page", PAGES)
def test_network_address_without_password_refuses_every_page(edutune_home, server_address, monkeypatch, page):
    monkeypatch.delenv("EDUTUNE_PASSWORD", raising=False)
    monkeypatch.delenv("EDUTUNE_PASSWORD_FILE", raising=False)
    server_address("0.0.0.0")
    at = run_page(page)
    assert len(at.error) == 1
    message = at.error[0].value
    assert "EduTune 不在此地址上提供页面" in message
    assert "EduTune does not serve pages on this address" in message
    assert "EDUTUNE_PASSWORD" in message
    assert len(at.title) == 0
    assert [link.label for link in at.get("page_link")] == []


def test_password_gate_login_flow(edutune_home, server_address, monkeypatch):
    server_address("192.168.1.20")
    monkeypatch.setenv("EDUTUNE_PASSWORD", "correct horse")
    monkeypatch.setattr(security, "SERVER_FAILURES", FailureWindow())
    at = run_page("pages/history.py", lang="zh")
    assert [title.value for title in at.title] == ["登录 EduTune"]
    assert [box.label for box in at.text_input] == ["密码"]

    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert [error.value for error in at.error] == ["密码错误。请检查后重试。"]
    assert [title.value for title in at.title] == ["登录 EduTune"]

    at.text_input(key="login_password").input("correct horse")
    at.button[0].click().run()
    assert not at.error
    assert [title.value for title in at.title] == ["历史记录"]
    assert "退出登录" in [button.label for button in at.button]

    at.switch_page("pages/data.py").run()
    assert [title.value for title in at.title] == ["数据"]
    at.button(key="sign_out").click().run()
    assert [title.value for title in at.title] == ["登录 EduTune"]


def test_password_gate_locks_session_after_failures(edutune_home, server_address, monkeypatch):
    server_address("192.168.1.20")
    monkeypatch.setenv("EDUTUNE_PASSWORD", "correct horse")
    monkeypatch.setattr(security, "SERVER_FAILURES", FailureWindow())
    at = run_page("app.py")
    for _ in range(5):
        at.text_input(key="login_password").input("wrong password")
        at.button[0].click().run()
    at.text_input(key="login_password").input("correct horse")
    at.button[0].click().run()
    assert len(at.error) == 1
    assert at.error[0].value.startswith("Too many wrong passwords. Wait ")
    assert [title.value for title in at.title] == ["Sign in to EduTune"]


def test_short_password_setting_shown_on_every_page(edutune_home, monkeypatch):
    monkeypatch.setenv("EDUTUNE_PASSWORD", "short")
    at = run_page("app.py")
    assert "fewer than 8 characters" in at.error[0].value
    assert "少于 8 个字符" in at.error[0].value
    assert len(at.title) == 0


def test_data_folder_under_a_file_shows_message(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be", encoding="utf-8")
    home = blocker / "edutune"
    monkeypatch.setenv("EDUTUNE_HOME", str(home))
    with pytest.raises(EduTuneError) as caught:
        RunStore(home)
    assert caught.value.key == "store.not_writable"
    assert str(home) in caught.value.message("en")
    at = run_page("pages/history.py")
    assert len(at.error) == 1
    assert at.error[0].value.startswith(f'EduTune cannot write to its data folder "{home}"')


def test_streamlit_config_keeps_data_local():
    options = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert options["browser"]["gatherUsageStats"] is False
    assert options["server"]["address"] == "127.0.0.1"
    # Streamlit's cap sits a little above the app's own 200 MB limit (so the app's own
    # message shows), and stays bounded so no upload can fill the memory.
    assert options["server"]["maxUploadSize"] <= 256


# The offline switch


class CountingHub(http.server.BaseHTTPRequestHandler):
    """A stand-in model hub on loopback that records each request and answers 404."""

    requests: list[str] = []

    def do_GET(self):  # noqa: N802 - the name http.server calls
        CountingHub.requests.append(self.path)
        self.send_response(404)
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


@pytest.fixture
def local_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CountingHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    CountingHub.requests = []
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


LOAD_HUB_MODEL = """
import json, time
from edutune_core.i18n import ModelError
from edutune_core.models import load_text_model
start = time.monotonic()
try:
    load_text_model("acme/essay-scorer", 2, "classification")
except ModelError as error:
    print(json.dumps({"key": error.key, "seconds": time.monotonic() - start}))
"""


def load_hub_model(hub: str, tmp_path, offline: str) -> dict:
    environment = {name: value for name, value in os.environ.items()
                   if name not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    environment.update(HF_ENDPOINT=hub, HF_HOME=str(tmp_path / "hf-home"), EDUTUNE_OFFLINE=offline)
    finished = subprocess.run([sys.executable, "-c", LOAD_HUB_MODEL], cwd=ROOT, env=environment,
                              capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_offline_switch_makes_no_request(local_hub, tmp_path):
    result = load_hub_model(local_hub, tmp_path, offline="1")
    assert result["key"] == "model.download_failed"
    assert result["seconds"] < 15
    assert CountingHub.requests == []


def test_without_offline_switch_hub_is_asked(local_hub, tmp_path):
    # The control case: the same call reaches the stand-in hub, so the test above can see a request.
    load_hub_model(local_hub, tmp_path, offline="")
    assert any("acme/essay-scorer" in path for path in CountingHub.requests)


# Untrusted names


@pytest.mark.parametrize("name", ["../evil.json", "top/../../evil", "/etc/passwd", "C:/Windows/evil", "top\\..\\evil",
                                  "top/./model", "top//model", "top/model\x00.json", ""])
def test_safe_relative_path_rejects(name):
    with pytest.raises(SecurityError) as caught:
        safe_relative_path(name)
    assert caught.value.key == "security.unsafe_path"


def test_safe_relative_path_accepts_export_names():
    assert safe_relative_path("edutune-1/model/config.json").parts == ("edutune-1", "model", "config.json")
    assert safe_relative_path("edutune-1/model/").parts == ("edutune-1", "model")


def test_clean_display_name():
    assert clean_display_name("成绩\n册\x1b[31m.csv\t ") == "成绩 册 [31m.csv"
    assert clean_display_name("x" * 500) == "x" * 120
    assert clean_display_name("\n\t", fallback="run") == "run"


# Importing an exported run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A finished table run (60 rows, one epoch) with its exported zip."""
    store = RunStore(tmp_path_factory.mktemp("trained-home"))
    record = create_run(store, make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=1), data_name="gradebook.csv", name="7A\nfinal\x07 grade")
    record = execute_run(store, record.run_id)
    assert record.status == COMPLETED
    return record, export_run(record)


def zip_of(entries: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def entries_of(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def rejected(store: RunStore, data: bytes) -> EduTuneError:
    """Import ``data``, expect an error, and check that nothing was kept."""
    with pytest.raises(EduTuneError) as caught:
        import_run(store, data, "upload.zip")
    assert store.list_runs() == []
    assert [path.name for path in store.runs_dir.iterdir()] == []
    return caught.value


def test_export_has_no_data_or_checkpoint(trained_run):
    record, archive = trained_run
    assert (record.run_dir / "checkpoint").is_dir()
    assert (record.run_dir / "train_data.parquet").exists()
    names = entries_of(archive)
    assert not any("checkpoint" in name or name.endswith((".parquet", ".pt", ".bin")) for name in names)
    assert f"edutune-{record.run_id}/model/model.safetensors" in names


def test_import_round_trip(trained_run, tmp_path):
    record, archive = trained_run
    store = RunStore(tmp_path / "home")
    imported = import_run(store, archive, "export.zip")
    assert imported.run_id != record.run_id
    assert imported.status == COMPLETED
    assert imported.name == "7A final grade"
    assert imported.metrics == record.metrics
    assert imported.run_dir.parent == store.runs_dir
    assert sorted(path.name for path in imported.run_dir.iterdir()) == [
        "MODEL_CARD.md", "metrics.json", "model", "run.json", "validation_predictions.csv"]
    assert [event["kind"] for event in store.events(imported.run_id)] == ["imported"]
    frame = make_gradebook(5, seed=3)
    expected = Predictor(record.run_dir).predict_frame(frame).values
    assert Predictor(imported.run_dir).predict_frame(frame).values == expected
    again = import_run(store, export_run(imported), "again.zip")
    assert again.status == COMPLETED


@pytest.mark.parametrize("name", ["../evil.json", "/tmp/evil.json", "top/../../evil.json", "C:/evil.json",
                                  "top\\..\\evil.json"])
def test_import_rejects_path_traversal(trained_run, tmp_path, name):
    _, archive = trained_run
    entries = entries_of(archive) | {name: b"{}"}
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries))
    assert error.key == "security.unsafe_path"
    assert not (tmp_path / "evil.json").exists()


def test_import_rejects_symlink(trained_run, tmp_path):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    buffer = io.BytesIO(zip_of(entries_of(archive)))
    with zipfile.ZipFile(buffer, "a") as target:
        link = zipfile.ZipInfo(f"{top}/model/vocab.txt")
        link.external_attr = 0o120777 << 16
        target.writestr(link, "/etc/passwd")
    error = rejected(RunStore(tmp_path / "home"), buffer.getvalue())
    assert error.key == "import.symlink"


@pytest.mark.parametrize("file_name", ["pytorch_model.bin", "weights.pt", "state.pkl", "model.pth", "arrays.npy"])
def test_import_rejects_pickled_files(trained_run, tmp_path, file_name):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    entries = entries_of(archive) | {f"{top}/model/{file_name}": b"\x80\x04K\x01."}
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries))
    assert error.key == "import.pickle_rejected"
    assert file_name in error.message("en")
    assert "safetensors" in error.message("zh")


@pytest.mark.parametrize("entry", ["checkpoint/progress.json", "checkpoint/training_state.pt",
                                   "checkpoint.old/model.safetensors", "model/checkpoint/model.safetensors"])
def test_import_rejects_checkpoints(trained_run, tmp_path, entry):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries_of(archive) | {f"{top}/{entry}": b"{}"}))
    assert error.key == "import.checkpoint_rejected"


@pytest.mark.parametrize("entry", ["train_data.parquet", "model/modeling_custom.py", "notes/readme.json"])
def test_import_rejects_unexpected_files(trained_run, tmp_path, entry):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries_of(archive) | {f"{top}/{entry}": b"x"}))
    assert error.key == "import.unexpected_file"


def test_import_rejects_second_top_folder(trained_run, tmp_path):
    _, archive = trained_run
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries_of(archive) | {"other/run.json": b"{}"}))
    assert error.key == "import.one_folder"


def test_import_rejects_zip_bomb(trained_run, tmp_path):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    entries = entries_of(archive) | {f"{top}/model/padding.txt": bytes(8 * 2**20)}
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries))
    assert error.key == "import.compression_ratio"


def test_import_rejects_too_many_files(trained_run, tmp_path):
    _, archive = trained_run
    top = next(iter(entries_of(archive))).split("/")[0]
    extra = {f"{top}/model/extra_{index}.json": b"{}" for index in range(200)}
    error = rejected(RunStore(tmp_path / "home"), zip_of(entries_of(archive) | extra))
    assert error.key == "import.too_many_files"


def test_import_limits_total_size(trained_run, tmp_path, monkeypatch):
    _, archive = trained_run
    monkeypatch.setattr("edutune_core.export.MAX_IMPORT_BYTES", len(archive) - 1)
    assert rejected(RunStore(tmp_path / "home"), archive).key == "import.too_large"
    monkeypatch.setattr("edutune_core.export.MAX_IMPORT_BYTES", len(archive))
    monkeypatch.setattr("edutune_core.export.MAX_UNPACKED_BYTES", 1000)
    assert rejected(RunStore(tmp_path / "home"), archive).key == "import.unpacked_too_large"


def patch_headers(data: bytes, name: str, *, flag: int | None = None, size: int | None = None) -> bytes:
    """Rewrite the flag bits or the uncompressed size of ``name`` in both zip headers."""
    patched = bytearray(data)
    encoded = name.encode("utf-8")
    for signature, flag_at, size_at, name_at in ((b"PK\x03\x04", 6, 22, 30), (b"PK\x01\x02", 8, 24, 46)):
        start = patched.find(signature)
        while start != -1:
            length = struct.unpack_from("<H", patched, start + name_at - (4 if signature == b"PK\x03\x04" else 18))[0]
            if bytes(patched[start + name_at:start + name_at + length]) == encoded:
                if flag is not None:
                    struct.pack_into("<H", patched, start + flag_at, flag)
                if size is not None:
                    struct.pack_into("<I", patched, start + size_at, size)
            start = patched.find(signature, start + 4)
    return bytes(patched)


def test_import_rejects_encrypted_entry(trained_run, tmp_path):
    _, archive = trained_run
    name = next(name for name in entries_of(archive) if name.endswith("run.json"))
    error = rejected(RunStore(tmp_path / "home"), patch_headers(archive, name, flag=0x1))
    assert error.key == "import.encrypted"


def test_import_rejects_lying_size(trained_run, tmp_path):
    _, archive = trained_run
    name = next(name for name in entries_of(archive) if name.endswith("model.safetensors"))
    error = rejected(RunStore(tmp_path / "home"), patch_headers(archive, name, size=100))
    assert error.key == "import.damaged"


@pytest.mark.parametrize("change, key", [
    (lambda entries, top: entries.pop(f"{top}/model/edutune.json"), "import.missing_file"),
    (lambda entries, top: entries.pop(f"{top}/model/model.safetensors"), "import.no_weights"),
    (lambda entries, top: entries.update({f"{top}/model/edutune.json": b"[1, 2"}), "import.bad_json"),
    (lambda entries, top: entries.update({f"{top}/model/edutune.json": b'{"task": "x"}'}), "import.bad_json"),
    (lambda entries, top: entries.update({f"{top}/model/model.safetensors": b"\x08\x00\x00\x00\x00\x00\x00\x00{}"}),
     "import.model_unusable"),
])
def test_import_rejects_broken_exports(trained_run, tmp_path, change, key):
    _, archive = trained_run
    entries = entries_of(archive)
    change(entries, next(iter(entries)).split("/")[0])
    assert rejected(RunStore(tmp_path / "home"), zip_of(entries)).key == key


def test_torch_load_only_with_weights_only():
    """Only the checkpoint module unpickles, and only files this program wrote into a run folder."""
    unsafe = []
    for path in [*(ROOT / "edutune_core").rglob("*.py"), *(ROOT / "pages").rglob("*.py"), ROOT / "app.py"]:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "torch.load(" in line and "weights_only=True" not in line and path.name != "checkpoint.py":
                unsafe.append(f"{path.relative_to(ROOT)}:{number}")
    assert unsafe == []


def test_run_name_cannot_choose_folder(tmp_path):
    store = RunStore(tmp_path / "home")
    record = create_run(store, make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=1), data_name="../../grades.csv", name="../../../etc/x")
    assert record.run_dir.parent == store.runs_dir.resolve()
    assert record.run_dir.name == record.run_id
    assert not (tmp_path / "etc").exists()


def test_import_rejects_other_files(tmp_path):
    store = RunStore(tmp_path / "home")
    assert rejected(store, b"name,score\nAda,3\n").key == "import.not_a_zip"
    assert rejected(store, b"").key == "import.not_a_zip"


# Deleting a run


def finished_run(store: RunStore, run_dir=None):
    record = create_run(store, make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=1), data_name="gradebook.csv", run_dir=run_dir)
    return execute_run(store, record.run_id)


def test_mark_deleted_removes_files_and_keeps_row(tmp_path):
    store = RunStore(tmp_path / "home")
    record = finished_run(store)
    points = store.points(record.run_id)
    deleted = store.mark_deleted(record.run_id)
    assert not record.run_dir.exists()
    assert deleted.status == DELETED
    assert deleted.metrics is None
    assert deleted.name == record.name
    assert store.points(record.run_id) == points
    assert store.events(record.run_id)[-1]["kind"] == "deleted"
    assert list(store.runs_dir.iterdir()) == []


def test_mark_deleted_keeps_user_files_outside_runs_folder(tmp_path):
    store = RunStore(tmp_path / "home")
    folder = tmp_path / "my-project"
    folder.mkdir()
    (folder / "notes.txt").write_text("the teacher's own notes", encoding="utf-8")
    record = finished_run(store, run_dir=folder)
    store.mark_deleted(record.run_id)
    assert sorted(path.name for path in folder.iterdir()) == ["notes.txt"]


def test_mark_deleted_rejects_active_run(tmp_path):
    store = RunStore(tmp_path / "home")
    record = create_run(store, make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=1), data_name="gradebook.csv")
    with pytest.raises(ValueError):
        store.mark_deleted(record.run_id)
    assert (record.run_dir / "train_data.parquet").exists()


def test_deleted_run_in_pages(edutune_home):
    store = RunStore(edutune_home)
    record = finished_run(store)
    at = run_page("pages/history.py")
    at.checkbox(key=f"confirm_delete_{record.run_id}").check().run()
    at.button(key=f"delete_{record.run_id}").click().run()
    assert not at.exception, at.exception
    assert not record.run_dir.exists()
    assert store.get_run(record.run_id).status == DELETED
    assert any(info.value.startswith("The files of this run (data snapshot, predictions, weights and checkpoint) "
                                     "were deleted on ") for info in at.info)
    assert at.dataframe[0].value["Status"].tolist() == ["deleted"]
    assert [button.label for button in at.get("download_button")] == []
    assert f"delete_{record.run_id}" not in [button.key for button in at.button]

    # Results lists runs with metrics and Use the model lists runs with a model folder,
    # so neither offers the deleted run.
    at.switch_page("pages/results.py").run()
    assert not at.exception, at.exception
    assert not at.error
    assert [info.value for info in at.info] == ["No finished run yet. Train a model first."]
    at.switch_page("pages/predict.py").run()
    assert not at.exception, at.exception
    assert [info.value for info in at.info] == ["No trained model yet. Train one first."]
