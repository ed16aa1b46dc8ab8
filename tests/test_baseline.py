import json

import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.baseline import (
    BASELINE_FILE,
    FLOOR,
    FOREST,
    LINEAR,
    TFIDF_LINEAR,
    baseline_metrics,
    evaluate_split,
    fit_predict,
)
from edutune_core.config import TrainConfig
from edutune_core.crossval import fold_splits
from edutune_core.evaluation import EvaluationError
from edutune_core.runner import create_run, load_all_rows, load_run_data
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data


def gradebook_data(problem=REGRESSION, pass_mark=None, rows=200):
    return prepare_data(make_gradebook(rows), ColumnMapping(target="final", problem=problem, pass_mark=pass_mark,
                                                            ignore_columns=["student_id"]))


def test_table_baselines_learn_and_floor_does_not():
    data = gradebook_data()
    results = evaluate_split(data.subset(np.arange(150)), data.subset(np.arange(150, 200)))
    assert list(results) == [LINEAR, FOREST, FLOOR]
    assert results[LINEAR]["r2"] > 0.7
    assert results[FOREST]["r2"] > 0.4
    assert results[FLOOR]["r2"] < 0.05
    # The grade spans more than 61 points, so it counts as a continuous value.
    assert "qwk" not in results[LINEAR]
    assert results[LINEAR]["rmse"] < results[FLOOR]["rmse"] / 2


def test_floor_predicts_majority_class():
    data = gradebook_data(CLASSIFICATION, pass_mark=70)
    train, validation = data.subset(np.arange(150)), data.subset(np.arange(150, 200))
    majority = np.bincount(train.targets).argmax()
    results = evaluate_split(train, validation)
    assert results[FLOOR]["accuracy"] == pytest.approx(np.mean(validation.targets == majority))
    assert results[LINEAR]["accuracy"] > results[FLOOR]["accuracy"]


def test_floor_value_is_training_mean():
    data = gradebook_data()
    train, validation = data.subset(np.arange(100)), data.subset(np.arange(100, 110))
    assert fit_predict(FLOOR, train, validation) == pytest.approx(np.full(10, train.targets.mean()))


def test_class_missing_from_training_rows_gets_zero_probability():
    frame = pd.DataFrame({"hours": np.arange(30.0), "grade": ["A"] * 12 + ["B"] * 12 + ["C"] * 6})
    data = prepare_data(frame, ColumnMapping(target="grade", problem=CLASSIFICATION))
    probabilities = fit_predict(LINEAR, data.subset(np.arange(24)), data.subset(np.arange(24, 30)))
    assert probabilities.shape == (6, 3)
    assert np.all(probabilities[:, 2] == 0)
    assert probabilities.sum(axis=1) == pytest.approx(np.ones(6))


def test_table_baseline_handles_missing_values():
    frame = make_gradebook(80)
    frame.loc[::7, "hours"] = np.nan
    frame.loc[::5, "class"] = None
    data = prepare_data(frame, ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"]))
    results = evaluate_split(data.subset(np.arange(60)), data.subset(np.arange(60, 80)))
    assert np.isfinite(results[LINEAR]["rmse"])


def test_text_baseline_beats_floor():
    data = prepare_data(make_essays(120), ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    results = evaluate_split(data.subset(np.arange(90)), data.subset(np.arange(90, 120)))
    assert list(results) == [TFIDF_LINEAR, FLOOR]
    assert results[TFIDF_LINEAR]["qwk"] > 0.5
    assert results[FLOOR]["qwk"] == pytest.approx(0.0)


def test_text_baseline_reads_chinese_without_spaces():
    rng = np.random.default_rng(2)
    good, weak = "论点清楚证据充分结构完整", "内容空洞语句重复"
    texts, labels = [], []
    for _ in range(60):
        label = str(rng.choice(["好", "差"]))
        source = good if label == "好" else weak
        texts.append("".join(rng.choice(list(source), size=20)))
        labels.append(label)
    data = prepare_data(pd.DataFrame({"作文": texts, "等级": labels}),
                        ColumnMapping(target="等级", text_column="作文", problem=CLASSIFICATION))
    results = evaluate_split(data.subset(np.arange(45)), data.subset(np.arange(45, 60)))
    assert results[TFIDF_LINEAR]["accuracy"] == 1.0


def test_run_baseline_uses_run_split_and_caches(tmp_path):
    store = RunStore(tmp_path / "home")
    mapping = ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(), mapping, TrainConfig.for_task(False, seed=9), data_name="b.csv")
    result = baseline_metrics(record)
    assert result["split"] == "holdout"
    train, validation = load_run_data(record)
    assert result["models"][LINEAR]["rmse"] == pytest.approx(evaluate_split(train, validation, 9)[LINEAR]["rmse"])

    cached = json.loads((record.run_dir / BASELINE_FILE).read_text(encoding="utf-8"))
    cached["models"][LINEAR]["rmse"] = -1.0
    (record.run_dir / BASELINE_FILE).write_text(json.dumps(cached), encoding="utf-8")
    assert baseline_metrics(record)["models"][LINEAR]["rmse"] == -1.0


def test_run_baseline_uses_run_folds(tmp_path):
    store = RunStore(tmp_path / "home")
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(120), mapping, TrainConfig.for_task(False, folds=4, seed=2),
                        data_name="b.csv")
    result = baseline_metrics(record)
    assert result["split"] == "folds"
    linear = result["models"][LINEAR]
    assert len(linear["folds"]) == 4
    assert linear["accuracy"] == pytest.approx(np.mean([fold["accuracy"] for fold in linear["folds"]]))
    assert linear["spread"]["accuracy"] == pytest.approx(np.std([fold["accuracy"] for fold in linear["folds"]],
                                                                ddof=1))
    data = load_all_rows(record)
    first_train, first_validation = fold_splits(data, 4, 2)[0]
    first = evaluate_split(data.subset(first_train), data.subset(first_validation), 2)[LINEAR]
    assert linear["folds"][0]["accuracy"] == pytest.approx(first["accuracy"])


def test_run_without_snapshot(tmp_path):
    store = RunStore(tmp_path / "home")
    mapping = ColumnMapping(target="final", problem=REGRESSION)
    record = create_run(store, make_gradebook(40), mapping, TrainConfig.for_task(False), data_name="b.csv")
    (record.run_dir / "train_data.parquet").unlink()
    with pytest.raises(EvaluationError) as caught:
        baseline_metrics(record)
    assert caught.value.key == "evaluation.snapshot_missing"
    assert "train_data.parquet" in caught.value.message("zh")
