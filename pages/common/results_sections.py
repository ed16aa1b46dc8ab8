"""Sections of the Results page: folds, baselines, details, groups, threshold, examples, report.

Each function draws one section from a run and its validation set; the numbers come
from ``edutune_core``.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import streamlit as st

from edutune_core import metrics as metric_lib
from edutune_core.baseline import baseline_metrics
from edutune_core.evaluation import ValidationSet, extreme_examples, rater_agreement, second_rater_columns
from edutune_core.explain import permutation_importance
from edutune_core.fairness import flag_message, group_results, groups_table
from edutune_core.i18n import EduTuneError
from edutune_core.learning_curve import CURVE_FILE, learning_curve
from edutune_core.predict import Predictor
from edutune_core.report import model_report
from edutune_core.runstore import RunRecord
from edutune_core.threshold import (
    ALERT_SUMMARY_KEY,
    AlertRule,
    choose_threshold,
    default_at_risk_label,
    threshold_curve,
)
from pages.common import evaluation_charts as charts
from pages.common.charts import confusion_figure
from pages.common.ui import language, show_error, store, t

logger = logging.getLogger(__name__)


def metric_cells(metrics: dict) -> None:
    """Draw one cell per scalar metric; cross-validated runs show the mean ± its standard deviation."""
    names = [name for name in metric_lib.SCALAR_METRICS if name in metrics]
    spread = metrics.get("spread", {})
    for cell, name in zip(st.columns(len(names)), names):
        # The spread goes on its own line, so a narrow column does not cut it off.
        delta = f"± {spread[name]:.3f}" if name in spread else None
        cell.metric(t(f"metric.{name}"), f"{metrics[name]:.3f}", delta=delta, delta_color="off", delta_arrow="off",
                    help=t(f"metric_help.{name}"))


def folds_section(metrics: dict, family: str) -> None:
    """Show the per-fold values of a cross-validated run."""
    info = metrics["cross_validation"]
    grouped = t("cv.grouped", column=info["grouped_by"]) if info.get("grouped_by") else ""
    st.caption(t("cv.line", folds=len(metrics["folds"]), rows=info["rows"], grouped=grouped))
    if info.get("completed", info["folds"]) < info["folds"]:
        st.warning(t("cv.partial", completed=len(metrics["folds"]), folds=info["folds"]))
    if info.get("final_model") == "best_fold":
        st.caption(t("cv.best_fold_saved"))
    else:
        st.caption(t("cv.final_saved", epochs=info.get("final_epochs")))
    primary, _ = metric_lib.PRIMARY_METRIC[family]
    with st.expander(t("cv.details")):
        st.plotly_chart(charts.folds_figure(metrics["folds"], primary), width="stretch")
        table = pd.DataFrame(metrics["folds"]).round(3)
        st.dataframe(table, hide_index=True, width="stretch")


def baseline_section(record: RunRecord) -> dict | None:
    """Show the fine-tuned model beside the simple baselines on the same split, and return the baselines.

    Cross-validated runs show each value as the mean over the folds ± its standard deviation.
    """
    st.subheader(t("baseline.title"))
    try:
        with st.spinner(t("baseline.computing")):
            baseline = baseline_metrics(record)
    except EduTuneError as error:
        show_error(error)
        return None
    if not baseline["models"]:
        st.info(t("baseline.not_for_images"))
        return baseline
    metrics = record.metrics
    names = [name for name in metric_lib.SCALAR_METRICS if name in metrics]
    rows = [{t("baseline.model"): t("baseline.fine_tuned"),
             **{t(f"metric.{name}"): _mean_and_spread(metrics, name) for name in names}}]
    for kind, values in baseline["models"].items():
        rows.append({t("baseline.model"): t(f"baseline.{kind}"),
                     **{t(f"metric.{name}"): _mean_and_spread(values, name) for name in names}})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    st.caption(t(f"baseline.explain.{baseline['split']}"))
    return baseline


def _mean_and_spread(metrics: dict, name: str) -> float | str | None:
    """Return a metric rounded to 3 places, as "mean ± standard deviation" text when it has a fold spread."""
    value = metrics.get(name)
    if value is None:
        return None
    spread = metrics.get("spread", {})
    if name in spread:
        return f"{value:.3f} ± {spread[name]:.3f}"
    return round(float(value), 3)


def details_section(metrics: dict, validation: ValidationSet | None, at_risk: str | None) -> None:
    """Draw the confusion matrix, per-class precision and recall, score distribution, ROC, calibration and scatter."""
    left, right = st.columns([3, 2])
    if "confusion_matrix" in metrics:
        left.plotly_chart(confusion_figure(metrics["confusion_matrix"], metrics["labels"]), width="stretch")
    if "recall_per_class" in metrics:
        classes = list(metrics["recall_per_class"])
        precision = metrics.get("precision_per_class", {})
        right.dataframe(pd.DataFrame({t("results.class"): classes,
                                      t("results.precision"): [precision.get(label) for label in classes],
                                      t("results.recall"): list(metrics["recall_per_class"].values())}).round(3),
                        hide_index=True, width="stretch")
    if validation is None:
        return
    if validation.family == "score":
        distribution = metric_lib.score_distribution(validation.target_values(), validation.predicted_values(),
                                                     validation.score_points)
        right.plotly_chart(charts.distribution_figure(distribution), width="stretch")
    if validation.family != "classification":
        st.plotly_chart(charts.predicted_actual_figure(validation.target_values(), validation.raw_values()),
                        width="stretch")
    if at_risk is not None and validation.probabilities is not None:
        _binary_charts(validation, at_risk)


def _binary_charts(validation: ValidationSet, at_risk: str) -> None:
    index = validation.labels.index(at_risk)
    is_positive = validation.target_values() == index
    probability = validation.probabilities[:, index]
    values = metric_lib.binary_metrics(is_positive, probability)
    left, right = st.columns(2)
    left.plotly_chart(charts.roc_figure(is_positive, probability, values["roc_auc"]), width="stretch")
    right.plotly_chart(charts.calibration_figure(values["calibration"]), width="stretch")
    st.caption(t("results.binary_caption", label=at_risk, brier=f"{values['brier']:.3f}"))


def at_risk_label_picker(record: RunRecord, validation: ValidationSet | None) -> str | None:
    """For two-class models, let the user pick the class that means "at risk"."""
    if validation is None or validation.labels is None or len(validation.labels) != 2:
        return None
    default = default_at_risk_label(validation.labels, record.summary.get("label_counts"))
    return st.selectbox(t("threshold.at_risk_class"), validation.labels, index=validation.labels.index(default),
                        key="results_at_risk_label", help=t("threshold.at_risk_class_help"))


def threshold_section(record: RunRecord, validation: ValidationSet, at_risk: str) -> float | None:
    """Choose the alert threshold by recall and save it for prediction; return it when applied to the groups."""
    if validation.probabilities is None:
        st.info(t("threshold.no_probabilities"))
        return None
    index = validation.labels.index(at_risk)
    is_positive = validation.target_values() == index
    probability = validation.probabilities[:, index]
    recall = st.slider(t("threshold.target_recall", label=at_risk), min_value=0.5, max_value=1.0, value=0.9,
                       step=0.05, key="results_target_recall", help=t("threshold.target_recall_help"))
    try:
        choice = choose_threshold(is_positive, probability, recall)
    except EduTuneError as error:
        show_error(error)
        return None
    st.markdown(t("threshold.summary", threshold=f"{choice.threshold:.3f}", flagged=choice.flagged,
                  rows=choice.rows, caught=choice.caught, at_risk=choice.at_risk, false_alarms=choice.false_alarms,
                  missed=choice.missed, recall=f"{choice.recall:.0%}", label=at_risk))
    st.plotly_chart(charts.threshold_figure(threshold_curve(is_positive, probability), choice.threshold),
                    width="stretch")
    st.caption(t("threshold.caption"))
    save_threshold(record, AlertRule(label=at_risk, threshold=choice.threshold, target_recall=recall),
                   validation.labels)
    apply = st.checkbox(t("threshold.apply_to_groups"), key="results_threshold_groups")
    return choice.threshold if apply else None


def save_threshold(record: RunRecord, rule: AlertRule, labels: list[str]) -> None:
    """Let the run's owner save ``rule`` for the Predict page, and show the threshold saved there."""
    if not store().can_change(record):
        st.caption(t("threshold.not_owner", user=record.owner))
    elif st.button(t("threshold.save"), key="results_save_threshold", help=t("threshold.save_help")):
        store().update_summary(record.run_id, {ALERT_SUMMARY_KEY: rule.to_dict()})
        logger.info("run %s: alert threshold %.4f for %r saved", record.run_id, rule.threshold, rule.label)
        st.success(t("threshold.saved", label=rule.label, threshold=f"{rule.threshold:.3f}"))
    saved = AlertRule.from_summary(store().get_run(record.run_id).summary, labels)
    if saved is not None:
        st.caption(t("threshold.in_use", label=saved.label, threshold=f"{saved.threshold:.3f}"))


def groups_section(validation: ValidationSet, group_columns: list[str], at_risk: str | None,
                   threshold: float | None) -> dict | None:
    """Show each metric per group, the DSM, recall and flagged share, and the flags; return the results."""
    if not group_columns:
        st.info(t("fairness.no_group_columns"))
        return None
    results = group_results(validation, group_columns, at_risk_label=at_risk, threshold=threshold)
    for column in results["groups"]:
        st.markdown(f"**{column}**")
        table = groups_table(results, column)
        table["group"] = table["group"].where(table.index > 0, t("fairness.all"))
        table = table.rename(columns=_group_headers())
        st.dataframe(table.round(3), hide_index=True, width="stretch")
    lang = language()
    for flag in results["flags"]:
        st.warning(flag_message(flag, lang))
    if not results["flags"]:
        st.success(t("fairness.no_flags"))
    st.caption(t("fairness.caption"))
    return results


def _group_headers() -> dict[str, str]:
    headers = {"group": t("fairness.group"), "rows": t("fairness.rows"), "dsm": t("fairness.dsm"),
               "recall": t("fairness.recall"), "flagged_share": t("fairness.flagged_share"),
               "at_risk_share": t("fairness.at_risk_share"), "at_risk": t("fairness.at_risk")}
    headers.update({name: t(f"metric.{name}") for name in metric_lib.SCALAR_METRICS})
    return headers


def rater_section(validation: ValidationSet) -> None:
    """Show human-human agreement beside human-machine agreement, on the rows a second teacher scored."""
    columns = second_rater_columns(validation)
    if not columns:
        st.info(t("rater.no_columns"))
        return
    labels = {"": t("rater.none"), **{column: column for column in columns}}
    column = st.selectbox(t("rater.column"), ["", *columns], format_func=labels.__getitem__,
                          key="results_rater_column", help=t("rater.column_help"))
    if not column:
        return
    try:
        agreement = rater_agreement(validation, column)
    except EduTuneError as error:
        show_error(error)
        return
    names = ("qwk", "exact_agreement", "adjacent_agreement")
    st.dataframe(pd.DataFrame({
        t("rater.pair"): [t("rater.human_human"), t("rater.human_machine")],
        **{t(f"metric.{name}"): [agreement["human_human"][name], agreement["human_machine"][name]] for name in names},
    }).round(3), hide_index=True, width="stretch")
    st.caption(t("rater.caption", rows=agreement["rows"]))


def examples_section(validation: ValidationSet) -> None:
    """Show the validation rows the model got most wrong and most right."""
    count = st.slider(t("examples.count"), 3, 20, 5, key="results_example_count")
    wrong, right = extreme_examples(validation, count)
    headers = {"row": t("results.row"), "target": t("results.target"), "prediction": t("results.prediction"),
               "error": t("examples.error")}
    st.markdown(f"**{t('examples.most_wrong')}**")
    st.dataframe(wrong.rename(columns=headers), hide_index=True, width="stretch")
    st.markdown(f"**{t('examples.most_right')}**")
    st.dataframe(right.rename(columns=headers), hide_index=True, width="stretch")
    st.caption(t(f"examples.caption.{'classes' if validation.labels else 'values'}"))


def importance_section(record: RunRecord, validation: ValidationSet, predictor: Predictor) -> None:
    """Show the permutation importance of each input column when the user asks for it."""
    if not st.button(t("importance.run"), key="results_importance"):
        st.caption(t("importance.explain"))
        return
    try:
        with st.spinner(t("importance.computing")):
            table = permutation_importance(predictor, validation.source, seed=int(record.config["train"]["seed"]))
    except EduTuneError as error:
        show_error(error)
        return
    st.plotly_chart(charts.bars_figure(table["column"].tolist(), table["importance"].round(4).tolist(),
                                       t("importance.title"), t("importance.axis")), width="stretch")
    st.caption(t("importance.caption_folds" if record.metrics.get("folds") else "importance.caption"))


def report_section(record: RunRecord, baseline: dict | None, groups: dict | None) -> None:
    """Draw download buttons for the printable report in Chinese and in English."""
    st.caption(t("report.download_help"))
    intended_use = st.text_area(t("report.intended_use_input"), key=f"results_intended_use_{record.run_id}",
                                help=t("report.intended_use_help"), max_chars=600, height=80)
    columns = st.columns(2)
    for cell, lang in zip(columns, ("zh", "en")):
        page = model_report(record, lang, baseline=baseline, groups=groups, intended_use=intended_use)
        cell.download_button(t(f"report.download_{lang}"), page.encode("utf-8"),
                             file_name=f"edutune-report-{record.run_id}-{lang}.html", mime="text/html",
                             key=f"results_report_{lang}")



def learning_curve_section(record: RunRecord, family: str) -> None:
    """Show the learning curve, training it on demand because it retrains the model four times."""
    cached = (record.run_dir / CURVE_FILE).exists()
    if not cached:
        st.caption(t("curve.explain"))
        if not st.button(t("curve.run"), key="results_learning_curve"):
            return
    try:
        with st.spinner(t("curve.computing")):
            curve = learning_curve(record)
    except EduTuneError as error:
        show_error(error)
        return
    primary, _ = metric_lib.PRIMARY_METRIC[family]
    points = curve["points"]
    series = {t("baseline.fine_tuned"): [point["model"].get(primary) for point in points]}
    for kind in points[0]["baselines"] if points else []:
        series[t(f"baseline.{kind}")] = [point["baselines"][kind].get(primary) for point in points]
    rows = [point["rows"] for point in points]
    st.plotly_chart(charts.curve_figure(rows, series, t(f"metric.{primary}")), width="stretch")
    st.caption(t("curve.caption"))
