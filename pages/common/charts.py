"""Plotly figures for training curves and confusion matrices."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from edutune_core.metrics import PRIMARY_METRIC, SCALAR_METRICS
from pages.common.ui import t


def loss_figure(train: pd.DataFrame, validation: pd.DataFrame) -> go.Figure:
    """Train loss per step and validation loss per epoch, on the step axis."""
    figure = go.Figure()
    if "loss" in train:
        figure.add_scatter(x=train["step"], y=train["loss"], mode="lines", name=t("chart.train_loss"))
    if "loss" in validation:
        figure.add_scatter(x=validation["step"], y=validation["loss"], mode="lines+markers",
                           name=t("chart.validation_loss"))
    figure.update_layout(title=t("chart.loss"), xaxis_title=t("chart.step"), yaxis_title=t("chart.loss"),
                         height=320, margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure


def metric_figure(validation: pd.DataFrame, family: str) -> go.Figure:
    """Validation metrics per epoch, the primary one first, plus the learning rate below."""
    figure = make_subplots(specs=[[{"secondary_y": False}]])
    primary, _ = PRIMARY_METRIC[family]
    names = [primary] + [name for name in SCALAR_METRICS if name in validation and name != primary]
    for index, name in enumerate(name for name in names if name in validation):
        figure.add_scatter(x=validation["epoch"], y=validation[name], mode="lines+markers", name=t(f"metric.{name}"),
                           visible=True if index < 3 else "legendonly")
    figure.update_layout(title=t("chart.validation_metrics"), xaxis_title=t("chart.epoch"), height=320,
                         margin={"t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return figure


def learning_rate_figure(train: pd.DataFrame) -> go.Figure:
    figure = go.Figure()
    if "learning_rate" in train:
        figure.add_scatter(x=train["step"], y=train["learning_rate"], mode="lines", name=t("chart.learning_rate"))
    figure.update_layout(title=t("chart.learning_rate"), xaxis_title=t("chart.step"), height=260,
                         margin={"t": 40, "b": 40})
    return figure


def confusion_figure(matrix: list[list[int]], labels: list[str]) -> go.Figure:
    figure = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", text=matrix,
                                  texttemplate="%{text}", showscale=False))
    figure.update_layout(title=t("chart.confusion"), xaxis_title=t("chart.predicted"), yaxis_title=t("chart.actual"),
                         yaxis={"autorange": "reversed", "type": "category"}, xaxis={"type": "category"},
                         height=380, margin={"t": 40})
    return figure


def lr_range_figure(rates: list[float], losses: list[float], suggestion: float | None) -> go.Figure:
    """Loss against learning rate on a log axis, with the suggested rate marked."""
    figure = go.Figure()
    figure.add_scatter(x=rates, y=losses, mode="lines+markers", name=t("chart.train_loss"))
    if suggestion:
        figure.add_vline(x=suggestion, line_dash="dash", line_color="green",
                         annotation_text=t("lr.suggested_short", rate=f"{suggestion:.1e}"))
    figure.update_layout(title=t("lr.chart"), xaxis_title=t("chart.learning_rate"), yaxis_title=t("chart.loss"),
                         xaxis_type="log", height=360, margin={"t": 40})
    return figure
