"""Page tests with Streamlit's AppTest: the real pages and core, no browser."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from edutune_core.runstore import RunStore
from edutune_core.uploads import UploadStore

APP = str(ROOT / "app.py")


def open_app(page: str | None = None, lang: str | None = "en") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if lang is not None:
        at.session_state["lang"] = lang
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def texts(at: AppTest) -> str:
    parts = [element.value for kind in ("markdown", "success", "info", "warning", "error", "caption", "title")
             for element in at.get(kind)]
    return "\n".join(str(part) for part in parts)


def wait_until_finished(at: AppTest, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception
        if any(status in texts(at) for status in ("completed", "已完成", "failed", "失败")):
            return
    raise AssertionError(f"training did not finish; page shows:\n{texts(at)}")


def choose_gradebook_with_pass_mark(at: AppTest) -> None:
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.checkbox(key="use_pass_sample:gradebook_en.csv").check().run()
    assert not at.exception, at.exception


def test_home_in_english_and_chinese(edutune_home):
    assert open_app().title[0].value.startswith("EduTune: fine-tune")
    assert open_app(lang="zh").title[0].value.startswith("EduTune：用自己班级的数据微调模型")


def test_language_switch(edutune_home):
    at = open_app(lang=None)
    assert at.session_state["lang"] == "en"
    at.selectbox(key="language_choice").set_value("zh").run()
    assert at.session_state["lang"] == "zh"
    assert at.title[0].value.startswith("EduTune：")


def test_data_page_detects_and_maps_sample(edutune_home):
    at = open_app("pages/data.py")
    choose_gradebook_with_pass_mark(at)
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Rows"] == "300"
    assert metrics["Format"] == "CSV"
    assert "Ready: grade / at-risk prediction from table columns on 300 rows." in texts(at)
    dataset = at.session_state["dataset"]
    assert dataset["mapping"].target == "final_score"
    assert dataset["mapping"].pass_mark is not None


@pytest.mark.parametrize("lang, expected", [("en", "empty"), ("zh", "空")])
def test_data_page_bad_file_shows_message(edutune_home, lang, expected):
    saved = UploadStore(edutune_home / "uploads").save(b"", "empty.csv")
    at = open_app("pages/data.py", lang=lang)
    at.selectbox(key="data_file").set_value(f"upload:{saved.upload_id}").run()
    assert not at.exception
    assert len(at.error) == 1
    assert "empty.csv" in at.error[0].value
    assert expected in at.error[0].value


def test_data_page_mapping_error_in_chinese(edutune_home):
    frame = make_gradebook(30)
    frame["final"] = 70
    saved = UploadStore(edutune_home / "uploads").save(frame.to_csv(index=False).encode(), "flat.csv")
    at = open_app("pages/data.py", lang="zh")
    at.selectbox(key="data_file").set_value(f"upload:{saved.upload_id}").run()
    assert at.error[0].value.startswith("“final”列只有一个类别（“70”）")


def test_train_page_needs_data(edutune_home):
    at = open_app("pages/train.py", lang="zh")
    assert "请先在“数据”页面选择数据" in texts(at)


def test_table_run_from_train_page_to_history(edutune_home):
    at = open_app("pages/data.py")
    choose_gradebook_with_pass_mark(at)
    at.switch_page("pages/train.py").run()
    at.number_input(key="train_epochs").set_value(5).run()
    at.button(key="train_start").click().run()
    assert not at.error, [error.value for error in at.error]
    wait_until_finished(at)
    record = RunStore(edutune_home).list_runs()[0]
    assert record.status == "completed"
    assert record.config["train"]["epochs"] == 5

    at.switch_page("pages/results.py").run()
    assert not at.exception, at.exception
    shown = {metric.label: float(metric.value.split()[0]) for metric in at.metric}
    assert shown["accuracy"] == pytest.approx(record.metrics["accuracy"], abs=1e-3)
    assert "macro-F1" in shown

    at.switch_page("pages/predict.py").run()
    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Prediction: ")

    at.switch_page("pages/history.py").run()
    assert not at.exception, at.exception
    assert [button.label for button in at.get("download_button")] == ["Export (zip)"]


def test_text_run_from_train_page_shows_results(edutune_home, tiny_text_model):
    at = open_app("pages/data.py", lang="zh")
    at.selectbox(key="data_file").set_value("sample:essays_en.csv").run()
    mapping = at.session_state["dataset"]["mapping"]
    assert (mapping.text_column, mapping.target, mapping.problem) == ("essay", "score", "regression")

    at.switch_page("pages/train.py").run()
    at.radio(key="train_model_source").set_value("folder").run()
    at.text_input(key="train_model_reference").set_value(str(tiny_text_model)).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_max_length").set_value(32).run()
    at.button(key="train_start").click().run()
    assert not at.error, [error.value for error in at.error]
    wait_until_finished(at)
    record = RunStore(edutune_home).list_runs()[0]
    assert record.status == "completed", record.error
    assert record.task == "essay_scoring"

    at.switch_page("pages/results.py").run()
    assert not at.exception, at.exception
    labels = [metric.label for metric in at.metric]
    assert labels[:3] == ["QWK", "完全一致率", "相邻一致率"]
