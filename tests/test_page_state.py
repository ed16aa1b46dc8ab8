"""Page state that must survive a language switch, a failed data choice and a browser refresh."""

import pytest

from conftest import make_gradebook
from edutune_core.config import TrainConfig
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
