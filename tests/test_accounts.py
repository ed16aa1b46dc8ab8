"""Sign-in by user name: each teacher sees only their own runs and uploads unless a run is shared."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT, make_gradebook
from edutune_core import security
from edutune_core.config import TrainConfig
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, RunStore
from edutune_core.security import (
    USERS,
    FailureWindow,
    LoginThrottle,
    SecurityError,
    access_mode,
    check_user_login,
    check_user_name,
    hash_password,
    read_users_file,
    write_user,
)
from edutune_core.tasks import REGRESSION, ColumnMapping
from edutune_core.uploads import UploadStore, user_folder

# The users file


def test_users_file_round_trip(users_file):
    users = read_users_file(users_file)
    assert sorted(users) == ["alice", "王老师"]
    assert security.verify_password("wang-password", users["王老师"])
    assert users_file.stat().st_mode & 0o077 == 0


def test_write_user_replaces_only_that_user(users_file, tmp_path):
    copy = tmp_path / "users.txt"
    copy.write_text("# teachers of class 3\n" + users_file.read_text(encoding="utf-8"), encoding="utf-8")
    write_user(copy, "alice", hash_password("new-password"))
    users = read_users_file(copy)
    assert security.verify_password("new-password", users["alice"])
    assert security.verify_password("wang-password", users["王老师"])
    assert copy.read_text(encoding="utf-8").startswith("# teachers of class 3\n")
    assert copy.read_text(encoding="utf-8").count("alice:") == 1


@pytest.mark.parametrize("content, key, params", [
    (None, "security.users_file_unreadable", {}),
    ("# nobody yet\n\n", "security.users_file_empty", {}),
    ("alice scrypt$1$2$3$AAAA$BBBB\n", "security.users_file_invalid", {"line": 1}),
    ("\n# comment\n:{hash}\n", "security.users_file_invalid", {"line": 3}),
    ("bob:{hash}\nal ice:{hash}\n", "security.users_file_invalid", {"line": 2}),
])
def test_users_file_errors(tmp_path, content, key, params):
    path = tmp_path / "users.txt"
    if content is not None:
        path.write_text(content.format(hash=hash_password("whatever-password").to_text()), encoding="utf-8")
    with pytest.raises(SecurityError) as caught:
        read_users_file(path)
    assert caught.value.key == key
    for name, value in params.items():
        assert caught.value.params[name] == value
    assert str(path) in caught.value.message("zh")


@pytest.mark.parametrize("name", ["", "   ", "a b", "a:b", "x" * 65, "tab\there", "bell\x07"])
def test_user_name_rejected(name):
    with pytest.raises(SecurityError) as caught:
        check_user_name(name)
    assert caught.value.key == "security.user_name_invalid"


def test_users_file_wins_over_password(users_file):
    mode, users = access_mode("127.0.0.1", {"EDUTUNE_USERS_FILE": str(users_file), "EDUTUNE_PASSWORD": "shared-password"})
    assert mode == USERS
    assert sorted(users) == ["alice", "王老师"]


def test_user_login_checks_name_and_password(users_file, caplog):
    users = read_users_file(users_file)
    throttle, window = LoginThrottle(), FailureWindow()
    assert check_user_login(" alice ", "alice-password", users, throttle, window) == "alice"
    assert check_user_login("alice", "wang-password", users, throttle, window) is None
    assert check_user_login("mallory", "alice-password", users, throttle, window) is None
    assert throttle.failures == 2
    assert "alice-password" not in caplog.text


def test_add_user_command(tmp_path):
    path = tmp_path / "users.txt"
    # A new session has no terminal, so getpass reads the two answers from standard input.
    result = subprocess.run([sys.executable, "-m", "edutune_core.security", "add-user", "李老师", str(path)],
                            input="li-password\nli-password\n", capture_output=True, text=True, cwd=ROOT,
                            timeout=60, start_new_session=True)
    assert result.returncode == 0, result.stderr
    assert security.verify_password("li-password", read_users_file(path)["李老师"])

    bad = subprocess.run([sys.executable, "-m", "edutune_core.security", "add-user", "a:b", str(path)],
                         input="", capture_output=True, text=True, cwd=ROOT, timeout=60, start_new_session=True)
    assert bad.returncode == 2
    assert "cannot be a user name" in bad.stderr


# Runs per user in the store


def finished_run(store: RunStore, name: str):
    record = create_run(store, make_gradebook(60), ColumnMapping(target="final", problem=REGRESSION),
                        TrainConfig.for_task(False, epochs=1), data_name="gradebook.csv", name=name)
    execute_run(store, record.run_id)
    return store.get_run(record.run_id)


def test_store_keeps_users_apart(tmp_path):
    base = RunStore(tmp_path / "home")
    alice, wang = base.for_user("alice"), base.for_user("王老师")
    own = finished_run(alice, "alice's run")
    assert own.owner == "alice"
    assert own.status == COMPLETED
    assert [record.run_id for record in alice.list_runs()] == [own.run_id]
    assert wang.list_runs() == []
    with pytest.raises(KeyError):
        wang.get_run(own.run_id)
    with pytest.raises(KeyError):
        wang.mark_deleted(own.run_id)
    assert [record.run_id for record in base.list_runs()] == [own.run_id]

    alice.set_shared(own.run_id, True)
    shared = wang.get_run(own.run_id)
    assert shared.shared
    assert [record.run_id for record in wang.list_runs()] == [own.run_id]
    assert not wang.can_change(shared)
    with pytest.raises(PermissionError):
        wang.set_shared(own.run_id, False)
    with pytest.raises(PermissionError):
        wang.mark_deleted(own.run_id)
    assert [event["kind"] for event in base.events(own.run_id)][-1] == "shared"

    alice.set_shared(own.run_id, False)
    assert wang.list_runs() == []


def test_old_database_gains_owner_columns(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with sqlite3.connect(home / "edutune.sqlite") as connection:
        connection.execute(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,"
            " updated_at REAL NOT NULL, status TEXT NOT NULL, task TEXT NOT NULL, model TEXT NOT NULL,"
            " data_name TEXT NOT NULL, run_dir TEXT NOT NULL, pid INTEGER, total_steps INTEGER,"
            " config_json TEXT NOT NULL, summary_json TEXT NOT NULL, metrics_json TEXT, error_json TEXT)")
        connection.execute("INSERT INTO runs VALUES ('old', 'last term', 1, 1, 'completed', 'tabular', 'mlp', 'a.csv',"
                           " '/tmp/old', NULL, NULL, '{}', '{}', NULL, NULL)")
    store = RunStore(home)
    old = store.get_run("old")
    assert old.owner is None
    assert not old.shared
    assert store.for_user("alice").list_runs() == []


# The pages




def test_login_form_asks_for_name(signed_in_server):
    at = signed_in_server("alice", "wang-password", lang="zh")
    assert [title.value for title in at.title] == ["登录 EduTune"]
    assert [box.label for box in at.text_input] == ["用户名", "密码"]
    assert [error.value for error in at.error] == ["用户名或密码错误。请检查后重试。"]


def test_history_shows_only_own_and_shared_runs(signed_in_server, edutune_home):
    base = RunStore(edutune_home)
    own = finished_run(base.for_user("alice"), "alice gradebook")
    other = finished_run(base.for_user("王老师"), "wang gradebook")

    at = signed_in_server("alice", "alice-password")
    assert [title.value for title in at.title] == ["History"]
    assert "Signed in as alice" in [caption.value for caption in at.sidebar.caption]
    shown = at.selectbox(key="history_run").options
    assert len(shown) == 1
    assert "alice gradebook" in shown[0]
    at.toggle(key=f"share_{own.run_id}").set_value(True).run()
    assert base.get_run(own.run_id).shared

    wang = signed_in_server("王老师", "wang-password", lang="zh")
    names = wang.selectbox(key="history_run").options
    assert len(names) == 2
    assert not any("wang gradebook" in name for name in at.selectbox(key="history_run").options)
    wang.selectbox(key="history_run").set_value(own.run_id).run()
    assert not wang.exception, wang.exception
    assert f"delete_{own.run_id}" not in [button.key for button in wang.button]
    assert any("只有 alice 可以" in caption.value for caption in wang.caption)
    assert other.run_id in [record.run_id for record in base.for_user("王老师").list_runs()]


def test_uploads_kept_per_user(signed_in_server, edutune_home):
    root = RunStore(edutune_home).home / "uploads"
    UploadStore(user_folder(root, "alice")).save(b"name,final\nA,1\n", "alice.csv")
    alice = signed_in_server("alice", "alice-password", page="pages/data.py")
    assert any("alice.csv" in label for label in alice.selectbox(key="data_file").options)
    wang = signed_in_server("王老师", "wang-password", page="pages/data.py")
    assert not any("alice.csv" in label for label in wang.selectbox(key="data_file").options)
    assert user_folder(root, "王老师") != user_folder(root, "alice")
    assert user_folder(root, "../../etc").parent == root / "users"
