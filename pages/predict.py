"""Predict page: one example typed in, or a whole file with a prediction column added."""

import io

import pandas as pd
import streamlit as st

from edutune_core.config import TrainConfig
from edutune_core.corrections import (
    AT_RISK,
    CONFIDENCE,
    CORRECTION,
    CORRECTIONS_FILE,
    INTERVAL_HIGH,
    INTERVAL_LOW,
    LOW_CONFIDENCE_REASON,
    OUT_OF_RANGE_REASON,
    PREDICTION,
    REVIEW,
    review_table,
    retrain_with_corrections,
    save_corrections,
    warm_starts_from_parent,
)
from edutune_core.data import MAX_FILE_BYTES, load_table
from edutune_core.explain import SENTENCE, UNITS
from edutune_core.i18n import EduTuneError
from edutune_core.images import IMAGE_SUFFIXES, predict_image
from edutune_core.predict import Prediction, Predictor, write_xlsx
from edutune_core.runstore import RunRecord
from edutune_core.tasks import CLASSIFICATION
from edutune_core.threshold import AlertRule
from pages.common.explain_view import show_row_explanation, show_text_explanation
from pages.common.ui import language, manager, option_labels, run_picker, setup_page, show_error, store, t


# The editor shows the first rows of the review order, so the rows to check come first.
MAX_EDITOR_ROWS = 500


@st.cache_resource(max_entries=4, show_spinner=False)
def load_predictor(run_dir: str, saved_at: float) -> Predictor:
    # ``saved_at`` is part of the cache key, so a run saved again is loaded again.
    return Predictor(run_dir)


def single_example(predictor: Predictor, alert: AlertRule | None) -> None:
    st.subheader(t("predict.single"))
    if predictor.mapping.text_column is not None:
        text = st.text_area(t("predict.text", column=predictor.mapping.text_column), height=200, key="predict_text")
        row = pd.DataFrame({predictor.mapping.text_column: [text]})
    else:
        row = pd.DataFrame([student_form(predictor)])
    explain = st.toggle(t("explain.toggle"), key="predict_explain", help=t("explain.toggle_help"))
    unit = SENTENCE
    if explain and predictor.mapping.text_column is not None:
        unit = st.radio(t("explain.unit"), UNITS, index=UNITS.index(SENTENCE), horizontal=True,
                        format_func=option_labels("explain.unit", UNITS), key="predict_explain_unit")
    if st.button(t("predict.run"), type="primary", key="predict_one"):
        try:
            result = predictor.predict_frame(row)
        except EduTuneError as error:
            show_error(error)
            return
        if not result.values:
            st.warning(t("predict.empty"))
            return
        show_prediction(predictor, result, alert)
        if explain and predictor.mapping.text_column is not None:
            show_text_explanation(predictor, text, unit)
        elif explain:
            show_row_explanation(predictor, row)


def show_prediction(predictor: Predictor, result: Prediction, alert: AlertRule | None = None) -> None:
    """Show the prediction for one row with its confidence: class probabilities, a score's chance, a value's interval."""
    value = result.values[0]
    if predictor.mapping.problem == CLASSIFICATION:
        st.success(t("predict.result_confidence", value=value, confidence=f"{result.confidence[0]:.0%}"))
        probabilities = pd.DataFrame({t("predict.class"): predictor.labels,
                                      t("predict.probability"): result.raw[0].round(3)})
        st.dataframe(probabilities, hide_index=True)
        if alert is not None:
            probability = float(result.raw[0][predictor.labels.index(alert.label)])
            key = "predict.at_risk_single" if alert.flags(result.raw, predictor.labels)[0] else "predict.not_at_risk_single"
            st.markdown(t(key, label=alert.label, probability=f"{probability:.3f}", threshold=f"{alert.threshold:.3f}"))
    elif result.confidence is not None:
        st.success(t("predict.result_confidence", value=value, confidence=f"{result.confidence[0]:.0%}"))
        st.caption(t("predict.score_confidence_caption", rmse=f"{predictor.error_std:.3f}"))
    elif result.interval is not None:
        low, high = result.interval[0]
        st.success(t("predict.result_interval", value=value, low=f"{low:.2f}", high=f"{high:.2f}"))
        st.caption(t("predict.interval_caption", rmse=f"{predictor.error_std:.3f}"))
    else:
        st.success(t("predict.result", value=value))
        st.caption(t("predict.no_error_spread"))


def single_image(predictor: Predictor, alert: AlertRule | None) -> None:
    st.subheader(t("predict.single"))
    suffixes = sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES)
    uploaded = st.file_uploader(t("images.predict_upload"), type=suffixes, key="predict_image",
                                help=t("images.predict_upload_help"))
    if uploaded is None:
        return
    if st.button(t("predict.run"), type="primary", key="predict_one_image"):
        try:
            result = predict_image(predictor, uploaded.getvalue(), uploaded.name)
        except EduTuneError as error:
            show_error(error)
            return
        st.image(uploaded.getvalue(), caption=uploaded.name, width=240)
        show_prediction(predictor, result, alert)


def student_form(predictor: Predictor) -> dict:
    """Draw one input per table column: a number box for numbers, a choice for categories."""
    encoder = predictor.adapter.encoder
    values = {}
    columns = st.columns(3)
    for index, (column, (fill, _mean, _scale)) in enumerate(encoder.numeric.items()):
        values[column] = columns[index % 3].number_input(str(column), value=float(fill), format="%g",
                                                         key=f"predict_num_{column}")
    offset = len(encoder.numeric)
    for index, (column, categories) in enumerate(encoder.categorical.items(), start=offset):
        values[column] = columns[index % 3].selectbox(str(column), categories or [""], key=f"predict_cat_{column}")
    return values


def batch_file(predictor: Predictor, record: RunRecord, alert: AlertRule | None) -> None:
    st.subheader(t("predict.batch"))
    uploaded = st.file_uploader(t("predict.upload"), type=["csv", "tsv", "txt", "xlsx", "xls"],
                                help=t("data.upload_help", limit=MAX_FILE_BYTES // 2**20), key="predict_file")
    if uploaded is None:
        return
    try:
        table = load_table(uploaded.getvalue(), uploaded.name)
        for warning in predictor.input_warnings(table.frame):
            st.warning(warning.message(language()))
        result = predictor.with_predictions(table.frame, column=t("predict.column"),
                                            confidence_column=t("predict.confidence_column"),
                                            interval_columns=(t("predict.interval_low"), t("predict.interval_high")),
                                            alert=alert, alert_column=t("predict.at_risk_column"))
        review = review_table(predictor, table.frame, alert=alert)
    except EduTuneError as error:
        show_error(error)
        return
    if alert is not None:
        result[t("predict.at_risk_column")] = result[t("predict.at_risk_column")].map(yes_or_no)
    review_and_correct(predictor, record, review)
    stem = uploaded.name.rsplit(".", 1)[0]
    columns = st.columns(2)
    # A byte-order mark makes Excel read the CSV as UTF-8, so Chinese text shows correctly.
    columns[0].download_button(t("predict.download_csv"), result.to_csv(index=False).encode("utf-8-sig"),
                               file_name=f"{stem}_predictions.csv", mime="text/csv")
    workbook = io.BytesIO()
    write_xlsx(result, workbook)
    columns[1].download_button(t("predict.download_xlsx"), workbook.getvalue(), file_name=f"{stem}_predictions.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def yes_or_no(flag: object) -> object:
    """Return "yes" or "no" in the page's language for a flag, and keep a missing flag missing."""
    if flag is True or flag is False:
        return t("predict.at_risk_yes" if flag else "predict.at_risk_no")
    return flag


def review_and_correct(predictor: Predictor, record: RunRecord, review: pd.DataFrame) -> None:
    """Show the predictions with the rows to check first; the run's owner can save corrections and retrain."""
    flagged = int((review[REVIEW] != "").sum())
    st.markdown(t("corrections.summary", rows=len(review), flagged=flagged))
    labels = {LOW_CONFIDENCE_REASON: t("corrections.reason.low_confidence"),
              OUT_OF_RANGE_REASON: t("corrections.reason.out_of_range" if predictor.score_points is not None
                                     else "corrections.reason.out_of_range_value")}
    shown = review.copy()
    shown[REVIEW] = shown[REVIEW].map(lambda reason: reason and labels[reason])
    if AT_RISK in shown.columns:
        shown[AT_RISK] = shown[AT_RISK].map(yes_or_no)
    headers = {PREDICTION: t("predict.column"), CONFIDENCE: t("predict.confidence_column"),
               INTERVAL_LOW: t("predict.interval_low"), INTERVAL_HIGH: t("predict.interval_high"),
               AT_RISK: t("predict.at_risk_column"), REVIEW: t("corrections.review"),
               CORRECTION: t("corrections.correction")}
    if not store().can_change(record):
        # Another teacher's shared run: its corrections file and its next run are the owner's to change.
        st.dataframe(shown.drop(columns=[CORRECTION]).head(MAX_EDITOR_ROWS).rename(columns=headers),
                     key="predict_review", width="stretch")
        st.info(t("corrections.not_owner", user=record.owner))
        return
    locked = [headers.get(column, str(column)) for column in shown.columns if column != CORRECTION]
    edited = st.data_editor(shown.head(MAX_EDITOR_ROWS).rename(columns=headers), disabled=locked,
                            key="predict_corrections", width="stretch")
    st.caption(t("corrections.help", target=predictor.mapping.target, rows=MAX_EDITOR_ROWS))
    if st.button(t("corrections.save"), key="predict_save_corrections"):
        corrected = review.head(MAX_EDITOR_ROWS).copy()
        corrected[CORRECTION] = edited[t("corrections.correction")].to_numpy()
        try:
            saved = save_corrections(record.run_dir, predictor, corrected)
        except EduTuneError as error:
            show_error(error)
            return
        if saved:
            st.success(t("corrections.saved", count=saved, file=CORRECTIONS_FILE))
        else:
            st.info(t("corrections.none"))
    if not (record.run_dir / CORRECTIONS_FILE).exists():
        return
    if not warm_starts_from_parent(record) and TrainConfig.from_dict(record.config["train"]).folds >= 2:
        # ``record.model`` names what the run trained from: a table network, a hub model or a folder.
        st.caption(t("corrections.retrain_from_pretrained", model=record.model, folds=record.config["train"]["folds"]))
    if st.button(t("corrections.retrain"), key="predict_retrain", help=t("corrections.retrain_help")):
        try:
            child = retrain_with_corrections(store(), record, manager())
        except EduTuneError as error:
            show_error(error)
            return
        st.session_state["run_id"] = child.run_id
        st.switch_page("pages/train.py")


def alert_note(predictor: Predictor, record: RunRecord) -> AlertRule | None:
    """Show which saved alert threshold flags students of a two-class run, and return it."""
    if predictor.labels is None or len(predictor.labels) != 2:
        return None
    alert = AlertRule.from_summary(record.summary, predictor.labels)
    if alert is None:
        st.caption(t("predict.alert_none"))
    else:
        st.info(t("predict.alert_in_use", label=alert.label, threshold=f"{alert.threshold:.3f}",
                  recall=f"{alert.target_recall:.0%}"))
    return alert


setup_page("nav.predict")
st.title(t("predict.title"))
runs = [record for record in store().list_runs() if (record.run_dir / "model" / "edutune.json").exists()]
record = run_picker(runs, key="predict_run")
if record is None:
    st.info(t("predict.none"))
    st.stop()
try:
    predictor = load_predictor(str(record.run_dir), (record.run_dir / "model" / "edutune.json").stat().st_mtime)
except EduTuneError as error:
    show_error(error)
    st.stop()
alert = alert_note(predictor, record)
if predictor.mapping.image_column is not None:
    single_image(predictor, alert)
else:
    single_example(predictor, alert)
    batch_file(predictor, record, alert)
