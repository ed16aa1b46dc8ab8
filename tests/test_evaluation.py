import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.evaluation import (
    EvaluationError,
    example_errors,
    extreme_examples,
    load_validation,
    rater_agreement,
    second_rater_columns,
)
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping


@pytest.fixture(scope="module")
def pass_fail_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    frame = make_gradebook(150)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"],
                            group_columns=["class"])
    record = create_run(store, frame, mapping, TrainConfig.for_task(False, epochs=5), data_name="book.csv")
    return execute_run(store, record.run_id), frame


@pytest.fixture(scope="module")
def essay_run(tmp_path_factory, tiny_text_model):
    store = RunStore(tmp_path_factory.mktemp("home"))
    frame = make_essays(60)
    rng = np.random.default_rng(0)
    frame["rater2"] = np.clip(frame["score"] + rng.integers(-1, 2, 60), 1, 4).astype(float)
    frame.loc[::6, "rater2"] = np.nan
    frame["words"] = frame["essay"].str.split().str.len()
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=32, learning_rate=1e-3)
    record = create_run(store, frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                        config, data_name="essays.csv")
    return execute_run(store, record.run_id), frame


def test_validation_rows_join_their_source(pass_fail_run):
    record, frame = pass_fail_run
    validation = load_validation(record)
    assert len(validation) == 30
    assert validation.labels == ["fail", "pass"]
    rows = validation.predictions["row"].to_numpy()
    assert validation.source["student_id"].tolist() == frame.loc[rows, "student_id"].tolist()
    expected = np.where(frame.loc[rows, "final"] >= 60, 1, 0)
    assert validation.target_values().tolist() == expected.tolist()
    assert validation.probabilities.shape == (30, 2)
    assert validation.probabilities.sum(axis=1) == pytest.approx(np.ones(30), abs=1e-5)
    agree = (validation.predicted_values() == validation.target_values()).mean()
    assert agree == pytest.approx(record.metrics["accuracy"])


def test_class_errors_use_true_class_probability(pass_fail_run):
    validation = load_validation(pass_fail_run[0])
    errors = example_errors(validation)
    targets = validation.target_values()
    assert errors == pytest.approx(1 - validation.probabilities[np.arange(30), targets])
    wrong, right = extreme_examples(validation, 4)
    assert wrong["error"].is_monotonic_decreasing
    assert right["error"].is_monotonic_increasing
    assert wrong["error"].iloc[0] >= right["error"].iloc[-1]
    # Table tasks show the input columns, never the ignored student id.
    assert {"hours", "absences", "class"} <= set(wrong.columns)
    assert "student_id" not in wrong.columns


def test_score_run_saves_unrounded_values(essay_run):
    record, _ = essay_run
    validation = load_validation(record)
    assert validation.family == "score"
    raw = validation.raw_values()
    assert np.clip(np.rint(raw), 1, 4).tolist() == validation.predicted_values().tolist()
    assert example_errors(validation) == pytest.approx(np.abs(raw - validation.target_values()))
    wrong, _ = extreme_examples(validation, 2)
    assert "essay" in wrong.columns


def test_second_rater_agreement_matches_sklearn(essay_run):
    record, frame = essay_run
    validation = load_validation(record)
    # A word count is not on the 1-4 rubric, so it is not offered as a second rater.
    assert second_rater_columns(validation) == ["rater2"]
    agreement = rater_agreement(validation, "rater2")
    rows = validation.predictions["row"].to_numpy()
    second = frame.loc[rows, "rater2"].to_numpy()
    present = ~np.isnan(second)
    teacher = frame.loc[rows, "score"].to_numpy()[present]
    assert agreement["rows"] == int(present.sum())
    expected = cohen_kappa_score(teacher, second[present].astype(int), weights="quadratic", labels=[1, 2, 3, 4])
    assert agreement["human_human"]["qwk"] == pytest.approx(expected)
    model = validation.predicted_values()[present]
    assert agreement["human_machine"]["exact_agreement"] == pytest.approx(np.mean(model == teacher))


def test_second_rater_errors(essay_run, pass_fail_run):
    validation = load_validation(essay_run[0])
    with pytest.raises(EvaluationError) as caught:
        rater_agreement(validation, "rater3")
    assert "rater2" in caught.value.message("en")
    validation.source["halves"] = 2.5
    with pytest.raises(EvaluationError) as caught:
        rater_agreement(validation, "halves")
    assert caught.value.key == "evaluation.rater_not_scores"
    with pytest.raises(EvaluationError) as caught:
        rater_agreement(load_validation(pass_fail_run[0]), "hours")
    assert caught.value.key == "evaluation.rater_needs_scores"


def test_missing_predictions_file(pass_fail_run, tmp_path):
    record, _ = pass_fail_run
    moved = record.__class__(**{**record.__dict__, "run_dir": tmp_path})
    with pytest.raises(EvaluationError) as caught:
        load_validation(moved)
    assert caught.value.key == "evaluation.predictions_missing"


def test_rows_outside_snapshot(pass_fail_run, tmp_path):
    record, frame = pass_fail_run
    copy = record.__class__(**{**record.__dict__, "run_dir": tmp_path})
    predictions = pd.read_csv(record.run_dir / "validation_predictions.csv")
    predictions.loc[0, "row"] = 10_000
    predictions.to_csv(tmp_path / "validation_predictions.csv", index=False)
    frame.to_parquet(tmp_path / "train_data.parquet", index=False)
    with pytest.raises(EvaluationError) as caught:
        load_validation(copy)
    assert caught.value.key == "evaluation.rows_mismatch"
