"""Review-first batch predictions and the teacher's corrections as new training rows.

``review_table`` predicts a file and puts the rows a teacher should check first at the
top: classes predicted with low confidence, scores whose unrounded value fell outside
the rubric before it was clipped, and values outside the training targets' range. The teacher fills in the ``correction``
column. ``save_corrections`` checks the corrections and appends them to the run
folder's ``corrections.csv``, in the layout of the training file (input columns plus
the target column), with a ``corrected_from`` column that keeps the model's prediction.
``training_rows_with_corrections`` adds them to a run's training rows for the next run.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from edutune_core import metrics as metric_lib
from edutune_core.i18n import DataError, EduTuneError
from edutune_core.predict import Predictor
from edutune_core.tasks import CLASSIFICATION, ColumnMapping

logger = logging.getLogger(__name__)

CORRECTIONS_FILE = "corrections.csv"
# A class predicted with a lower probability than this is listed for review.
LOW_CONFIDENCE = 0.6
# A score whose unrounded value is more than this beyond the rubric is listed for review.
OUT_OF_RANGE_MARGIN = 0.5
LOW_CONFIDENCE_REASON = "low_confidence"
OUT_OF_RANGE_REASON = "out_of_range"
PREDICTION, CONFIDENCE, REVIEW, CORRECTION = "prediction", "confidence", "review", "correction"
INTERVAL_LOW, INTERVAL_HIGH, AT_RISK = "interval_low", "interval_high", "at_risk"
CORRECTED_FROM, CORRECTED_AT = "corrected_from", "corrected_at"
# Column that marks where each training row came from, when corrections are added.
SOURCE_COLUMN = "edutune_source"


def review_table(predictor: Predictor, frame: pd.DataFrame, alert=None) -> pd.DataFrame:
    """Predict ``frame`` and return its rows with the ones to review first.

    Returns:
        The predicted rows of ``frame`` (index kept) with ``prediction``, ``confidence``
        (classes, and scores of a run with validation predictions), ``interval_low`` and
        ``interval_high`` (values), ``at_risk`` (with an ``alert`` rule), ``review`` (a
        reason key, or "" when the row needs no review) and an empty ``correction``
        column. Rows to review come first, the least certain first; the others keep
        their order.
    """
    prediction = predictor.predict_frame(frame)
    table = frame.loc[prediction.row_index].drop(columns=[predictor.mapping.target], errors="ignore").copy()
    table[PREDICTION] = pd.Series(prediction.values, index=prediction.row_index, dtype=object)
    reasons = np.full(len(table), "", dtype=object)
    urgency = np.zeros(len(table))
    if prediction.confidence is not None:
        table[CONFIDENCE] = np.round(prediction.confidence, 4)
    if prediction.interval is not None:
        table[INTERVAL_LOW] = np.round(prediction.interval[:, 0], 4)
        table[INTERVAL_HIGH] = np.round(prediction.interval[:, 1], 4)
    if alert is not None:
        table[AT_RISK] = alert.flags(prediction.raw, predictor.labels)
    if predictor.mapping.problem == CLASSIFICATION:
        low = prediction.confidence < LOW_CONFIDENCE
        reasons[low] = LOW_CONFIDENCE_REASON
        urgency = np.where(low, 1.0 - prediction.confidence, 0.0)
    else:
        beyond = _beyond_range(predictor, prediction.raw)
        outside = beyond > 0
        reasons[outside] = OUT_OF_RANGE_REASON
        urgency = np.where(outside, beyond, 0.0)
    table[REVIEW] = reasons
    table[CORRECTION] = pd.Series([None] * len(table), index=table.index, dtype=object)
    order = np.lexsort((np.arange(len(table)), -urgency, reasons == ""))
    return table.iloc[order]


def _beyond_range(predictor: Predictor, raw: np.ndarray) -> np.ndarray:
    """Return how far each unrounded prediction lies outside its range to review, 0 inside it.

    Scores are checked against the rubric widened by ``OUT_OF_RANGE_MARGIN``, values
    against the lowest and highest target of the training data.
    """
    if predictor.score_points is not None:
        low, high = predictor.score_points[:2]
        return np.maximum(np.maximum(low - raw, raw - high) - OUT_OF_RANGE_MARGIN, 0.0)
    if predictor.target_range is not None:
        low, high = predictor.target_range
        return np.maximum(np.maximum(low - raw, raw - high), 0.0)
    return np.zeros(len(raw))


def _check_correction(value: object, predictor: Predictor) -> object:
    """Return the correction in the target column's form, or raise DataError."""
    mapping = predictor.mapping
    if mapping.problem == CLASSIFICATION and mapping.pass_mark is None:
        label = str(value).strip()
        if label not in predictor.labels:
            raise DataError("corrections.unknown_label", value=label, labels=", ".join(predictor.labels))
        return label
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    if pd.isna(number):
        raise DataError("corrections.not_a_number", value=str(value), column=mapping.target)
    if predictor.score_points is not None:
        low, high = predictor.score_points[:2]
        on_a_point = np.isclose(metric_lib.point_values(predictor.score_points), number).any()
        if not on_a_point:
            raise DataError("corrections.not_a_score", value=str(value), low=f"{low:g}", high=f"{high:g}",
                            step=f"{metric_lib.score_step(predictor.score_points):g}")
    return float(number)


def save_corrections(run_dir: Path | str, predictor: Predictor, table: pd.DataFrame) -> int:
    """Append the rows of ``table`` that have a correction to the run's ``corrections.csv``.

    A pass/fail model takes the corrected grade (a number), because the pass mark turns
    it into pass or fail when the next run reads it.

    Returns:
        The number of corrections saved.

    Raises:
        DataError: A correction is not a class of the model, not a number, or not a
            whole score within the rubric. Nothing is saved then.
    """
    filled = table[table[CORRECTION].notna() & (table[CORRECTION].astype(str).str.strip() != "")]
    if filled.empty:
        return 0
    rows = filled.drop(columns=[PREDICTION, CONFIDENCE, INTERVAL_LOW, INTERVAL_HIGH, AT_RISK, REVIEW, CORRECTION],
                       errors="ignore").copy()
    rows[predictor.mapping.target] = [_check_correction(value, predictor) for value in filled[CORRECTION]]
    rows[CORRECTED_FROM] = filled[PREDICTION].astype(str).to_numpy()
    rows[CORRECTED_AT] = time.strftime("%Y-%m-%d %H:%M:%S")
    path = Path(run_dir) / CORRECTIONS_FILE
    earlier = load_corrections(run_dir)
    combined = rows if earlier is None else pd.concat([earlier, rows], ignore_index=True)
    combined.to_csv(path, index=False, encoding="utf-8")
    logger.info("saved %d corrections to %s (%d in all)", len(rows), path, len(combined))
    return len(rows)


def load_corrections(run_dir: Path | str) -> pd.DataFrame | None:
    """Return the run's saved corrections, or None when there are none."""
    path = Path(run_dir) / CORRECTIONS_FILE
    if not path.exists():
        return None
    return pd.read_csv(path, encoding="utf-8")


def training_rows_with_corrections(frame: pd.DataFrame, corrections: pd.DataFrame,
                                   mapping: ColumnMapping) -> tuple[pd.DataFrame, ColumnMapping]:
    """Add corrections to a run's training rows, marking each row's source.

    Columns of the corrections that the training rows lack (extra columns of the
    predicted file) are dropped, so they cannot become model inputs.

    Returns:
        The combined table, with ``edutune_source`` set to ``original`` or ``correction``,
        and the mapping with that column and the correction bookkeeping columns ignored,
        so that they never become model inputs. Rows that already carry a mark (a run
        that was itself trained with corrections) keep it.
    """
    earlier_marks = frame[SOURCE_COLUMN] if SOURCE_COLUMN in frame.columns else None
    original = frame.assign(**{SOURCE_COLUMN: "original" if earlier_marks is None
                               else earlier_marks.where(earlier_marks.notna(), "original")})
    kept = [column for column in corrections.columns if column in frame.columns or column in (CORRECTED_FROM,
                                                                                              CORRECTED_AT)]
    added = corrections[kept].assign(**{SOURCE_COLUMN: "correction"})
    combined = pd.concat([original, added], ignore_index=True)
    ignored = [*mapping.ignore_columns, *(column for column in (SOURCE_COLUMN, CORRECTED_FROM, CORRECTED_AT)
                                          if column not in mapping.ignore_columns)]
    return combined, ColumnMapping.from_dict({**mapping.to_dict(), "ignore_columns": ignored})


def corrected_training_rows(record) -> pd.DataFrame | None:
    """Return the training rows of a run that came from corrections, without their input text.

    Returns:
        One row per corrected training row: ``row`` (its position in the run's data
        snapshot, from 1), the student column and the ignored columns (the identifiers
        the teacher kept out of the model), the corrected label, ``corrected_from`` and
        ``corrected_at``. None when the run has no rows marked as corrections or its
        snapshot is gone. Text and image columns and model inputs are left out.
    """
    from edutune_core.runner import TRAIN_SNAPSHOT

    path = record.run_dir / TRAIN_SNAPSHOT
    if not path.exists():
        return None
    snapshot = pd.read_parquet(path)
    if SOURCE_COLUMN not in snapshot.columns:
        return None
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    bookkeeping = (SOURCE_COLUMN, CORRECTED_FROM, CORRECTED_AT)
    identifiers = [column for column in (mapping.student_column, *mapping.ignore_columns)
                   if column is not None and column in snapshot.columns and column not in bookkeeping
                   and column not in (mapping.text_column, mapping.image_column, mapping.target)]
    corrected = snapshot[snapshot[SOURCE_COLUMN] == "correction"]
    table = pd.DataFrame({"row": corrected.index + 1})
    for column in dict.fromkeys(identifiers):
        table[column] = corrected[column].to_numpy()
    table[mapping.target] = corrected[mapping.target].to_numpy()
    for column in (CORRECTED_FROM, CORRECTED_AT):
        if column in corrected.columns:
            table[column] = corrected[column].to_numpy()
    return table


def parent_split(record) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return a held-out run's training rows and validation rows as snapshot tables.

    The validation rows are the ones the run recorded in ``validation_predictions.csv``
    (positions in its snapshot). A run without that file gets its split drawn again
    from its seed, the way it drew it when it trained.
    """
    from edutune_core.config import TrainConfig
    from edutune_core.evaluation import PREDICTIONS_FILE
    from edutune_core.runner import TRAIN_SNAPSHOT, VALIDATION_SNAPSHOT, split_rows
    from edutune_core.tasks import prepare_data

    snapshot = pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT)
    validation_path = record.run_dir / VALIDATION_SNAPSHOT
    if validation_path.exists():
        return snapshot, pd.read_parquet(validation_path)
    predictions_path = record.run_dir / PREDICTIONS_FILE
    if predictions_path.exists():
        rows = pd.read_csv(predictions_path, usecols=["row"])["row"].to_numpy()
    else:
        config = TrainConfig.from_dict(record.config["train"])
        data = prepare_data(snapshot, ColumnMapping.from_dict(record.config["mapping"]))
        _, positions = split_rows(data, config.validation_share, config.seed)
        rows = data.row_index[positions].to_numpy()
    is_validation = np.isin(np.arange(len(snapshot)), rows)
    return (snapshot[~is_validation].reset_index(drop=True), snapshot[is_validation].reset_index(drop=True))


def base_model(record) -> str:
    """Return the pretrained model a run started from, before any warm start from a parent run."""
    return record.summary.get("base_model") or record.config["train"]["model"]


def warm_starts_from_parent(record) -> bool:
    """Return True when the next run with corrections continues from this run's weights.

    A cross-validated run's saved model trained on every row, so a child that continued
    from it would be validated on rows its starting weights had already seen. Such a
    child starts from the parent's pretrained model instead. The character model and
    image models always start again as well.
    """
    from edutune_core.char_model import CHAR_MODEL
    from edutune_core.config import TrainConfig

    config = TrainConfig.from_dict(record.config["train"])
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    return config.folds < 2 and config.model != CHAR_MODEL and mapping.image_column is None


def retrain_with_corrections(store, record, manager=None):
    """Create the next run: this run's rows plus its corrections.

    A held-out run's child keeps the parent's validation rows as its validation rows,
    trains on the parent's training rows plus the corrected rows, and starts from the
    parent's tuned model. A cross-validated run's child trains the same number of folds
    on all rows plus the corrected rows, starting from the parent's pretrained model
    (see ``warm_starts_from_parent``). The new run records its parent run, the number
    of corrected rows and the model it started from, so the history shows which labels
    came from corrections. It is queued on ``manager`` when given.

    Raises:
        EduTuneError: ``store``'s user may not change the run (another teacher's shared run).
        DataError: The run has no saved corrections.
    """
    import dataclasses

    from edutune_core.config import TrainConfig
    from edutune_core.runner import TRAIN_SNAPSHOT, create_run

    if not store.can_change(record):
        raise EduTuneError("corrections.not_owner", user=record.owner)
    corrections = load_corrections(record.run_dir)
    if corrections is None or corrections.empty:
        raise DataError("corrections.nothing_to_retrain", run=record.name)
    mapping = ColumnMapping.from_dict(record.config["mapping"])
    config = TrainConfig.from_dict(record.config["train"])
    if config.folds >= 2:
        training, validation = pd.read_parquet(record.run_dir / TRAIN_SNAPSHOT), None
    else:
        training, validation = parent_split(record)
    combined, combined_mapping = training_rows_with_corrections(training, corrections, mapping)
    started_from = base_model(record)
    if warm_starts_from_parent(record):
        # Continue from this run's tuned model, which never saw the validation rows.
        config = dataclasses.replace(config, model=str(record.run_dir))
    else:
        config = dataclasses.replace(config, model=started_from)
    summary = {"parent_run": record.run_id, "corrected_rows": int(len(corrections)), "base_model": started_from,
               "warm_start_from_parent": warm_starts_from_parent(record)}
    child = create_run(store, combined, combined_mapping, config, data_name=record.data_name,
                       validation_frame=validation, name=f"{record.name} + {len(corrections)}",
                       extra_summary=summary)
    logger.info("run %s retrains run %s with %d corrections (%s)", child.run_id, record.run_id, len(corrections),
                "warm start from the parent" if summary["warm_start_from_parent"] else f"from {started_from}")
    if manager is not None:
        manager.submit(child.run_id)
    return child
