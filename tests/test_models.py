"""Model sources, the language check, long-text strategies, the character model and table warm starts."""

import io
import zipfile

import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.adapters import TextAdapter
from edutune_core.catalog import availability, catalog_rows, check_language, text_language
from edutune_core.config import TrainConfig
from edutune_core.export import export_run
from edutune_core.i18n import ConfigError
from edutune_core.models import TableEncoder, resolve_model_source
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, FAILED, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data

CHINESE_ESSAYS = ["我的老师非常认真，她每天都很早来到学校。" * 3, "手机对学习有好处也有坏处，我们要合理使用。" * 2]


def long_essays(rows: int) -> pd.DataFrame:
    frame = make_essays(rows)
    frame["essay"] = [(text + " ") * 12 for text in frame["essay"]]
    return frame


def test_catalog_lists_offline_availability():
    rows = {row["model_id"]: row for row in catalog_rows("zh")}
    assert rows["all-MiniLM-L6-v2"]["availability"] == "bundled"
    assert {"hfl/rbt3", "hfl/chinese-roberta-wwm-ext", "bert-base-chinese", "intfloat/multilingual-e5-small",
            "xlm-roberta-base", "microsoft/deberta-v3-small"} <= set(rows)
    assert catalog_rows("zh")[0]["languages"][0] == "zh"
    assert availability("edutune-tests/not-cached") == "download"


def test_language_check_flags_chinese_for_english_model():
    check = check_language("all-MiniLM-L6-v2", CHINESE_ESSAYS)
    assert check.language == "zh"
    assert check.unknown_share > 0.3
    assert not check.covered
    assert check.recommended[0] == "hfl/rbt3"


def test_language_check_passes_english():
    check = check_language("all-MiniLM-L6-v2", make_essays(10)["essay"].tolist())
    assert check.covered
    assert check.unknown_share == 0.0
    assert text_language(["plain English words"]) == "en"


def test_language_check_without_local_tokenizer_returns_none():
    assert check_language("edutune-tests/not-downloaded", CHINESE_ESSAYS) is None


@pytest.mark.parametrize("truncation, windows", [("head", 1), ("head_tail", 1), ("chunks", 8)])
def test_long_text_windows(tiny_text_model, truncation, windows):
    adapter = TextAdapter.load(tiny_text_model, max_length=32, truncation=truncation)
    data = prepare_data(long_essays(12), ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    encoded = adapter.encode(data)
    assert all(len(pieces) == windows for pieces in encoded)
    assert all(len(window) <= 32 for pieces in encoded for window in pieces)
    if truncation == "head_tail":
        tokens = adapter.tokenizer(data.texts[0], add_special_tokens=False)["input_ids"]
        assert encoded[0][0][-2] == tokens[-1]  # the last word survives, before the closing [SEP]
    inputs, _ = next(adapter.batches(encoded, None, np.arange(4), 4))
    assert adapter.forward(inputs).shape == (4, adapter.model.config.num_labels)


@pytest.mark.parametrize("truncation", ["head_tail", "chunks"])
def test_long_text_strategies_train_and_predict(tmp_path, tiny_text_model, truncation):
    store = RunStore(tmp_path)
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=8, max_length=32, truncation=truncation)
    frame = long_essays(32)
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="score", text_column="essay",
                                                                        problem=REGRESSION), config,
                                           data_name="long").run_id)
    assert record.status == COMPLETED, record.error
    predictor = Predictor(record.run_dir)
    assert predictor.adapter.truncation == truncation
    assert len(predictor.predict_frame(frame.head(5)).values) == 5


def test_unknown_truncation_is_rejected():
    problems = TrainConfig(truncation="middle").problems()
    assert [problem.params["setting"] for problem in problems] == ["truncation"]
    assert isinstance(problems[0], ConfigError)


def test_char_model_trains_on_chinese_offline(tmp_path):
    store = RunStore(tmp_path)
    frame = pd.DataFrame({"作文": [CHINESE_ESSAYS[index % 2] + str(index) for index in range(40)],
                          "等级": ["优" if index % 2 == 0 else "中" for index in range(40)]})
    config = TrainConfig(model="char-cnn", epochs=3, batch_size=8, max_length=64)
    record = execute_run(store, create_run(store, frame, ColumnMapping(target="等级", text_column="作文"), config,
                                           data_name="zh").run_id)
    assert record.status == COMPLETED, record.error
    assert record.metrics["accuracy"] == 1.0
    assert Predictor(record.run_dir).predict_frame(frame.head(2)).values == ["优", "中"]


def test_exported_run_continues_as_a_model_source(tmp_path, tiny_text_model):
    store = RunStore(tmp_path / "home")
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=8, max_length=32)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION)
    first = execute_run(store, create_run(store, make_essays(32), mapping, config, data_name="term1").run_id)
    zipfile.ZipFile(io.BytesIO(export_run(first))).extractall(tmp_path / "unzipped")
    exported = tmp_path / "unzipped" / f"edutune-{first.run_id}"
    assert resolve_model_source(str(exported)) == str(exported / "model")

    # Last term's scores were 1-4; this term classifies strong and weak essays with a new head.
    frame = make_essays(32, seed=1)
    frame["level"] = np.where(frame["score"] >= 3, "strong", "weak")
    second = execute_run(store, create_run(store, frame, ColumnMapping(target="level", text_column="essay"),
                                           TrainConfig(model=str(exported), epochs=1, batch_size=8, max_length=32),
                                           data_name="term2").run_id)
    assert second.status == COMPLETED, second.error
    assert second.model == str(exported)


def test_table_warm_start_reports_unmatched_columns(tmp_path):
    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    first = execute_run(store, create_run(store, make_gradebook(), mapping, TrainConfig.for_task(False, epochs=3),
                                          data_name="term1").run_id)
    term2 = make_gradebook(seed=5).drop(columns=["absences"]).assign(homework=1.0)
    second = execute_run(store, create_run(store, term2, mapping,
                                           TrainConfig.for_task(False, epochs=3, model=str(first.run_dir)),
                                           data_name="term2").run_id)
    assert second.status == COMPLETED, second.error
    warm = [event["detail"] for event in store.events(second.run_id) if event["kind"] == "warm_start"]
    assert warm == [{"from": str(first.run_dir), "missing": ["absences"], "ignored": ["homework"]}]


def test_table_warm_start_needs_same_outputs(tmp_path):
    store = RunStore(tmp_path)
    first = execute_run(store, create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION),
                                          TrainConfig.for_task(False, epochs=1), data_name="t1").run_id)
    second = execute_run(store, create_run(store, make_gradebook(), ColumnMapping(target="final", pass_mark=60),
                                           TrainConfig.for_task(False, epochs=1, model=str(first.run_dir)),
                                           data_name="t2").run_id)
    assert second.status == FAILED
    assert second.error["key"] == "model.outputs_differ"


def test_table_transform_round_trip():
    frame = make_gradebook(50)
    frame.loc[3, "hours"] = np.nan
    encoder = TableEncoder.fit(frame[["hours", "absences", "class"]])
    restored = TableEncoder.from_dict(encoder.to_dict())
    new_rows = pd.DataFrame({"hours": [1.0, None], "absences": [3, 4], "class": ["7B", "unseen"]})
    assert np.array_equal(encoder.transform(new_rows), restored.transform(new_rows))
    assert restored.transform(new_rows)[1, 2:].sum() == 0  # an unseen class sets no one-hot column


def test_catalog_notes_exist_in_both_languages():
    from edutune_core.catalog import CATALOG
    from edutune_core.i18n import catalog

    for entry in CATALOG:
        assert entry.note_key in catalog("en"), entry.note_key
        assert entry.note_key in catalog("zh"), entry.note_key
