"""Page state that must survive a language switch, a failed data choice and a browser refresh."""

import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.runstore import RunStore
from edutune_core.tasks import ColumnMapping
from test_app import finished_run, open_app, texts


@pytest.fixture
def two_runs(edutune_home):
    """Two finished table runs; the newer one ("beta") is selected by default."""
    frame = make_gradebook(60)
    mapping = ColumnMapping(target="final", problem="regression")
    config = TrainConfig.for_task(False, epochs=1)
    older = finished_run(edutune_home, frame, mapping, config, name="alpha")
    newer = finished_run(edutune_home, frame, mapping, config, name="beta")
    return older, newer


def switch_language(at, lang: str) -> None:
    at.selectbox(key="language_choice").set_value(lang).run()
    assert not at.exception, at.exception


def sent_label(widget) -> str:
    """Return the label that the page sent to the browser for the selection."""
    assert widget.proto.set_value, f"{widget.key} kept the label that the browser shows"
    return widget.proto.raw_value


@pytest.mark.parametrize("page, key", [("pages/history.py", "history_run"), ("pages/results.py", "results_run"),
                                       ("pages/predict.py", "predict_run")])
def test_run_picker_relabels_after_switch(two_runs, page, key):
    older, _ = two_runs
    at = open_app(page)
    at.selectbox(key=key).set_value(older.run_id).run()
    assert "alpha · completed" in at.selectbox(key=key).options[at.selectbox(key=key).index]

    switch_language(at, "zh")
    picker = at.selectbox(key=key)
    assert picker.value == older.run_id
    assert sent_label(picker).startswith("alpha · 已完成")

    switch_language(at, "en")
    picker = at.selectbox(key=key)
    assert picker.value == older.run_id
    assert sent_label(picker).startswith("alpha · completed")


def test_run_picker_keeps_label_without_switch(two_runs):
    at = open_app("pages/history.py")
    at.run()
    assert not at.selectbox(key="history_run").proto.set_value


def test_run_picker_follows_other_page(two_runs):
    older, newer = two_runs
    at = open_app("pages/history.py")
    assert at.selectbox(key="history_run").value == newer.run_id
    at.selectbox(key="history_run").set_value(older.run_id).run()
    at.switch_page("pages/results.py").run()
    assert at.selectbox(key="results_run").value == older.run_id
    at.session_state["run_id"] = newer.run_id
    at.switch_page("pages/history.py").run()
    assert at.selectbox(key="history_run").value == newer.run_id


def test_compare_boxes_relabel_after_switch(two_runs):
    older, newer = two_runs
    at = open_app("pages/compare.py")
    assert set(at.multiselect(key="compare_runs").value) == {older.run_id, newer.run_id}
    at.selectbox(key="compare_curve").set_value("train:loss").run()

    switch_language(at, "zh")
    runs = at.multiselect(key="compare_runs")
    assert set(runs.value) == {older.run_id, newer.run_id}
    assert runs.proto.set_value
    assert all("已完成" in label for label in runs.proto.raw_values)
    curve = at.selectbox(key="compare_curve")
    assert curve.value == "train:loss"
    assert sent_label(curve) == "训练损失"


BOOK = ColumnMapping(target="final", problem="classification", pass_mark=60, ignore_columns=["student_id"])
ESSAYS = ColumnMapping(target="score", text_column="essay", problem="regression")


def open_train(lang: str, frame, mapping):
    at = open_app(lang=lang)
    at.session_state["dataset"] = {"name": "book.csv", "frame": frame, "mapping": mapping}
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("lang, expected", [
    ("en", "The setting Epochs is 2000, which is outside the allowed range 1 – 1000. Enter a value in that range."),
    ("zh", "设置项 训练轮数（epochs） 的值为 2000，超出允许范围 1 – 1000。请输入该范围内的值。"),
])
def test_epochs_above_max_rejected(edutune_home, lang, expected):
    at = open_train(lang, make_gradebook(120), BOOK)
    at.number_input(key="train_epochs").set_value(2000).run()
    assert at.number_input(key="train_epochs").value == 2000
    assert [error.value for error in at.error] == [expected]
    assert at.button(key="train_start").disabled
    assert at.button(key="train_find_lr").disabled
    assert RunStore(edutune_home).list_runs() == []


# Every number field of the Train page, with a value below and one above its range.
TABLE_FIELDS = [
    ("train_learning_rate", 0.0, 2.0, "Learning rate", "(0, 1]"),
    ("train_epochs", 0, 1001, "Epochs", "1 – 1000"),
    ("train_batch_size", 0, 5000, "Batch size", "1 – 4096"),
    ("train_seed", -1, 2**32, "Seed", "0 – 4294967295"),
    ("adv_weight_decay", -0.5, 1.5, "Weight decay", "0 – 1"),
    ("adv_clip", -1.0, 1001.0, "Gradient clipping (max norm)", "0 – 1000"),
    ("adv_accumulation", 0, 1025, "Gradient accumulation", "1 – 1024"),
    ("adv_patience", -1, 101, "Early stopping patience (epochs)", "0 – 100"),
]
TEXT_FIELDS = [
    ("train_max_length", 7, 8193, "Max length (tokens)", "8 – 8192"),
    ("adv_freeze_layers", -1, 101, "Layers to freeze", "0 – 100"),
]


@pytest.mark.parametrize("key, low, high, label, allowed", TABLE_FIELDS)
def test_table_field_out_of_range(edutune_home, key, low, high, label, allowed):
    at = open_train("en", make_gradebook(120), BOOK)
    for value in (low, high):
        at.number_input(key=key).set_value(value).run()
        errors = [error.value for error in at.error]
        assert len(errors) == 1, errors
        assert f"The setting {label} is {value}," in errors[0]
        assert allowed in errors[0]
        assert at.button(key="train_start").disabled


@pytest.mark.parametrize("key, low, high, label, allowed", TEXT_FIELDS)
def test_text_field_out_of_range(edutune_home, key, low, high, label, allowed):
    at = open_train("en", make_essays(40), ESSAYS)
    for value in (low, high):
        at.number_input(key=key).set_value(value).run()
        errors = [error.value for error in at.error]
        assert len(errors) == 1, errors
        assert f"The setting {label} is {value}," in errors[0]
        assert allowed in errors[0]
        assert at.button(key="train_start").disabled


def test_valid_settings_start_run(edutune_home):
    at = open_train("en", make_gradebook(120), BOOK)
    at.number_input(key="train_epochs").set_value(1000).run()
    at.number_input(key="train_epochs").set_value(2).run()
    assert not at.error
    assert not at.button(key="train_start").disabled
    at.button(key="train_start").click().run()
    assert not at.exception, at.exception
    assert [record.config["train"]["epochs"] for record in RunStore(edutune_home).list_runs()] == [2]
