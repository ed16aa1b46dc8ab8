"""Page state that must survive a language switch, a failed data choice and a browser refresh."""

import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.runstore import RunStore
from edutune_core.uploads import UploadStore
from edutune_core.tasks import ColumnMapping
from test_app import choose_gradebook_with_pass_mark, finished_run, open_app, texts


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


@pytest.mark.parametrize("key, low, high, label, allowed, frame, mapping",
                         [(*field, make_gradebook(120), BOOK) for field in TABLE_FIELDS]
                         + [(*field, make_essays(40), ESSAYS) for field in TEXT_FIELDS])
def test_field_out_of_range(edutune_home, key, low, high, label, allowed, frame, mapping):
    at = open_train("en", frame, mapping)
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


def upload_single_class(home) -> str:
    """Save a gradebook whose only usable target has one class, and return its choice key."""
    frame = make_gradebook(30)
    frame["final"] = 70
    saved = UploadStore(home / "uploads").save(frame.to_csv(index=False).encode(), "flat.csv")
    return f"upload:{saved.upload_id}"


@pytest.mark.parametrize("lang, expected", [
    ("en", "The data chosen on the Data page (flat.csv) cannot be used for training yet."),
    ("zh", "“数据”页面当前选择的数据（flat.csv）还不能用于训练。"),
])
def test_train_drops_earlier_data_after_failure(edutune_home, lang, expected):
    flat = upload_single_class(edutune_home)
    at = open_app("pages/data.py", lang=lang)
    choose_gradebook_with_pass_mark(at)
    assert at.session_state["dataset"]["name"] == "gradebook_en.csv"

    at.selectbox(key="data_file").set_value(flat).run()
    assert len(at.error) == 1
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    assert expected in texts(at)
    assert "gradebook_en.csv" not in texts(at)
    assert not [button for button in at.button if button.key == "train_start"]

    # Choosing a valid file again offers its data.
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.switch_page("pages/train.py").run()
    assert expected not in texts(at)
    assert [button for button in at.button if button.key == "train_start"]


def test_new_session_restores_sample_mapping(edutune_home):
    first = open_app("pages/data.py")
    choose_gradebook_with_pass_mark(first)
    first.multiselect(key="ignore_sample:gradebook_en.csv").set_value(["student_id"]).run()
    expected = first.session_state["dataset"]

    # A refresh starts a new session with empty session state on the same data folder.
    train = open_app("pages/train.py")
    assert "gradebook_en.csv" in texts(train)
    assert [button for button in train.button if button.key == "train_start"]
    restored = train.session_state["dataset"]
    assert restored["mapping"] == expected["mapping"]
    assert restored["mapping"].ignore_columns == ["student_id"]
    assert restored["mapping"].pass_mark is not None
    pd.testing.assert_frame_equal(restored["frame"], expected["frame"])
    assert restored["profile"]["source_rows"] == expected["profile"]["source_rows"]

    data = open_app("pages/data.py")
    assert data.selectbox(key="data_file").value == "sample:gradebook_en.csv"
    assert data.checkbox(key="use_pass_sample:gradebook_en.csv").value
    assert data.multiselect(key="ignore_sample:gradebook_en.csv").value == ["student_id"]
    assert data.session_state["dataset"]["mapping"] == expected["mapping"]


def test_new_session_restores_upload_privacy(edutune_home):
    frame = make_gradebook(80)
    frame.insert(1, "email", [f"student{index}@school.example" for index in range(len(frame))])
    saved = UploadStore(edutune_home / "uploads").save(frame.to_csv(index=False).encode(), "class 7A.csv")
    choice = f"upload:{saved.upload_id}"
    first = open_app("pages/data.py", lang="zh")
    first.selectbox(key="data_file").set_value(choice).run()
    first.selectbox(key=f"target_{choice}").set_value("final").run()
    assert not first.error, [error.value for error in first.error]
    first.selectbox(key=f"privacy_{choice}_email").set_value("drop").run()
    expected = first.session_state["dataset"]["frame"]
    assert "email" not in expected

    train = open_app("pages/train.py", lang="zh")
    restored = train.session_state["dataset"]
    assert restored["name"] == "class 7A.csv"
    assert restored["mapping"].target == "final"
    pd.testing.assert_frame_equal(restored["frame"], expected)
    assert open_app("pages/data.py").selectbox(key=f"privacy_{choice}_email").value == "drop"


def test_new_session_after_failure_offers_nothing(edutune_home):
    flat = upload_single_class(edutune_home)
    first = open_app("pages/data.py")
    choose_gradebook_with_pass_mark(first)
    first.selectbox(key="data_file").set_value(flat).run()

    train = open_app("pages/train.py")
    assert "The data chosen on the Data page (flat.csv) cannot be used for training yet." in texts(train)
    assert not [button for button in train.button if button.key == "train_start"]
    assert open_app("pages/data.py").selectbox(key="data_file").value == flat


def test_new_session_without_saved_file(edutune_home):
    frame = make_gradebook(40)
    saved = UploadStore(edutune_home / "uploads").save(frame.to_csv(index=False).encode(), "gone.csv")
    first = open_app("pages/data.py")
    first.selectbox(key="data_file").set_value(f"upload:{saved.upload_id}").run()
    assert first.session_state["dataset"]["name"] == "gone.csv"
    saved.path.unlink()

    train = open_app("pages/train.py")
    assert "Choose the data and the column to predict on the Data page first." in texts(train)
    assert open_app("pages/data.py").selectbox(key="data_file").value != f"upload:{saved.upload_id}"


def test_unreadable_selection_file_ignored(edutune_home):
    folder = edutune_home / "uploads"
    folder.mkdir(parents=True)
    (folder / "selection.json").write_text("{not json", encoding="utf-8")
    train = open_app("pages/train.py")
    assert "Choose the data and the column to predict on the Data page first." in texts(train)
    assert UploadStore(folder).last_selection() is None


@pytest.mark.parametrize("lang, expected, plural", [
    ("en", "1 pair of texts is almost identical (rows", "pairs of texts"),
    ("zh", "有 1 对文本几乎完全相同（表头以下第", "涉及 2 行"),
])
def test_one_near_duplicate_pair_singular(edutune_home, lang, expected, plural):
    frame = make_essays(40)
    frame.loc[5, "essay"] = frame.loc[0, "essay"].replace(".", "!", 1) + " Thanks."
    saved = UploadStore(edutune_home / "uploads").save(frame.to_csv(index=False).encode(), "essays.csv")
    at = open_app("pages/data.py", lang=lang)
    at.selectbox(key="data_file").set_value(f"upload:{saved.upload_id}").run()
    assert not at.exception, at.exception
    warnings = [warning.value for warning in at.warning]
    assert any(expected in warning for warning in warnings), warnings
    assert not any(plural in warning for warning in warnings), warnings
