"""Sweep controls: queue a grid of runs or a budgeted search from the Train page, rank them on the Compare page."""

from __future__ import annotations

import plotly.express as px
import streamlit as st

from edutune_core.config import TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.runner import create_run, prepare_resume
from edutune_core.runstore import ACTIVE_STATUSES, INTERRUPTED, STOPPED, RunRecord
from edutune_core.search import search_summary
from edutune_core.sweep import SWEEP_SETTINGS, new_sweep_id, parse_values, ranked_sweep, sweep_configs, sweep_runs
from pages.common.search_view import drivers, search_form, search_status, search_stop_and_resume
from pages.common.ui import forget_widget_state, manager, option_labels, show_error, store, t

SETTINGS = (None, *SWEEP_SETTINGS)
MODES = ("grid", "search")
# Seconds between redraws of the sweep results while runs of the sweep are active.
LIVE_SECONDS = 2.0


def sweep_form(data: dict, base: TrainConfig) -> None:
    """Draw the sweep form under the training settings and queue the runs it describes."""
    with st.expander(t("sweep.title")):
        mode = st.radio(t("search.mode"), MODES, key="sweep_mode", format_func=option_labels("search.mode", MODES))
        if mode == "search":
            search_form(data, base)
            return
        st.caption(t("sweep.help"))
        grid_text = {}
        for number in (1, 2):
            columns = st.columns([1, 2])
            setting = columns[0].selectbox(t("sweep.setting", number=number), SETTINGS, key=f"sweep_setting_{number}",
                                           format_func=lambda name: name or t("sweep.none"))
            text = columns[1].text_input(t("sweep.values"), key=f"sweep_values_{number}")
            if setting:
                grid_text[setting] = text
        if st.button(t("sweep.start"), key="sweep_start", disabled=not grid_text):
            start_sweep(data, base, grid_text)


def start_sweep(data: dict, base: TrainConfig, grid_text: dict[str, str]) -> None:
    try:
        grid = {setting: parse_values(setting, text) for setting, text in grid_text.items()}
        configs = sweep_configs(base, grid)
    except EduTuneError as error:
        show_error(error)
        return
    sweep_id = new_sweep_id()
    for values, config in configs:
        label = ", ".join(f"{name}={value}" for name, value in values.items())
        try:
            record = create_run(store(), data["frame"], data["mapping"], config, data_name=data["name"],
                                name=f"{data['name']} · {label}",
                                extra_summary={"sweep": {"id": sweep_id, "values": values}})
        except EduTuneError as error:
            show_error(error)
            return
        manager().submit(record.run_id)
    st.session_state["compare_sweep"] = sweep_id
    st.success(t("sweep.started", runs=len(configs)))


def sweep_section(runs: list[RunRecord]) -> None:
    """On the Compare page: pick a sweep, rank its runs, plot the metric against each setting."""
    sweeps = {}
    for record in runs:
        sweep = record.summary.get("sweep")
        if sweep:
            sweeps.setdefault(sweep["id"], record.created_at)
    if not sweeps:
        return
    if st.session_state.get("compare_sweep") not in sweeps:
        # A sweep started on the Train page before its first run was recorded.
        forget_widget_state("compare_sweep")
    st.subheader(t("sweep.ranked"))
    chosen = st.selectbox(t("sweep.choose"), sorted(sweeps, key=sweeps.get, reverse=True), key="compare_sweep")
    records = sweep_runs(runs, chosen)
    is_search = search_summary(records[0]) is not None
    search_running = search_status(chosen) if is_search else False
    if search_running or any(record.is_active for record in records):
        _live_sweep_results(chosen, is_search)
    else:
        _sweep_results(records)
    if is_search:
        search_stop_and_resume(chosen, records)
    else:
        stop_and_resume(records)


@st.fragment(run_every=LIVE_SECONDS)
def _live_sweep_results(sweep_id: str, is_search: bool) -> None:
    records = [record for record in sweep_runs(store().list_runs(), sweep_id) if record.status != "deleted"]
    _sweep_results(records)
    if is_search and drivers().is_running(sweep_id):
        return
    if not any(record.is_active for record in records):
        # Every run has ended since the last redraw: redraw the page once, without polling.
        st.rerun()


def _sweep_results(records: list[RunRecord]) -> None:
    if not records:
        return
    ranked = ranked_sweep(records)
    st.dataframe(ranked.drop(columns=["run_id"]), hide_index=True, width="stretch")
    primary = ranked["primary"].iloc[0] if not ranked.empty else None
    for setting in records[0].summary["sweep"]["values"]:
        if primary in ranked:
            figure = px.scatter(ranked, x=setting, y=primary, color="status", height=300,
                                title=t("sweep.metric_by_setting", metric=primary, setting=setting),
                                log_x=setting == "learning_rate")
            st.plotly_chart(figure, width="stretch")


def stop_and_resume(records: list[RunRecord]) -> None:
    # Runs shared by another user can be watched here but only their owner stops or resumes them.
    records = [record for record in records if store().can_change(record)]
    if not records:
        return
    columns = st.columns(2)
    if columns[0].button(t("sweep.stop"), key="sweep_stop"):
        for record in records:
            if record.status in ACTIVE_STATUSES:
                manager().stop(record.run_id)
        st.rerun()
    if columns[1].button(t("sweep.resume"), key="sweep_resume"):
        for record in records:
            if record.status in (STOPPED, INTERRUPTED):
                try:
                    prepare_resume(store(), record.run_id)
                    manager().submit(record.run_id, resume=True)
                except EduTuneError:
                    # A run cancelled before it started has no checkpoint: train it anew.
                    store().set_status(record.run_id, "queued")
                    manager().submit(record.run_id)
        st.rerun()
