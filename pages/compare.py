"""Compare page: several runs' curves on one chart, their settings and metrics side by side."""

import functools

import plotly.express as px
import streamlit as st

from edutune_core.compare import (
    ALIGNMENTS,
    IMAGE_TYPES,
    aligned_curves,
    chromium_path,
    figure_image,
    metrics_table,
    points_csv,
    settings_table,
    tensorboard_zip,
)
from edutune_core.metrics import SCALAR_METRICS
from pages.common.labels_view import label_editor, run_filters
from pages.common.sweep_view import sweep_section
from pages.common.ui import option_labels, resend_when_relabelled, run_label, setup_page, store, t

CURVES = {"train:loss": ("train", "loss"), "train:learning_rate": ("train", "learning_rate"),
          "validation:loss": ("validation", "loss"),
          **{f"validation:{name}": ("validation", name) for name in SCALAR_METRICS}}


def image_downloads(figure) -> None:
    """Offer the chart as PNG and SVG; Kaleido draws the image only when a button is clicked."""
    if chromium_path() is None:
        st.info(t("compare.image_no_browser"))
        return
    columns = st.columns(len(IMAGE_TYPES))
    for column, (fmt, mime) in zip(columns, IMAGE_TYPES.items()):
        # NOTE: when drawing fails after the click, the reader sees only Streamlit's own
        # "Failed to generate file for download"; figure_image logs the cause.
        column.download_button(t(f"compare.download_{fmt}"), functools.partial(figure_image, figure, fmt),
                               file_name=f"edutune-chart.{fmt}", mime=mime, key=f"compare_image_{fmt}")


setup_page("nav.compare")
st.title(t("compare.title"))
runs = [record for record in store().list_runs() if record.status != "deleted"]
if len(runs) < 1:
    st.info(t("history.none"))
    st.stop()
sweep_section(runs)
runs = run_filters(runs)
labels = {record.run_id: run_label(record) for record in runs}
resend_when_relabelled("compare_runs", labels.__getitem__)
# The first two runs are proposed only on first draw, because a default next to a value
# written into the session state makes Streamlit log a warning.
proposed = {} if "compare_runs" in st.session_state else {"default": list(labels)[:2]}
chosen = st.multiselect(t("compare.runs"), list(labels), format_func=labels.__getitem__, key="compare_runs",
                        **proposed)
records = [record for record in runs if record.run_id in chosen]
if not records:
    st.stop()

columns = st.columns(3)
curve_labels = option_labels("compare.curve", CURVES)
resend_when_relabelled("compare_curve", curve_labels)
curve = columns[0].selectbox(t("compare.curve"), list(CURVES), key="compare_curve", format_func=curve_labels)
align = columns[1].radio(t("compare.align"), ALIGNMENTS, horizontal=True, key="compare_align",
                         format_func=option_labels("compare.align", ALIGNMENTS))
smoothing = columns[2].slider(t("compare.smoothing"), 0.0, 0.95, 0.0, 0.05, key="compare_smoothing",
                              help=t("compare.smoothing_help"))


split, metric = CURVES[curve]
table = aligned_curves(store(), records, split, metric, align, smoothing)
figure = px.line(table, x="x", y="value", color="run", markers=split == "validation", height=420,
                 labels={"x": t(f"compare.align.{align}"), "value": t(f"compare.curve.{curve}"), "run": ""})
st.plotly_chart(figure, width="stretch")
image_downloads(figure)

st.subheader(t("compare.metrics"))
ranked = metrics_table(records)
st.dataframe(ranked.drop(columns=["run_id"]), hide_index=True, width="stretch")

st.subheader(t("compare.settings"))
settings, differing = settings_table(records)
only_differences = st.checkbox(t("compare.only_differences"), value=True, key="compare_only_differences")
shown = settings.loc[differing] if only_differences else settings
st.dataframe(shown.style.apply(lambda row: ["background-color: #fff3bf" if row.name in differing else ""
                                            for _ in row], axis=1), width="stretch")
label_editor(records)
downloads = st.columns(2)
downloads[0].download_button(t("compare.download_csv"), points_csv(store(), records), file_name="edutune-runs.csv",
                             mime="text/csv")
downloads[1].download_button(t("compare.download_tensorboard"), tensorboard_zip(store(), records),
                             file_name="edutune-tensorboard.zip", mime="application/zip",
                             help=t("compare.download_tensorboard_help"))
