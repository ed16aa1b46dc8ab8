"""Plotly figures for the evaluation on the Results and Predict pages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from sklearn.metrics import roc_curve

from pages.common.ui import t

_LAYOUT = {"height": 340, "margin": {"t": 40, "b": 40}, "legend": {"orientation": "h", "y": -0.25}}


def distribution_figure(distribution: dict) -> go.Figure:
    """Plot how often the teacher and the model give each score point."""
    points = [str(point) for point in distribution["points"]]
    figure = go.Figure()
    figure.add_bar(x=points, y=distribution["teacher"], name=t("chart.teacher_scores"))
    figure.add_bar(x=points, y=distribution["model"], name=t("chart.model_scores"))
    figure.update_layout(title=t("chart.distribution"), xaxis_title=t("chart.score_point"),
                         yaxis_title=t("chart.count"), barmode="group", xaxis={"type": "category"}, **_LAYOUT)
    return figure


def predicted_actual_figure(actual: np.ndarray, predicted: np.ndarray) -> go.Figure:
    """Plot each validation row as a point, with the line where prediction equals actual."""
    figure = go.Figure(go.Scatter(x=actual, y=predicted, mode="markers", opacity=0.6, name=t("results.prediction")))
    low = float(min(np.min(actual), np.min(predicted)))
    high = float(max(np.max(actual), np.max(predicted)))
    figure.add_shape(type="line", x0=low, y0=low, x1=high, y1=high, line={"dash": "dot", "color": "gray"})
    figure.update_layout(title=t("results.scatter"), xaxis_title=t("results.target"),
                         yaxis_title=t("results.prediction"), **_LAYOUT)
    return figure


def roc_figure(is_positive: np.ndarray, probability: np.ndarray, roc_auc: float | None) -> go.Figure:
    """Plot the ROC curve of one class, with the diagonal of a model that guesses."""
    false_positive_rate, true_positive_rate, _ = roc_curve(is_positive, probability)
    figure = go.Figure(go.Scatter(x=false_positive_rate, y=true_positive_rate, mode="lines", name="ROC"))
    figure.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "gray"})
    title = t("chart.roc", auc="-" if roc_auc is None else f"{roc_auc:.3f}")
    figure.update_layout(title=title, xaxis_title=t("chart.false_positive_rate"),
                         yaxis_title=t("chart.true_positive_rate"), **_LAYOUT)
    return figure


def calibration_figure(calibration: dict) -> go.Figure:
    """Plot the observed share of the class against the mean predicted probability, per probability bin."""
    sizes = np.clip(np.sqrt(np.asarray(calibration["count"], dtype=float)) * 4, 6, 30)
    figure = go.Figure(go.Scatter(x=calibration["predicted"], y=calibration["observed"], mode="lines+markers",
                                  marker={"size": sizes}, text=calibration["count"],
                                  hovertemplate="%{x:.2f} → %{y:.2f} (n=%{text})", name=t("chart.calibration")))
    figure.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "gray"})
    figure.update_layout(title=t("chart.calibration"), xaxis_title=t("chart.mean_probability"),
                         yaxis_title=t("chart.observed_share"), xaxis={"range": [0, 1]}, yaxis={"range": [0, 1]},
                         **_LAYOUT)
    return figure


def threshold_figure(curve: pd.DataFrame, chosen: float) -> go.Figure:
    """Plot recall and students flagged for every threshold, with the chosen threshold marked."""
    figure = go.Figure()
    figure.add_scatter(x=curve["threshold"], y=curve["recall"], mode="lines", name=t("threshold.recall_axis"))
    rows = max(1, int(curve["flagged"].max()))
    figure.add_scatter(x=curve["threshold"], y=curve["flagged"] / rows, mode="lines",
                       name=t("threshold.flagged_axis"))
    figure.add_vline(x=chosen, line={"dash": "dash", "color": "gray"})
    figure.update_layout(title=t("threshold.chart"), xaxis_title=t("threshold.threshold"), yaxis={"range": [0, 1.05]},
                         **_LAYOUT)
    return figure


def bars_figure(names: list[str], values: list[float], title: str, axis_title: str) -> go.Figure:
    """Plot horizontal bars in the given order from the top, positive values green and negative red."""
    colors = ["#2e7d32" if value >= 0 else "#c62828" for value in values]
    figure = go.Figure(go.Bar(x=values[::-1], y=[str(name) for name in names][::-1], orientation="h",
                              marker={"color": colors[::-1]}))
    figure.update_layout(title=title, xaxis_title=axis_title, height=max(240, 28 * len(names) + 100),
                         margin={"t": 40, "b": 40})
    return figure


def folds_figure(folds: list[dict], name: str) -> go.Figure:
    """Plot one bar per fold for metric ``name``, with the mean as a dashed line."""
    values = [fold[name] for fold in folds]
    figure = go.Figure(go.Bar(x=[str(fold["fold"]) for fold in folds], y=values, name=t(f"metric.{name}")))
    figure.add_hline(y=float(np.mean(values)), line={"dash": "dash", "color": "gray"})
    figure.update_layout(title=t("cv.chart", metric=t(f"metric.{name}")), xaxis_title=t("cv.fold"),
                         xaxis={"type": "category"}, height=300, margin={"t": 40, "b": 40})
    return figure


def curve_figure(rows: list[int], series: dict[str, list[float]], metric_name: str) -> go.Figure:
    """Plot one line per model: the metric against the number of training rows."""
    figure = go.Figure()
    for name, values in series.items():
        figure.add_scatter(x=rows, y=values, mode="lines+markers", name=name)
    figure.update_layout(title=t("curve.title"), xaxis_title=t("curve.rows"), yaxis_title=metric_name, **_LAYOUT)
    return figure
