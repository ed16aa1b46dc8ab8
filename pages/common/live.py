"""The live view of one run: status, progress, time left, curves and the Stop button."""

from __future__ import annotations

import streamlit as st

from edutune_core.checkpoint import find_checkpoint
from edutune_core.executor import waiting_message
from edutune_core.i18n import EduTuneError
from edutune_core.metrics import metric_family
from edutune_core.progress import current_time, curves, format_duration, progress_of
from edutune_core.runner import prepare_resume
from edutune_core.runstore import FINAL_STATUSES, INTERRUPTED, STOPPED, RunRecord
from pages.common.charts import learning_rate_figure, loss_figure, metric_figure
from pages.common.ui import language, manager, show_error, show_run_error, status_name, store, t

POLL_SECONDS = 1.0


def run_panel(run_id: str) -> None:
    """Draw the run; while it is active, redraw it about once a second from the store."""
    if store().get_run(run_id).is_active:
        _live_panel(run_id)
    else:
        _draw(store().get_run(run_id))


@st.fragment(run_every=POLL_SECONDS)
def _live_panel(run_id: str) -> None:
    record = store().get_run(run_id)
    _draw(record)
    if record.status in FINAL_STATUSES:
        # The run ended since the last poll: redraw the page once, without polling.
        st.rerun()


def _draw(record: RunRecord) -> None:
    train, validation = curves(store().points(record.run_id))
    progress = progress_of(record, train, current_time())
    header = st.columns([3, 1])
    header[0].markdown(f"**{record.name}** · {status_name(record.status)}")
    if not store().can_change(record):
        # Another user's shared run: it can be watched but not stopped or resumed.
        st.caption(t("run.not_yours"))
    elif record.is_active and header[1].button(t("train.stop"), key=f"stop_{record.run_id}", type="secondary",
                                             help=t("train.stop_help")):
        if not manager().stop(record.run_id):
            st.warning(t("train.stop_not_here"))
    resumable = (record.status in (STOPPED, INTERRUPTED) and store().can_change(record)
                 and find_checkpoint(record.run_dir) is not None)
    if resumable and header[1].button(t("train.resume"), key=f"resume_{record.run_id}", type="primary",
                                      help=t("train.resume_help")):
        _resume(record.run_id)
    if record.status == INTERRUPTED:
        st.warning(t("train.interrupted"))
    position = manager().queue_position(record.run_id)
    if position is not None:
        st.info(t("train.queued", position=position))
    waiting = waiting_message(record, store().events(record.run_id), language())
    if waiting:
        st.info(waiting)
    hardware = record.summary.get("hardware")
    if hardware:
        passes = (t("train.passes", tokens=f"{hardware['tokens_per_pass']:,}") if hardware.get("tokens_per_pass")
                  else "")
        st.caption(t("train.hardware", device=hardware["device"], precision=hardware["precision"]) + passes)
    if record.summary.get("data_parallel"):
        st.caption(t("cluster.data_parallel", **record.summary["data_parallel"]))
    if record.status == "failed":
        show_run_error(record)

    if record.summary.get("demo"):
        _demo_explanation(record, progress.step, len(validation))
    st.progress(progress.fraction, text=t("train.progress", step=progress.step, total=progress.total_steps or "?",
                                          epoch=f"{progress.epoch:.2f}"))
    cells = st.columns(4)
    cells[0].metric(t("train.elapsed"), format_duration(progress.elapsed_seconds))
    cells[1].metric(t("train.time_left"), format_duration(progress.seconds_left) if record.is_active else "-")
    cells[2].metric(t("train.loss"), "-" if progress.loss is None else f"{progress.loss:.4f}")
    cells[3].metric(t("train.learning_rate"), "-" if progress.learning_rate is None else f"{progress.learning_rate:.2e}")

    left, right = st.columns(2)
    left.plotly_chart(loss_figure(train, validation), width="stretch", key=f"loss_{record.run_id}")
    family = metric_family(record.summary.get("problem", "classification"),
                           record.summary.get("score_points"))
    right.plotly_chart(metric_figure(validation, family), width="stretch", key=f"metric_{record.run_id}")
    with st.expander(t("chart.learning_rate")):
        st.plotly_chart(learning_rate_figure(train), width="stretch", key=f"lr_{record.run_id}")


def _resume(run_id: str) -> None:
    try:
        prepare_resume(store(), run_id)
    except EduTuneError as error:
        show_error(error)
        return
    manager().submit(run_id, resume=True)
    st.rerun()


def _demo_explanation(record: RunRecord, step: int, epochs_done: int) -> None:
    """Say which part of the fine-tuning loop a demo run is in, in plain words."""
    from edutune_core.demo import demo_stage

    stage = demo_stage(record.status != "queued", step, record.total_steps, epochs_done,
                       record.status in FINAL_STATUSES)
    st.info(t(stage, model=record.model, step=step, epochs=epochs_done))
    if stage == "demo.stage.done":
        st.page_link("pages/predict.py", label=t("demo.try_model"), icon=":material/edit_note:")
