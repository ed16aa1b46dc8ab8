"""Load a trained model folder and predict on new rows.

A run folder (or an exported run, unzipped) contains ``model/edutune.json`` beside the
weights. It records the column mapping, the class names and the score range, so new
data is read exactly the way the training data was.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from edutune_core import metrics as metric_lib
from edutune_core.adapters import TextAdapter, load_adapter
from edutune_core.config import TrainConfig
from edutune_core.i18n import ModelError
from edutune_core.tasks import CLASSIFICATION, ColumnMapping, PreparedData, prepare_data
from edutune_core.training import fit_to_device, format_predictions, predict_outputs

logger = logging.getLogger(__name__)


@dataclass
class Prediction:
    """Predictions for a table, in the user's own labels or score points.

    Attributes:
        values: One prediction per kept row.
        confidence: Probability of the predicted class, for classification; else None.
        row_index: Index labels of the rows that were predicted.
        data: The prepared inputs (with targets when the table had them).
        raw: Class probabilities or unrounded values.
    """

    values: list
    confidence: np.ndarray | None
    row_index: pd.Index
    data: PreparedData
    raw: np.ndarray


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

    def predict_frame(self, frame: pd.DataFrame) -> Prediction:
        """Predict every row of ``frame`` that has the model's input columns.

        Raises:
            DataError: The text column is missing, or a target column has unknown labels.
        """
        # The target column, when present, plays no part: rows without a teacher's
        # label are predicted too.
        inputs = frame.drop(columns=[self.mapping.target], errors="ignore")
        data = prepare_data(inputs, self.mapping, require_target=False, labels=self.labels)
        encoded = self.adapter.encode(data)
        _, raw = predict_outputs(self.adapter, encoded, self.mapping.problem, self.target_scale,
                                 self.config.batch_size, precision=self.precision)
        confidence = raw.max(axis=1) if self.mapping.problem == CLASSIFICATION else None
        values = format_predictions(raw, self.mapping.problem, self.labels, self.score_points)
        return Prediction(values=values, confidence=confidence, row_index=data.row_index, data=data, raw=raw)

    def evaluate_frame(self, frame: pd.DataFrame) -> dict:
        """Predict ``frame`` and compare with its target column.

        Raises:
            DataError: The target column is missing or does not fit the model.
        """
        data = prepare_data(frame, self.mapping, labels=self.labels)
        prediction = self.predict_frame(frame)
        predicted = prediction.raw.argmax(axis=1) if self.mapping.problem == CLASSIFICATION else prediction.raw
        return metric_lib.compute_metrics(self.mapping.problem, data.targets, predicted,
                                          labels=self.labels, score_points=self.score_points)

    def with_predictions(self, frame: pd.DataFrame, column: str = "prediction",
                         confidence_column: str = "confidence") -> pd.DataFrame:
        """Return ``frame`` with a prediction column (and a confidence column for classes)."""
        prediction = self.predict_frame(frame)
        result = frame.copy()
        result[column] = pd.Series(prediction.values, index=prediction.row_index, dtype=object)
        if prediction.confidence is not None:
            result[confidence_column] = pd.Series(np.round(prediction.confidence, 4), index=prediction.row_index)
        return result

