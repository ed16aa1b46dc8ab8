"""History page: every run with its data, settings, curves and metrics; export, import and delete."""

import logging
import time
from functools import partial

import pandas as pd
import streamlit as st

from edutune_core.corrections import CORRECTED_AT, CORRECTED_FROM, corrected_training_rows
from edutune_core.export import MAX_IMPORT_BYTES, export_run, import_run
from edutune_core.i18n import EduTuneError
from edutune_core.report import data_summary_items
from edutune_core.metrics import PRIMARY_METRIC, metric_family
from edutune_core.progress import curves
from edutune_core.runstore import DELETED, RunRecord
from pages.common.charts import loss_figure, metric_figure
from pages.common.ui import current_user, language, run_picker, setup_page, show_error, status_name, store, t, task_name

logger = logging.getLogger(__name__)


def runs_table(runs: list[RunRecord]) -> pd.DataFrame:
    rows = []
    for record in runs:
        family = metric_family(record.summary.get("problem", "classification"), record.summary.get("score_points"))
        primary, _ = PRIMARY_METRIC[family]
        value = (record.metrics or {}).get(primary)
        rows.append({
            t("history.created"): time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created_at)),
            t("history.name"): record.name,
            t("history.status"): status_name(record.status),
            t("history.task"): task_name(record.task),
            t("history.model"): record.model,
            t("history.data"): record.data_name,
            t("history.metric"): "-" if value is None else f"{t(f'metric.{primary}')} {value:.3f}",
        })
    return pd.DataFrame(rows)


def run_details(record: RunRecord) -> None:
    if record.status == DELETED:
        deleted_at = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.updated_at))
        st.info(t("history.deleted", time=deleted_at))
    summary, settings = st.columns(2)
    with summary:
        st.markdown(f"**{t('history.summary')}**")
        st.markdown("\n".join(f"- {item}" for item in data_summary_items(record, language())))
        st.json(record.summary, expanded=False)
    with settings:
        st.markdown(f"**{t('history.settings')}**")
        st.json(record.config, expanded=False)
    if record.metrics:
        st.markdown(f"**{t('history.metrics')}**")
        st.json(record.metrics, expanded=False)
    if record.summary.get("corrected_rows"):
        corrections_section(record)
    train, validation = curves(store().points(record.run_id))
    family = metric_family(record.summary.get("problem", "classification"), record.summary.get("score_points"))
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(train, validation), width="stretch", key=f"history_loss_{record.run_id}")
    right.plotly_chart(metric_figure(validation, family), width="stretch", key=f"history_metric_{record.run_id}")


def corrections_section(record: RunRecord) -> None:
    """List the training rows of a run that came from teachers' corrections, by row and id, without their text."""
    st.markdown(f"**{t('history.corrections_title')}**")
    summary = record.summary
    parent = summary.get("parent_run", "-")
    try:
        parent = store().get_run(parent).name
    except KeyError:
        # The parent run was deleted from the store or belongs to another teacher: show its id.
        pass
    if summary.get("warm_start_from_parent"):
        st.caption(t("history.corrections_warm_start", parent=parent))
    elif "base_model" in summary:
        st.caption(t("history.corrections_fresh_start", parent=parent, model=record.model))
    rows = corrected_training_rows(record)
    if rows is None:
        st.info(t("history.corrections_unavailable"))
        return
    st.markdown(t("history.corrections_line", corrected=len(rows), rows=summary.get("rows", "-"),
                  added=summary["corrected_rows"], parent=parent))
    headers = {"row": t("history.corrections_row"), CORRECTED_FROM: t("history.corrections_from"),
               CORRECTED_AT: t("history.corrections_at"),
               record.config["mapping"]["target"]: t("history.corrections_label")}
    st.dataframe(rows.rename(columns=headers), hide_index=True, width="stretch",
                 key=f"history_corrections_{record.run_id}")


def run_actions(record: RunRecord) -> None:
    left, right = st.columns(2)
    if (record.run_dir / "model" / "edutune.json").exists():
        # The zip of a text model is about 90 MB (the bundled model's weights), so it is built
        # when the button is pressed, not on every rerun. export_run raises only when the
        # model folder is missing, which the check above rules out.
        left.download_button(t("history.export"), partial(export_run, record), file_name=f"edutune-{record.run_id}.zip",
                             mime="application/zip", help=t("history.export_help"), on_click="ignore")
    if not store().can_change(record):
        st.caption(t("history.owner", user=record.owner))
        return
    if current_user() is not None:
        share_toggle(record)
    if record.is_active or record.status == DELETED:
        return
    confirmed = right.checkbox(t("history.confirm_delete"), key=f"confirm_delete_{record.run_id}")
    if right.button(t("history.delete"), key=f"delete_{record.run_id}", disabled=not confirmed,
                    help=t("history.delete_help")):
        delete_files(record)


def share_toggle(record: RunRecord) -> None:
    shared = st.toggle(t("history.share"), value=record.shared, key=f"share_{record.run_id}",
                       help=t("history.share_help"))
    if shared != record.shared:
        store().set_shared(record.run_id, shared)
        st.rerun()


def delete_files(record: RunRecord) -> None:
    try:
        store().mark_deleted(record.run_id)
    except (OSError, ValueError) as error:
        logger.warning("could not delete the files of run %s: %s", record.run_id, error)
        st.error(t("history.delete_failed", reason=getattr(error, "strerror", None) or str(error)))
        return
    st.rerun()


def import_section() -> None:
    """Offer to import a zip exported by EduTune; the import runs when the button is pressed."""
    with st.expander(t("history.import")):
        limit_mb = MAX_IMPORT_BYTES // 2**20
        uploaded = st.file_uploader(t("history.import_upload"), type=["zip"], key="history_import_file",
                                    max_upload_size=limit_mb, help=t("history.import_help", limit=limit_mb))
        if uploaded is None or not st.button(t("history.import"), key="history_import"):
            return
        try:
            record = import_run(store(), uploaded.getvalue(), uploaded.name)
        except EduTuneError as error:
            show_error(error)
            return
        st.session_state["run_id"] = record.run_id
        st.success(t("history.imported", name=record.name))


setup_page("nav.history")
st.title(t("history.title"))
import_section()
runs = store().list_runs()
if not runs:
    st.info(t("history.none"))
    st.stop()
st.dataframe(runs_table(runs), hide_index=True, width="stretch")
record = run_picker(runs, key="history_run")
run_details(record)
run_actions(record)
