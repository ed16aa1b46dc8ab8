"""Predict page: one example typed in, or a whole file with a prediction column added."""

import io

import pandas as pd
import streamlit as st

from edutune_core.corrections import (
    CONFIDENCE,
    CORRECTION,
    CORRECTIONS_FILE,
    LOW_CONFIDENCE_REASON,
    OUT_OF_RANGE_REASON,
    PREDICTION,
    REVIEW,
    review_table,
    retrain_with_corrections,
    save_corrections,
)
from edutune_core.data import MAX_FILE_BYTES, load_table
from edutune_core.explain import SENTENCE, UNITS
from edutune_core.i18n import EduTuneError
from edutune_core.images import IMAGE_SUFFIXES, predict_image
from edutune_core.predict import Prediction, Predictor
from edutune_core.runstore import RunRecord
from pages.common.explain_view import show_row_explanation, show_text_explanation
from pages.common.ui import manager, option_labels, run_picker, setup_page, show_error, store, t


# The editor shows the first rows of the review order, so the rows to check come first.
MAX_EDITOR_ROWS = 500


@st.cache_resource(max_entries=4, show_spinner=False)
def load_predictor(run_dir: str, saved_at: float) -> Predictor:
    # ``saved_at`` is part of the cache key, so a run saved again is loaded again.
    return Predictor(run_dir)


def single_example(predictor: Predictor) -> None:
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
        show_prediction(predictor, result)
        if explain and predictor.mapping.text_column is not None:
            show_text_explanation(predictor, text, unit)
        elif explain:
            show_row_explanation(predictor, row)


def show_prediction(predictor: Predictor, result: Prediction) -> None:
    """Show the prediction for one row, with the probability of each class for a classifier."""
    value = result.values[0]
    if result.confidence is not None:
        st.success(t("predict.result_confidence", value=value, confidence=f"{result.confidence[0]:.0%}"))
        probabilities = pd.DataFrame({t("predict.class"): predictor.labels,
                                      t("predict.probability"): result.raw[0].round(3)})
        st.dataframe(probabilities, hide_index=True)
    else:
        st.success(t("predict.result", value=value))


def single_image(predictor: Predictor) -> None:
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
        show_prediction(predictor, result)


def student_form(predictor: Predictor) -> dict:
    """Draw one input per table column: a number box for numbers, a choice for categories."""
    encoder = predictor.adapter.encoder
    values = {}
    columns = st.columns(3)
    for index, (column, (fill, _mean, _scale)) in enumerate(encoder.numeric.items()):
        values[column] = columns[index % 3].number_input(str(column), value=float(fill), key=f"predict_num_{column}")
    offset = len(encoder.numeric)
    for index, (column, categories) in enumerate(encoder.categorical.items(), start=offset):
        values[column] = columns[index % 3].selectbox(str(column), categories or [""], key=f"predict_cat_{column}")
    return values


def batch_file(predictor: Predictor, record: RunRecord) -> None:
    st.subheader(t("predict.batch"))
    uploaded = st.file_uploader(t("predict.upload"), type=["csv", "tsv", "txt", "xlsx", "xls"],
                                help=t("data.upload_help", limit=MAX_FILE_BYTES // 2**20), key="predict_file")
    if uploaded is None:
        return
    try:
        table = load_table(uploaded.getvalue(), uploaded.name)
        result = predictor.with_predictions(table.frame, column=t("predict.column"),
                                            confidence_column=t("predict.confidence_column"))
        review = review_table(predictor, table.frame)
    except EduTuneError as error:
        show_error(error)
        return
    review_and_correct(predictor, record, review)
    stem = uploaded.name.rsplit(".", 1)[0]
    columns = st.columns(2)
    # A byte-order mark makes Excel read the CSV as UTF-8, so Chinese text shows correctly.
    columns[0].download_button(t("predict.download_csv"), result.to_csv(index=False).encode("utf-8-sig"),
                               file_name=f"{stem}_predictions.csv", mime="text/csv")
    workbook = io.BytesIO()
    result.to_excel(workbook, index=False)
    columns[1].download_button(t("predict.download_xlsx"), workbook.getvalue(), file_name=f"{stem}_predictions.xlsx",
                               mime="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")


def review_and_correct(predictor: Predictor, record: RunRecord, review: pd.DataFrame) -> None:
    """Show the predictions with the rows to check first, and save the teacher's corrections."""
    flagged = int((review[REVIEW] != "").sum())
    st.markdown(t("corrections.summary", rows=len(review), flagged=flagged))
    shown = review.copy()
    shown[REVIEW] = shown[REVIEW].map(lambda reason: reason and REVIEW_LABELS[reason])
    headers = {PREDICTION: t("predict.column"), CONFIDENCE: t("predict.confidence_column"),
               REVIEW: t("corrections.review"), CORRECTION: t("corrections.correction")}
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
    if (record.run_dir / CORRECTIONS_FILE).exists() and st.button(t("corrections.retrain"), key="predict_retrain",
                                                                   help=t("corrections.retrain_help")):
        try:
            child = retrain_with_corrections(store(), record, manager())
        except EduTuneError as error:
            show_error(error)
            return
        st.session_state["run_id"] = child.run_id
        st.switch_page("pages/train.py")

setup_page("nav.predict")
st.title(t("predict.title"))
REVIEW_LABELS = {reason: t(f"corrections.reason.{reason}") for reason in (LOW_CONFIDENCE_REASON, OUT_OF_RANGE_REASON)}
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
if predictor.mapping.image_column is not None:
    single_image(predictor)
else:
    single_example(predictor)
    batch_file(predictor, record)
