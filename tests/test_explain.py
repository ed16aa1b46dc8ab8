import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.explain import (
    ExplainError,
    explain_row,
    explain_text,
    permutation_importance,
    reference_values,
    text_spans,
)
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run, load_run_data
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping


@pytest.fixture(scope="module")
def grade_predictor(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    mapping = ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(), mapping, TrainConfig.for_task(False, epochs=15, seed=1, learning_rate=3e-3),
                        data_name="book.csv")
    record = execute_run(store, record.run_id)
    train, _ = load_run_data(record)
    return Predictor(record.run_dir), pd.read_parquet(record.run_dir / "train_data.parquet"), train.features


@pytest.fixture(scope="module")
def essay_predictor(tmp_path_factory, tiny_text_model):
    store = RunStore(tmp_path_factory.mktemp("home"))
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=48, learning_rate=1e-3)
    record = create_run(store, make_essays(40), ColumnMapping(target="score", text_column="essay",
                                                              problem=CLASSIFICATION), config, data_name="e.csv")
    return Predictor(execute_run(store, record.run_id).run_dir)


def test_word_spans_in_english_and_chinese():
    text = "It's clear, because evidence-based work 很好。"
    parts = [text[start:end] for start, end in text_spans(text, "word", 50)]
    assert parts == ["It's", "clear", "because", "evidence-based", "work", "很", "好"]


def test_sentence_spans():
    text = "First point. Second one!  第三句。最后"
    parts = [text[start:end] for start, end in text_spans(text, "sentence", 50)]
    assert parts == ["First point.", "Second one!", "第三句。", "最后"]


def test_spans_merge_to_limit():
    text = " ".join(f"w{index}" for index in range(10))
    spans = text_spans(text, "word", 4)
    assert len(spans) == 4
    assert text[spans[0][0]:spans[0][1]] == "w0 w1 w2"
    assert spans[-1][1] == len(text)


def test_unknown_unit():
    with pytest.raises(ExplainError) as caught:
        text_spans("text", "paragraph", 10)
    assert "sentence" in caught.value.message("en")


def test_text_effects_are_output_differences(essay_predictor):
    text = "Clear argument because evidence. Stuff like very good thing. However the conclusion is clear."
    explanation = explain_text(essay_predictor, text, unit="sentence", output="4")
    assert explanation.output == "4"
    assert len(explanation.parts) == 3
    whole = essay_predictor.predict_frame(pd.DataFrame({"essay": [text]})).raw[0]
    assert explanation.value == pytest.approx(whole[3], abs=1e-5)
    start, end = explanation.parts.loc[1, ["start", "end"]]
    without = essay_predictor.predict_frame(pd.DataFrame({"essay": [text[:start] + text[end:]]})).raw[0]
    assert explanation.parts.loc[1, "effect"] == pytest.approx(whole[3] - without[3], abs=1e-5)


def test_text_explains_predicted_class_by_default(essay_predictor):
    explanation = explain_text(essay_predictor, "clear evidence however", unit="word")
    predicted = essay_predictor.predict_frame(pd.DataFrame({"essay": ["clear evidence however"]})).values[0]
    assert explanation.output == predicted
    assert explanation.parts["part"].tolist() == ["clear", "evidence", "however"]


@pytest.mark.parametrize("text, unit, key", [("   ", "word", "explain.empty_text"),
                                             ("clear", "word", None)])
def test_text_edge_cases(essay_predictor, text, unit, key):
    if key is None:
        # Removing the only word leaves an empty text, which has no prediction.
        explanation = explain_text(essay_predictor, text, unit=unit)
        assert np.isnan(explanation.parts.loc[0, "effect"])
        return
    with pytest.raises(ExplainError) as caught:
        explain_text(essay_predictor, text, unit=unit)
    assert caught.value.key == key


def test_unknown_class(essay_predictor):
    with pytest.raises(ExplainError) as caught:
        explain_text(essay_predictor, "clear", output="9")
    assert "1, 2, 3, 4" in caught.value.message("en")


def test_row_effects_follow_the_data(grade_predictor):
    predictor, _, train = grade_predictor
    references = reference_values(predictor)
    assert references["hours"] == pytest.approx(train["hours"].median())
    assert references["class"] == train["class"].value_counts().index[0]
    student = pd.DataFrame({"hours": [9.5], "absences": [references["absences"]], "class": [references["class"]]})
    explanation = explain_row(predictor, student)
    assert explanation.output is None
    assert explanation.parts.loc[0, "part"] == "hours"
    # More study hours than the median push the predicted grade up.
    assert explanation.parts.loc[0, "effect"] > 5
    unchanged = explanation.parts.set_index("part").loc[["absences", "class"], "effect"]
    assert unchanged.abs().max() < 1e-6


def test_row_explanation_guards(grade_predictor, essay_predictor):
    predictor, frame, _ = grade_predictor
    with pytest.raises(ExplainError) as caught:
        explain_row(predictor, frame.head(2))
    assert caught.value.params == {"rows": 2}
    with pytest.raises(ExplainError):
        explain_row(essay_predictor, pd.DataFrame({"essay": ["text"]}))
    with pytest.raises(ExplainError):
        explain_text(predictor, "text")


def test_permutation_importance_ranks_driving_column(grade_predictor):
    predictor, frame, _ = grade_predictor
    table = permutation_importance(predictor, frame.tail(60), repeats=3, seed=0)
    assert table["column"].tolist()[0] == "hours"
    assert table.set_index("column").loc["hours", "importance"] > 0
    assert set(table["column"]) == {"hours", "absences", "class"}
