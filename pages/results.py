"""Results page: the metrics of a finished run on its validation data."""

import pandas as pd
import plotly.express as px
import streamlit as st

from edutune_core.metrics import SCALAR_METRICS, metric_family
from edutune_core.progress import curves
from pages.common.charts import confusion_figure, loss_figure, metric_figure
from pages.common.ui import run_picker, setup_page, show_run_error, store, t, task_name


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
st.write(t("results.line", task=task_name(record.task), model=record.model, rows=summary.get("validation_rows")
           or "-", epoch=f"{metrics.get('epoch', 0):.0f}"))
st.caption(t(f"results.explain.{family}"))

names = [name for name in SCALAR_METRICS if name in metrics]
cells = st.columns(len(names))
for cell, name in zip(cells, names):
    cell.metric(t(f"metric.{name}"), f"{metrics[name]:.3f}", help=t(f"metric_help.{name}"))

left, right = st.columns([3, 2])
if "confusion_matrix" in metrics:
    left.plotly_chart(confusion_figure(metrics["confusion_matrix"], metrics["labels"]), width="stretch")
if "recall_per_class" in metrics:
    recall = pd.DataFrame({t("results.class"): list(metrics["recall_per_class"]),
                           t("results.recall"): [round(value, 3) for value in metrics["recall_per_class"].values()]})
    right.dataframe(recall, hide_index=True, width="stretch")

predictions_path = record.run_dir / "validation_predictions.csv"
if family != "classification" and predictions_path.exists():
    points = pd.read_csv(predictions_path)
    scatter = px.scatter(points, x="target", y="prediction", opacity=0.6, height=380,
                         labels={"target": t("results.target"), "prediction": t("results.prediction")},
                         title=t("results.scatter"))
    low, high = float(points[["target", "prediction"]].min().min()), float(points[["target", "prediction"]].max().max())
    scatter.add_shape(type="line", x0=low, y0=low, x1=high, y1=high, line={"dash": "dot", "color": "gray"})
    right.plotly_chart(scatter, width="stretch")

if predictions_path.exists():
    with st.expander(t("results.predictions")):
        predictions = pd.read_csv(predictions_path)
        st.dataframe(predictions.rename(columns={"row": t("results.row"), "target": t("results.target"),
                                                 "prediction": t("results.prediction")}), hide_index=True)

train, validation = curves(store().points(record.run_id))
left, right = st.columns(2)
left.plotly_chart(loss_figure(train, validation), width="stretch")
right.plotly_chart(metric_figure(validation, family), width="stretch")
st.page_link("pages/predict.py", label=t("results.next"), icon="✍️")
