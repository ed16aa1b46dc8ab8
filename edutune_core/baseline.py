"""Simple baselines trained on the same rows as a fine-tuned model, to show what it adds.

Text gets TF-IDF features (words and character n-grams, so Chinese text without spaces
works too) with a linear model. Tables get a linear model and a random forest. Every
text and table task also gets a floor: the most common class, or the mean value.
Image tasks get no baselines, because none of these models reads pixels. Ridge regression
serves scores and values, logistic regression serves classes. Score predictions are
rounded and clipped to the rubric like the fine-tuned model's.

``baseline_metrics(record)`` evaluates the baselines on the run's own split (the same
held-out rows, or the same folds for a cross-validated run) and caches the result in
the run folder as ``baseline.json``.
"""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import make_pipeline, make_union
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from edutune_core import metrics as metric_lib
from edutune_core.config import TrainConfig
from edutune_core.crossval import fold_splits
from edutune_core.evaluation import require_snapshot
from edutune_core.runner import load_all_rows, load_run_data
from edutune_core.runstore import RunRecord
from edutune_core.tasks import CLASSIFICATION, IMAGE_CLASSIFICATION, TABULAR, PreparedData, is_numeric

logger = logging.getLogger(__name__)

BASELINE_FILE = "baseline.json"
# Bump when baselines or their metrics change, so cached results are computed again.
BASELINE_VERSION = 2

TFIDF_LINEAR = "tfidf_linear"
LINEAR = "linear"
FOREST = "forest"
FLOOR = "floor"


def baseline_kinds(data: PreparedData) -> tuple[str, ...]:
    """Return the baselines that fit the task, the floor last, or none for images."""
    if data.task == IMAGE_CLASSIFICATION:
        return ()
    return (LINEAR, FOREST, FLOOR) if data.task == TABULAR else (TFIDF_LINEAR, FLOOR)


def build_baseline(kind: str, data: PreparedData, seed: int = 0):
    """Return an unfitted scikit-learn pipeline for ``kind`` that takes ``model_inputs(data)``."""
    classes = data.mapping.problem == CLASSIFICATION
    if kind == FLOOR:
        return DummyClassifier(strategy="prior") if classes else DummyRegressor(strategy="mean")
    if kind == FOREST:
        forest = (RandomForestClassifier if classes else RandomForestRegressor)(
            n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=1)
        return make_pipeline(_table_columns(data), forest)
    head = LogisticRegression(max_iter=2000) if classes else RidgeCV(alphas=(0.1, 1.0, 10.0, 100.0))
    if kind == TFIDF_LINEAR:
        words = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, max_features=50_000)
        characters = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, max_features=50_000)
        return make_pipeline(make_union(words, characters), head)
    if kind == LINEAR:
        return make_pipeline(_table_columns(data), head)
    raise ValueError(f"unknown baseline {kind!r}; expected one of {TFIDF_LINEAR}, {LINEAR}, {FOREST}, {FLOOR}")


def _table_columns(data: PreparedData) -> ColumnTransformer:
    """Impute and scale numbers, impute and one-hot encode categories."""
    numeric = [column for column in data.features.columns if is_numeric(data.features[column])]
    categorical = [column for column in data.features.columns if column not in numeric]
    return ColumnTransformer([
        ("numbers", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
         numeric),
        ("categories", make_pipeline(SimpleImputer(strategy="constant", fill_value=""),
                                     OneHotEncoder(handle_unknown="ignore")), categorical),
    ])


def model_inputs(data: PreparedData):
    """Return the texts, or the feature table with category cells as text."""
    if data.texts is not None:
        return list(data.texts)
    table = data.features.copy()
    for column in table.columns:
        if not is_numeric(table[column]):
            table[column] = table[column].map(lambda value: "" if pd.isna(value) else str(value)).astype(object)
    return table


def fit_predict(kind: str, train: PreparedData, validation: PreparedData, seed: int = 0) -> np.ndarray:
    """Fit a baseline on ``train`` and return raw outputs for ``validation``.

    Returns:
        Class probabilities with one column per label of ``train.labels`` (0 for a class
        missing from the training rows), or predicted values before rounding.
    """
    model = build_baseline(kind, train, seed)
    model.fit(model_inputs(train), train.targets)
    if train.mapping.problem != CLASSIFICATION:
        return np.asarray(model.predict(model_inputs(validation)), dtype=np.float64)
    probabilities = np.zeros((len(validation), len(train.labels)))
    probabilities[:, model.classes_] = model.predict_proba(model_inputs(validation))
    return probabilities


def evaluate_split(train: PreparedData, validation: PreparedData, seed: int = 0) -> dict[str, dict]:
    """Fit every baseline that fits the task on ``train`` and return its metrics on ``validation``."""
    results = {}
    for kind in baseline_kinds(train):
        raw = fit_predict(kind, train, validation, seed)
        predicted = raw.argmax(axis=1) if train.mapping.problem == CLASSIFICATION else raw
        results[kind] = metric_lib.compute_metrics(train.mapping.problem, validation.targets, predicted,
                                                   labels=train.labels, score_points=train.score_points)
    return results


def evaluate_folds(data: PreparedData, splits: list[tuple[np.ndarray, np.ndarray]], seed: int = 0) -> dict[str, dict]:
    """Evaluate every baseline on each fold and return the fold means, spread and per-fold values."""
    per_fold = [evaluate_split(data.subset(train), data.subset(validation), seed) for train, validation in splits]
    results = {}
    for kind in per_fold[0]:
        folds = [{name: fold[kind][name] for name in metric_lib.SCALAR_METRICS if name in fold[kind]}
                 for fold in per_fold]
        results[kind] = {**metric_lib.summarize_folds(folds), "folds": folds}
    return results


def baseline_metrics(record: RunRecord) -> dict:
    """Evaluate the baselines on the run's own split, reading ``baseline.json`` when it is current.

    Returns:
        ``{"version", "run_id", "split": "folds" | "holdout", "models": {kind: metrics}}``.
        ``models`` is empty for an image run.

    Raises:
        EvaluationError: The run's data snapshot is missing.
        DataError: The snapshot no longer fits the run's column mapping.
    """
    path = record.run_dir / BASELINE_FILE
    if path.exists():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("version") == BASELINE_VERSION and cached.get("run_id") == record.run_id:
            return cached
    config = TrainConfig.from_dict(record.config["train"])
    split = "folds" if config.folds >= 2 else "holdout"
    if record.task == IMAGE_CLASSIFICATION:
        return {"version": BASELINE_VERSION, "run_id": record.run_id, "split": split, "models": {}}
    require_snapshot(record)
    if config.folds >= 2:
        data = load_all_rows(record)
        splits = fold_splits(data, config.folds, config.seed)
        # A stopped run evaluated only its first folds; the baselines use the same ones.
        completed = len((record.metrics or {}).get("folds", [])) or len(splits)
        models = evaluate_folds(data, splits[:completed], config.seed)
    else:
        train, validation = load_run_data(record)
        models = evaluate_split(train, validation, config.seed)
    result = {"version": BASELINE_VERSION, "run_id": record.run_id, "split": split, "models": models}
    path.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    logger.info("baselines of run %s on its %s split: %s", record.run_id, split, ", ".join(models))
    return result
