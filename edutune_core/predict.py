"""Load a trained model folder and predict on new rows.

A run folder (or an exported run, unzipped) contains ``model/edutune.json`` beside the
weights. It records the column mapping, the class names and the score range, so new
data is read exactly the way the training data was.

Every prediction comes with a confidence. A class gets the probability of the
predicted class. Scores and values use a normal error model whose standard deviation
is the RMSE of the run's unrounded validation predictions: a score gets the
probability that its rounded value is the teacher's score, and a value gets an 80 %
prediction interval.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import norm

from edutune_core import metrics as metric_lib
from edutune_core.adapters import TextAdapter, load_adapter
from edutune_core.config import TrainConfig
from edutune_core.evaluation import PREDICTIONS_FILE
from edutune_core.i18n import DataError, ModelError
from edutune_core.runner import TRAIN_SNAPSHOT
from edutune_core.tasks import CLASSIFICATION, ColumnMapping, PreparedData, prepare_data
from edutune_core.training import fit_to_device, format_predictions, predict_outputs

logger = logging.getLogger(__name__)

# Share of new values that the prediction interval of a value model is meant to cover.
INTERVAL_COVERAGE = 0.8
# The interval is raw ± this many error standard deviations: the normal quantile
# Φ⁻¹(0.9) ≈ 1.2816 for a central 80 % interval.
INTERVAL_Z = float(norm.ppf(0.5 + INTERVAL_COVERAGE / 2))
# First characters that make a spreadsheet program read a cell as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@")


@dataclass
class Prediction:
    """Predictions for a table, in the user's own labels or score points.

    Attributes:
        values: One prediction per kept row.
        confidence: Probability of the predicted class, or for scores the probability
            that the rounded score is the teacher's score. None for values, and for
            scores of a run without validation predictions.
        row_index: Index labels of the rows that were predicted.
        data: The prepared inputs (with targets when the table had them).
        raw: Class probabilities or unrounded values.
        interval: For values, the lower and upper bound of the 80 % prediction
            interval (rows x 2); else None.
    """

    values: list
    confidence: np.ndarray | None
    row_index: pd.Index
    data: PreparedData
    raw: np.ndarray
    interval: np.ndarray | None = None


def score_confidence(raw: np.ndarray, rounded: np.ndarray, score_points: tuple,
                     error_std: float) -> np.ndarray:
    """Return the probability that each rounded score is the true one under a normal error model.

    The true value is taken as normal around ``raw`` with standard deviation
    ``error_std``. For the whole score r the probability is then
    Φ((r + ½ − raw) / σ) − Φ((r − ½ − raw) / σ), with half a step in place of ½ on a
    half-point rubric. At the lowest and highest
    score the interval is open on the outer side, because a true value beyond the
    rubric is also scored at its end.
    """
    raw = np.asarray(raw, dtype=np.float64)
    rounded = np.asarray(rounded, dtype=np.float64)
    low, high = score_points[:2]
    half_step = metric_lib.score_step(score_points) / 2
    sigma = max(float(error_std), 1e-9)
    upper = np.where(rounded >= high, np.inf, rounded + half_step)
    lower = np.where(rounded <= low, -np.inf, rounded - half_step)
    return norm.cdf((upper - raw) / sigma) - norm.cdf((lower - raw) / sigma)


def value_interval(raw: np.ndarray, error_std: float) -> np.ndarray:
    """Return the lower and upper bound (rows x 2) of the 80 % interval raw ± 1.2816 σ."""
    raw = np.asarray(raw, dtype=np.float64)
    return np.column_stack([raw - INTERVAL_Z * error_std, raw + INTERVAL_Z * error_std])


def validation_error_std(run_folder: Path) -> float | None:
    """Return the RMSE of a run's unrounded validation predictions, or None when it has none.

    A cross-validated run's predictions come from its fold models, so for its final
    model this is an estimate.
    """
    path = run_folder / PREDICTIONS_FILE
    if not path.exists():
        return None
    table = pd.read_csv(path)
    column = "raw_prediction" if "raw_prediction" in table.columns else "prediction"
    errors = (pd.to_numeric(table[column], errors="coerce") - pd.to_numeric(table["target"], errors="coerce")).dropna()
    if errors.empty:
        return None
    return float(np.sqrt(np.mean(np.square(errors))))


def training_target_range(run_folder: Path, target: str) -> tuple[float, float] | None:
    """Return the lowest and highest target of a run's training data, or None when the folder has no targets.

    An exported run has no data snapshot, so its validation targets stand in.
    """
    snapshot = run_folder / TRAIN_SNAPSHOT
    predictions = run_folder / PREDICTIONS_FILE
    if snapshot.exists():
        targets = pd.read_parquet(snapshot, columns=[target])[target]
    elif predictions.exists():
        # NOTE: the validation targets can span less than the training targets, so an
        # exported run may flag a few values that its training data covered.
        targets = pd.read_csv(predictions, usecols=["target"])["target"]
    else:
        return None
    values = pd.to_numeric(targets, errors="coerce").dropna()
    if values.empty:
        return None
    return float(values.min()), float(values.max())


def write_xlsx(frame: pd.DataFrame, destination) -> None:
    """Write ``frame`` as an XLSX sheet to a path or a binary file object, with every text cell kept as text.

    openpyxl stores a string that starts with "=" as a formula, so a student's reply
    "=5" would become one. Every string cell that starts with one of
    ``FORMULA_PREFIXES`` is written with the string data type instead.
    """
    with pd.ExcelWriter(destination, engine="openpyxl") as writer:
        frame.to_excel(writer, index=False)
        for sheet in writer.sheets.values():
            for row in sheet.iter_rows():
                for cell in row:
                    if isinstance(cell.value, str) and cell.value.startswith(FORMULA_PREFIXES):
                        cell.data_type = "s"


class Predictor:
    """A trained model ready to predict, loaded from a run folder."""

    def __init__(self, folder: Path | str) -> None:
        folder = Path(folder)
        model_dir = folder / "model" if (folder / "model" / "edutune.json").exists() else folder
        description_path = model_dir / "edutune.json"
        if not description_path.exists():
            raise ModelError("model.not_a_run", path=str(folder))
        self.description = json.loads(description_path.read_text(encoding="utf-8"))
        self.mapping = ColumnMapping.from_dict(self.description["mapping"])
        self.labels = self.description["labels"]
        points = self.description["score_points"]
        self.score_points = tuple(points) if points else None
        self.config = TrainConfig.from_dict(self.description["config"])
        self.target_scale = tuple(self.description["target_scale"])
        run_folder = model_dir.parent
        regression = self.mapping.problem != CLASSIFICATION
        # Spread of the validation errors, for the confidence of scores and values.
        self.error_std = validation_error_std(run_folder) if regression else None
        self.target_range = None
        if regression and self.score_points is None:
            self.target_range = training_target_range(run_folder, self.mapping.target)
        self.adapter = load_adapter(self.description["adapter"], model_dir, self.description.get("max_length", 256),
                                    self.description.get("truncation", "head"))
        # Prediction runs on the CPU, in the precision the run was configured with.
        self.precision = fit_to_device(self.adapter, self.config, torch.device("cpu"))
        if self.precision == "bf16" and isinstance(self.adapter, TextAdapter):
            # Autocast would round the weights to bf16 on every batch, so round them once.
            # Autocast still runs layer norms and softmax in fp32.
            self.adapter.model.to(torch.bfloat16)
        logger.info("loaded model from %s (%s, %s)", model_dir, self.description["task"], self.precision)

    @property
    def task(self) -> str:
        return self.description["task"]

    @property
    def input_columns(self) -> list[str]:
        """Columns a table needs for prediction."""
        if self.mapping.text_column is not None:
            return [self.mapping.text_column]
        if self.mapping.image_column is not None:
            return [self.mapping.image_column]
        return list(self.adapter.encoder.numeric) + list(self.adapter.encoder.categorical)

    def input_warnings(self, frame: pd.DataFrame) -> list[DataError]:
        """Return what in ``frame`` makes a table model's predictions less reliable.

        A missing column is filled with the training median or left as "no category",
        and a cell that is not a number in a number column counts as missing, so the
        prediction still comes but rests on less information.

        Raises:
            DataError: The file has none of the table model's columns.
        """
        if self.mapping.text_column is not None or self.mapping.image_column is not None:
            return []
        expected = self.input_columns
        missing = [column for column in expected if column not in frame.columns]
        if expected and len(missing) == len(expected):
            raise DataError("predict.no_model_columns", columns=", ".join(map(str, expected)),
                            found=", ".join(map(str, frame.columns)))
        warnings = []
        if missing:
            warnings.append(DataError("predict.missing_model_columns", columns=", ".join(map(str, missing))))
        for column in self.adapter.encoder.numeric:
            if column not in frame.columns:
                continue
            cells = frame[column]
            not_numbers = cells.notna() & pd.to_numeric(cells, errors="coerce").isna()
            if not_numbers.any():
                examples = ", ".join(repr(value) for value in cells[not_numbers].astype(str).unique()[:3])
                warnings.append(DataError("predict.non_numeric_cells", column=column,
                                          count=int(not_numbers.sum()), examples=examples))
        return warnings

    def predict_frame(self, frame: pd.DataFrame) -> Prediction:
        """Predict every row of ``frame`` that has the model's input columns.

        Raises:
            DataError: The text column is missing, the file has none of a table model's
                columns, or a target column has unknown labels.
        """
        self.input_warnings(frame)
        # The target column, when present, plays no part: rows without a teacher's
        # label are predicted too.
        inputs = frame.drop(columns=[self.mapping.target], errors="ignore")
        data = prepare_data(inputs, self.mapping, require_target=False, labels=self.labels)
        encoded = self.adapter.encode(data)
        _, raw = predict_outputs(self.adapter, encoded, self.mapping.problem, self.target_scale,
                                 self.config.batch_size, precision=self.precision)
        values = format_predictions(raw, self.mapping.problem, self.labels, self.score_points)
        confidence, interval = None, None
        if self.mapping.problem == CLASSIFICATION:
            confidence = raw.max(axis=1)
        elif self.error_std is not None and self.score_points is not None:
            confidence = score_confidence(raw, np.asarray(values, dtype=np.float64), self.score_points, self.error_std)
        elif self.error_std is not None:
            interval = value_interval(raw, self.error_std)
        return Prediction(values=values, confidence=confidence, row_index=data.row_index, data=data, raw=raw,
                          interval=interval)

    def evaluate_frame(self, frame: pd.DataFrame) -> dict:
        """Predict ``frame`` and compare with its target column.

        Raises:
            DataError: The target column is missing or does not fit the model.
        """
        data = prepare_data(frame, self.mapping, labels=self.labels, check_rows=False)
        # Rows without a target are left out of both sides, so predictions and targets align.
        prediction = self.predict_frame(frame.loc[data.row_index])
        predicted = prediction.raw.argmax(axis=1) if self.mapping.problem == CLASSIFICATION else prediction.raw
        return metric_lib.compute_metrics(self.mapping.problem, data.targets, predicted,
                                          labels=self.labels, score_points=self.score_points)

    def with_predictions(self, frame: pd.DataFrame, column: str = "prediction",
                         confidence_column: str = "confidence",
                         interval_columns: tuple[str, str] = ("interval_low", "interval_high"),
                         alert=None, alert_column: str = "at_risk") -> pd.DataFrame:
        """Return ``frame`` with a prediction column and the prediction's confidence.

        Classes and scores get a confidence column, values the two bounds of their 80 %
        interval. With ``alert`` (an ``edutune_core.threshold.AlertRule``), a two-class
        model also gets a column that flags the rows at or above the alert threshold.
        """
        prediction = self.predict_frame(frame)
        result = frame.copy()
        index = prediction.row_index
        result[column] = pd.Series(prediction.values, index=index, dtype=object)
        if prediction.confidence is not None:
            result[confidence_column] = pd.Series(np.round(prediction.confidence, 4), index=index)
        if prediction.interval is not None:
            for position, name in enumerate(interval_columns):
                result[name] = pd.Series(np.round(prediction.interval[:, position], 4), index=index)
        if alert is not None:
            result[alert_column] = pd.Series(alert.flags(prediction.raw, self.labels), index=index, dtype=object)
        return result
