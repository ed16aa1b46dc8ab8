"""Budgeted search controls: the form on the Train page, progress, stop and resume on the Compare page."""

from __future__ import annotations

import streamlit as st

from edutune_core.config import TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.runstore import ACTIVE_STATUSES, RunRecord, default_home
from edutune_core.search import SEARCH_SETTINGS, STUDY_FILE, SearchDrivers, create_search, parse_space, search_info
from edutune_core.tasks import TABULAR, task_for
from pages.common.ui import manager, server_store, show_error, store, t

PLACEHOLDERS = {"learning_rate": "1e-5, 1e-3", "batch_size": "8, 16, 32", "epochs": "2, 6", "freeze_layers": "0, 4"}
DEFAULT_BUDGET = 6


@st.cache_resource
def _drivers(home: str) -> SearchDrivers:
    # One set of search drivers per server process and data folder, beside the job manager.
    # They see every run; each search's runs are created for the user who started it.
    return SearchDrivers(server_store(), manager())


def drivers() -> SearchDrivers:
    return _drivers(str(default_home()))


def search_form(data: dict, base: TrainConfig) -> None:
    """Draw the ranges and the budget, and start a search when asked."""
    st.caption(t("search.help"))
    text_task = task_for(data["mapping"]) != TABULAR
    settings = [setting for setting in SEARCH_SETTINGS if text_task or setting != "freeze_layers"]
    columns = st.columns(2)
    texts = {}
    for index, setting in enumerate(settings):
        texts[setting] = columns[index % 2].text_input(t(f"search.{setting}"), key=f"search_{setting}",
                                                       placeholder=PLACEHOLDERS[setting],
                                                       help=t(f"search.{setting}_help"))
    # No min or max on the field: create_search rejects a budget outside 1 - MAX_TRIALS with
    # a message that names the value, where the widget would silently keep the old one.
    budget = st.number_input(t("search.budget"), value=DEFAULT_BUDGET, step=1, key="search_budget",
                             help=t("search.budget_help"))
    if st.button(t("search.start"), key="search_start"):
        start_search(data, base, texts, int(budget))


def start_search(data: dict, base: TrainConfig, texts: dict[str, str], budget: int) -> None:
    try:
        space = parse_space(texts)
        search_id = create_search(store(), data["frame"], data["mapping"], base, space, budget,
                                  data_name=data["name"])
    except EduTuneError as error:
        show_error(error)
        return
    drivers().start(search_id)
    st.session_state["compare_sweep"] = search_id
    st.success(t("search.started", runs=budget))


def search_status(search_id: str) -> bool:
    """Show the search's progress and state; return whether it is still running."""
    try:
        info = search_info(store(), search_id)
    except KeyError:
        st.warning(t("search.not_found", search_id=search_id, file=str(store().home / STUDY_FILE)))
        return False
    best = f"{info.best_value:.4g}" if info.best_value is not None else "-"
    st.caption(t("search.progress", finished=info.finished, budget=info.budget, metric=info.metric, best=best))
    running = drivers().is_running(search_id)
    if running:
        st.caption(t("search.running"))
    elif info.done:
        st.caption(t("search.done"))
    else:
        st.caption(t("search.paused"))
    return running


def search_stop_and_resume(search_id: str, records: list[RunRecord]) -> None:
    """Stop or resume a search. A search started by an earlier server process resumes from its study."""
    running = drivers().is_running(search_id)
    columns = st.columns(2)
    if columns[0].button(t("sweep.stop"), key="sweep_stop", disabled=not running and not any(
            record.status in ACTIVE_STATUSES for record in records)):
        drivers().stop(search_id)
        for record in records:
            if record.status in ACTIVE_STATUSES:
                manager().stop(record.run_id)
        st.rerun()
    if columns[1].button(t("sweep.resume"), key="sweep_resume", disabled=running):
        try:
            started = drivers().start(search_id)
        except KeyError:
            st.warning(t("search.not_found", search_id=search_id, file=str(store().home / STUDY_FILE)))
            return
        if started:
            st.success(t("search.resumed"))
        else:
            st.info(t("search.done"))
