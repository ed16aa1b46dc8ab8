"""Shared helpers for the pages: language, the run store, the job manager and errors.

Only Streamlit glue lives here; every decision about data, training and metrics is made
in ``edutune_core``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sqlite3
import time
from pathlib import Path

import streamlit as st

from edutune_core import intake, privacy
from edutune_core.data import load_table

from edutune_core.i18n import LANGUAGES, EduTuneError, normalize_language, translate
from edutune_core.jobs import JobManager
from edutune_core.runstore import RunRecord, RunStore, default_home
from edutune_core.security import (
    LOGIN,
    OPEN,
    PASSWORD_ENV,
    REFUSE,
    USERS,
    LoginThrottle,
    PasswordHash,
    SecurityError,
    access_mode,
    check_login,
    check_user_login,
)
from edutune_core.tasks import ColumnMapping, prepare_data
from edutune_core.uploads import UploadStore, user_folder

logger = logging.getLogger(__name__)

LANGUAGE_NAMES = {"zh": "中文", "en": "English"}


def language() -> str:
    """Return the reader's language: their choice, else the browser's, else English."""
    if "lang" not in st.session_state:
        st.session_state["lang"] = normalize_language(st.context.locale)
    return st.session_state["lang"]


def t(key: str, **params: object) -> str:
    """Translate ``key`` into the reader's language."""
    return translate(key, language(), **params)


def _apply_language_choice() -> None:
    st.session_state["lang"] = st.session_state["language_choice"]


def language_switch() -> None:
    """Draw the language selector; the choice applies to every page of this session."""
    st.session_state["language_choice"] = language()
    st.sidebar.selectbox("语言 / Language", LANGUAGES, format_func=LANGUAGE_NAMES.__getitem__,
                         key="language_choice", on_change=_apply_language_choice)


# Menu entries: script, title key and a Material icon (drawn from Streamlit's own font).
PAGES = (
    ("app.py", "nav.home", ":material/home:"),
    ("pages/data.py", "nav.data", ":material/table_view:"),
    ("pages/train.py", "nav.train", ":material/model_training:"),
    ("pages/images.py", "nav.images", ":material/image:"),
    ("pages/results.py", "nav.results", ":material/insights:"),
    ("pages/predict.py", "nav.predict", ":material/edit_note:"),
    ("pages/history.py", "nav.history", ":material/history:"),
    ("pages/compare.py", "nav.compare", ":material/stacked_line_chart:"),
)


def setup_page(title_key: str) -> None:
    """Start every page: browser title, layout, access check, the translated menu and the language switch.

    Streamlit's own page list is hidden (``client.showSidebarNavigation``) because it
    shows file names; this menu shows the page titles in the reader's language. When
    the reader may not see the pages (no password on a network address, not signed in,
    or a data folder that cannot be written), only the reason or the login form is
    drawn and the script stops here.
    """
    st.set_page_config(page_title=f"{t(title_key)} · EduTune", page_icon=":material/school:", layout="wide")
    keep_widget_state(*_KEPT_KEYS)
    mode, allowed = _access_allowed()
    if allowed:
        with st.sidebar:
            for script, key, icon in PAGES:
                st.page_link(script, label=t(key), icon=icon)
            st.divider()
    language_switch()
    if allowed and mode in (LOGIN, USERS):
        _sign_out_button()
    if not allowed or not _store_ready():
        st.stop()
    # Where training runs: this machine, or a Ray cluster with its free resources. Every
    # session that passed the access check sees it, because EduTune has no administrator role.
    st.sidebar.caption(manager().executor.caption(language()))


SIGNED_IN_KEY = "edutune_signed_in"
USER_KEY = "edutune_user"
THROTTLE_KEY = "edutune_login_throttle"


def _access_allowed() -> tuple[str | None, bool]:
    """Return the access mode and whether the pages may be drawn; draw the reason or the login form when not."""
    address = st.get_option("server.address")
    try:
        mode, stored = access_mode(address)
    except SecurityError as error:
        logger.error("the access setting is invalid: %s", error)
        _error_in_both_languages(error.key, **error.params)
        return None, False
    if mode != USERS:
        # A name kept from a users file that the administrator has since removed.
        st.session_state.pop(USER_KEY, None)
    if mode == REFUSE:
        _log_refusal(address)
        _error_in_both_languages("security.refused", address=address or "0.0.0.0")
        return mode, False
    if mode == OPEN:
        return mode, True
    if mode == USERS:
        user = st.session_state.get(USER_KEY)
        if user in stored and st.session_state.get(SIGNED_IN_KEY) == _fingerprint(stored[user]):
            return mode, True
        _login_form(stored, with_name=True)
        return mode, False
    if st.session_state.get(SIGNED_IN_KEY) == _fingerprint(stored):
        return mode, True
    _login_form(stored, with_name=False)
    return mode, False


def current_user() -> str | None:
    """Return the signed-in user's name on a server with a users file, else None."""
    return st.session_state.get(USER_KEY)


@functools.cache
def _log_refusal(address: str | None) -> None:
    # Cached, so the log gets one line per address and not one per page view.
    logger.error("refusing to serve pages on %r without a password; set %s", address, PASSWORD_ENV)


def _error_in_both_languages(key: str, **params: object) -> None:
    # Shown before anyone signs in, often to the administrator, so both languages appear.
    st.error("\n\n".join(translate(key, lang, **params) for lang in LANGUAGES))


def _fingerprint(stored: PasswordHash) -> str:
    # A session stays signed in only while the administrator keeps the same password.
    return hashlib.sha256(stored.salt + stored.digest).hexdigest()


def _login_form(stored: PasswordHash | dict[str, PasswordHash], with_name: bool) -> None:
    """Draw the sign-in form: a password, and a user name when each user has their own password."""
    st.title(t("security.login_title"))
    st.write(t("security.login_intro_users" if with_name else "security.login_intro"))
    throttle = st.session_state.setdefault(THROTTLE_KEY, LoginThrottle())
    with st.form("login_form", clear_on_submit=True):
        name = st.text_input(t("security.user_name"), key="login_name") if with_name else ""
        password = st.text_input(t("security.password"), type="password", key="login_password")
        submitted = st.form_submit_button(t("security.sign_in"), type="primary")
    if not submitted:
        return
    try:
        if with_name:
            user = check_user_login(name, password, stored, throttle)
            signed_in = user is not None
        else:
            signed_in = check_login(password, stored, throttle)
    except SecurityError as error:
        show_error(error)
        return
    if not signed_in:
        st.error(t("security.login_failed_users" if with_name else "security.login_failed"))
        return
    if with_name:
        st.session_state[USER_KEY] = user
        st.session_state[SIGNED_IN_KEY] = _fingerprint(stored[user])
    else:
        st.session_state[SIGNED_IN_KEY] = _fingerprint(stored)
    st.rerun()


def _sign_out_button() -> None:
    user = current_user()
    if user:
        st.sidebar.caption(t("security.signed_in_as", user=user))
    if st.sidebar.button(t("security.sign_out"), key="sign_out"):
        st.session_state.pop(SIGNED_IN_KEY, None)
        st.session_state.pop(USER_KEY, None)
        st.rerun()


def _store_ready() -> bool:
    """Open the run store; show why when the data folder cannot be used."""
    try:
        store()
    except EduTuneError as error:
        show_error(error)
        return False
    except (OSError, sqlite3.Error) as error:
        logger.error("cannot use the data folder %s: %s", default_home(), error)
        show_error(EduTuneError("store.not_writable", folder=str(default_home()),
                                reason=getattr(error, "strerror", None) or str(error)))
        return False
    _warn_low_space()
    return True


# A checkpoint contains the weights twice plus the Adam state, about four times the model
# size: an estimated 1.7 GB for a 110-million-parameter text model, so less than 1 GiB free is a risk.
LOW_SPACE_BYTES = 2**30


def _warn_low_space() -> None:
    home = default_home()
    try:
        free = shutil.disk_usage(home).free
    except OSError:
        return
    if free < LOW_SPACE_BYTES:
        st.warning(t("store.low_space", folder=str(home), free_mb=free // 2**20))


def option_labels(key_prefix: str, values) -> callable:
    """Return a ``format_func`` that shows ``t(f"{key_prefix}.{value}")`` for each option.

    The labels are translated now, while the page runs, so the function gives the same
    text whenever Streamlit calls it.
    """
    names = {value: t(f"{key_prefix}.{value}") for value in values}
    return names.__getitem__


def show_error(error: EduTuneError) -> None:
    st.error(error.message(language()))


def show_run_error(record: RunRecord) -> None:
    error = record.error or {}
    st.error(translate(error.get("key", "run.internal_error"), language(), **error.get("params", {"error": "?"})))


@st.cache_resource
def _services(home: str) -> tuple[RunStore, JobManager, UploadStore]:
    # One store and one job manager per server process and data folder; every browser
    # session shares them, and they are never mutated from a page.
    store = RunStore(home)
    manager = JobManager(store, max_concurrent=max_concurrent_jobs())
    return store, manager, UploadStore(store.home / "uploads")


def max_concurrent_jobs() -> int:
    """Return ``$EDUTUNE_MAX_JOBS``, else one job per CUDA GPU, else one."""
    configured = os.environ.get("EDUTUNE_MAX_JOBS", "").strip()
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    import torch

    return max(1, torch.cuda.device_count())


def server_store() -> RunStore:
    """Return the run store over every user's runs, for services shared by the whole server."""
    return _services(str(default_home()))[0]


def store() -> RunStore:
    """Return the run store as the signed-in user sees it: only their own and shared runs."""
    return server_store().for_user(current_user())


def manager() -> JobManager:
    return _services(str(default_home()))[1]


def uploads() -> UploadStore:
    """Return the signed-in user's uploads, or the shared folder when there are no user names."""
    shared = _services(str(default_home()))[2]
    user = current_user()
    return shared if user is None else UploadStore(user_folder(shared.folder, user))


def task_name(task: str) -> str:
    return t(f"task.{task}")


def status_name(status: str) -> str:
    return t(f"status.{status}")


def run_label(record: RunRecord) -> str:
    created = time.strftime("%m-%d %H:%M", time.localtime(record.created_at))
    return f"{record.name} · {status_name(record.status)} · {created}"


def selected_run_id(runs: list[RunRecord]) -> str | None:
    """Return the run this session looks at: its last choice, else the newest active run, else the newest."""
    known = {record.run_id for record in runs}
    chosen = st.session_state.get("run_id")
    if chosen in known:
        return chosen
    for record in runs:
        if record.is_active:
            return record.run_id
    return runs[0].run_id if runs else None


def run_picker(runs: list[RunRecord], key: str) -> RunRecord | None:
    """Show a run selectbox and remember the choice for the other pages."""
    if not runs:
        return None
    ids = [record.run_id for record in runs]
    by_id = {record.run_id: record for record in runs}
    labels = {record.run_id: run_label(record) for record in runs}
    current = selected_run_id(runs)
    if st.session_state.get(key) != current:
        # Another page chose a run since this picker was drawn.
        st.session_state[key] = current
    resend_when_relabelled(key, labels.__getitem__)
    choice = st.selectbox(t("common.run"), ids, format_func=labels.__getitem__, key=key,
                          on_change=_remember_run, args=(key,))
    st.session_state["run_id"] = choice
    return by_id[choice]


def _remember_run(key: str) -> None:
    st.session_state["run_id"] = st.session_state[key]


_SHOWN_LABEL_PREFIX = "edutune_shown_label_"


def resend_when_relabelled(key: str, format_func) -> None:
    """Make a selectbox or multiselect show its selection with the labels of this run.

    Streamlit 1.67 sends a selected value to the browser only when the value changes, so
    the browser keeps the old label of a selected option whose label changed, for example
    after a language switch or when the selected run finished. Writing the value back
    into the session state makes Streamlit send it again with the new label. Call this
    before the widget is drawn.
    """
    marker = _SHOWN_LABEL_PREFIX + key
    if key not in st.session_state:
        st.session_state.pop(marker, None)
        return
    value = st.session_state[key]
    try:
        labels = [format_func(item) for item in value] if isinstance(value, list) else format_func(value)
    except KeyError:
        # The selection is no longer an option, and the widget resets it itself.
        return
    if marker in st.session_state and st.session_state[marker] != labels:
        st.session_state[key] = value
    st.session_state[marker] = labels


# Widget keys whose values outlive a visit to another page; pages add theirs through
# ``keep_widget_state``, and ``setup_page`` keeps them on every page.
_KEPT_KEYS: set[str] = set()
_BACKUP_PREFIX = "edutune_kept_"


def keep_widget_state(*keys: str) -> None:
    """Keep widget values when the user visits another page and comes back.

    Streamlit drops the state of widgets that a script run did not draw, and a fragment
    run of a live chart that ends after a page switch drops them as well. So each value
    is also copied under a key that no widget uses, which Streamlit never drops, and
    copied back when the widget's own key is gone. ``setup_page`` does this for every
    key registered here, on every page.
    """
    _KEPT_KEYS.update(keys)
    for key in keys:
        backup = _BACKUP_PREFIX + key
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
            st.session_state[backup] = st.session_state[key]
        elif backup in st.session_state:
            st.session_state[key] = st.session_state[backup]


# Label keys of the settings that the Train page offers, so that a message about an
# invalid setting names the field as the teacher reads it, not the ``TrainConfig`` field.
SETTING_LABELS = {
    "learning_rate": "train.learning_rate", "epochs": "train.epochs", "batch_size": "train.batch_size",
    "max_length": "train.max_length", "seed": "train.seed", "validation_share": "train.validation_share",
    "weight_decay": "adv.weight_decay", "warmup_share": "adv.warmup", "folds": "adv.folds",
    "max_grad_norm": "adv.clip", "accumulation_steps": "adv.accumulation", "early_stopping_patience": "adv.patience",
    "freeze_layers": "adv.freeze_layers", "lora_rank": "adv.lora_rank", "optimizer": "adv.optimizer",
    "scheduler": "adv.scheduler", "precision": "adv.precision", "device": "adv.device", "truncation": "adv.truncation",
}


def config_is_valid(config) -> bool:
    """Show every problem of a ``TrainConfig`` and return True when it has none."""
    problems = config.problems()
    for problem in problems:
        setting = problem.params.get("setting")
        if setting in SETTING_LABELS:
            problem = type(problem)(problem.key, **{**problem.params, "setting": t(SETTING_LABELS[setting])})
        show_error(problem)
    return not problems


def forget_widget_state(*keys: str) -> None:
    """Drop widget values on purpose, so that the widgets start afresh; their backups go too."""
    for key in keys:
        st.session_state.pop(key, None)
        st.session_state.pop(_BACKUP_PREFIX + key, None)


SAMPLE_DIR = Path(__file__).resolve().parents[2] / "sample_data"
# Session key with the name of the file whose data the Data page failed to prepare.
DATA_NOT_READY_KEY = "dataset_not_ready"


def dataset() -> dict | None:
    """Return the data prepared on the Data page: frame, file name and column mapping.

    A new session, such as after a browser refresh, rebuilds the data last prepared on
    the Data page from the selection stored with the uploads. It returns None while the
    Data page's current choice fails to prepare, so that no earlier data is used.
    """
    if "dataset" not in st.session_state and DATA_NOT_READY_KEY not in st.session_state:
        saved = uploads().last_selection() or {}
        if saved.get("dataset") is None and saved.get("name"):
            st.session_state[DATA_NOT_READY_KEY] = saved["name"]
        st.session_state["dataset"] = _restore_dataset(saved)
    return st.session_state.get("dataset")


def data_not_ready() -> str | None:
    """Return the name of the file that the Data page failed to prepare, or None."""
    dataset()
    return st.session_state.get(DATA_NOT_READY_KEY)


def chosen_file_path(choice: str) -> Path | None:
    """Return the file of a Data page choice key (``upload:<id>`` or ``sample:<name>``), or None when it is gone."""
    kind, _, name = choice.partition(":")
    if kind == "sample":
        path = SAMPLE_DIR / name
        return path if path.parent == SAMPLE_DIR and path.is_file() else None
    if kind == "upload":
        return next((item.path for item in uploads().recent() if item.upload_id == name), None)
    return None


def _restore_dataset(saved: dict) -> dict | None:
    """Rebuild the dataset of a stored selection the way the Data page built it, or return None."""
    prepared = saved.get("dataset")
    if not prepared:
        return None
    try:
        frame = _rebuild_frame(saved["choice"], prepared["name"], prepared["source"])
        if frame is None:
            return None
        mapping = ColumnMapping.from_dict(prepared["mapping"])
        prepare_data(frame, mapping)
    except (EduTuneError, OSError, KeyError, TypeError, ValueError) as error:
        logger.warning("failed to restore the last data %r: %s", prepared.get("name"), error)
        return None
    restored = {key: prepared.get(key) for key in ("name", "privacy", "suggest_class_weights", "intake", "profile")}
    return restored | {"frame": frame, "mapping": mapping}


def _rebuild_frame(choice: str, file_name: str, source: dict):
    """Repeat the Data page's steps: load, join the labels file, protect privacy, drop invalid scores."""
    path = chosen_file_path(choice)
    if path is None:
        return None
    frame = load_table(path.read_bytes(), file_name, **source["loading"]).frame
    labels = source.get("labels")
    if labels:
        upload = next((item for item in uploads().recent() if item.upload_id == labels["upload_id"]), None)
        if upload is None:
            return None
        table = load_table(upload.path.read_bytes(), upload.file_name).frame
        frame = intake.join_labels(frame, table, labels["text_id"], labels["label_id"], texts_name=file_name,
                                   labels_name=upload.file_name).frame
    report = privacy.scan_privacy(frame)
    actions = source["privacy_actions"]
    if {finding.column for finding in report.findings} != set(actions):
        # A column with personal data but no stored action would reach training unprotected.
        logger.warning("the personal data found in %r changed since it was prepared", file_name)
        return None
    frame, _ = privacy.apply_privacy(frame, report, actions)
    if source.get("drop_non_numeric_target"):
        frame, _ = intake.drop_non_numeric_target(frame, source["target"],
                                                  allow_decimal_comma=source["allow_decimal_comma"])
    return frame
