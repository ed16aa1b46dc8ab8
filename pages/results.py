"""Results page: the metrics of a finished run on its validation data, and how far to trust them."""

import streamlit as st

from edutune_core.evaluation import ValidationSet, load_validation
from edutune_core.i18n import EduTuneError
from edutune_core.metrics import metric_family
from edutune_core.predict import Predictor
from edutune_core.progress import curves
from pages.common import results_sections as sections
from pages.common.charts import loss_figure, metric_figure
from pages.common.ui import run_picker, setup_page, show_error, show_run_error, store, t, task_name


@st.cache_resource(max_entries=2, show_spinner=False)
def load_results_predictor(run_dir: str, saved_at: float) -> Predictor:
    # ``saved_at`` is part of the cache key, so a run saved again is loaded again.
    return Predictor(run_dir)


def validation_or_none(record) -> ValidationSet | None:
    try:
        return load_validation(record)
    except EduTuneError as error:
        show_error(error)
        return None


setup_page("nav.results")
st.title(t("results.title"))
runs = [record for record in store().list_runs() if record.metrics or record.status == "failed"]
record = run_picker(runs, key="results_run")
if record is None:
    st.info(t("results.none"))
    st.page_link("pages/train.py", label=t("nav.train"), icon="🏋️")
    st.stop()
if record.status == "failed":
    show_run_error(record)
    st.stop()

metrics = record.metrics
summary = record.summary
family = metric_family(summary.get("problem", "classification"), summary.get("score_points"))
validation = validation_or_none(record)
rows = len(validation) if validation is not None else summary.get("validation_rows")
st.write(t("results.line", task=task_name(record.task), model=record.model, rows=rows or "-",
           epoch=f"{metrics.get('epoch', 0):.0f}"))
st.caption(t(f"results.explain.{family}"))
sections.metric_cells(metrics)
if "folds" in metrics:
    sections.folds_section(metrics, family)

baseline = sections.baseline_section(record)
at_risk = sections.at_risk_label_picker(record, validation)
group_columns = record.config.get("mapping", {}).get("group_columns") or []
groups, threshold = None, None

tab_names = ["details", "threshold", "groups", "rater", "examples", "curve", "report"]
tabs = dict(zip(tab_names, st.tabs([t(f"results.tab.{name}") for name in tab_names])))
with tabs["details"]:
    sections.details_section(metrics, validation, at_risk)
    if validation is not None:
        with st.expander(t("results.predictions")):
            st.dataframe(validation.predictions.rename(columns={"row": t("results.row"), "target": t("results.target"),
                                                                "prediction": t("results.prediction")}),
                         hide_index=True)
with tabs["threshold"]:
    if validation is not None and at_risk is not None:
        threshold = sections.threshold_section(record, validation, at_risk)
    else:
        st.info(t("threshold.two_classes_only"))
with tabs["groups"]:
    if validation is not None:
        groups = sections.groups_section(validation, group_columns, at_risk, threshold)
with tabs["rater"]:
    if validation is not None and validation.family == "score":
        sections.rater_section(validation)
    else:
        st.info(t("rater.scores_only"))
with tabs["examples"]:
    if validation is not None:
        sections.examples_section(validation)
        model_file = record.run_dir / "model" / "edutune.json"
        if validation.mapping.text_column is None and model_file.exists():
            st.subheader(t("importance.title"))
            predictor = load_results_predictor(str(record.run_dir), model_file.stat().st_mtime)
            sections.importance_section(record, validation, predictor)
with tabs["curve"]:
    sections.learning_curve_section(record, family)
with tabs["report"]:
    sections.report_section(record, baseline, groups)

train, validation_curve = curves(store().points(record.run_id))
left, right = st.columns(2)
left.plotly_chart(loss_figure(train, validation_curve), width="stretch")
right.plotly_chart(metric_figure(validation_curve, family), width="stretch")
st.page_link("pages/predict.py", label=t("results.next"), icon="✍️")
