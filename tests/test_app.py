"""Page tests with Streamlit's AppTest: the real pages and core, no browser."""

import io
import time

import numpy as np
import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import edutune_core.data
from conftest import ROOT, make_essays, make_gradebook
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
    summary = "\n".join(markdown.value for markdown in at.markdown)
    assert f"rows in the file, {record.summary['rows_used']} used for training and validation" in summary
    assert "Rows per class: fail:" in summary


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
    # One held-out split: 100 essays would get 5-fold cross-validation, five times the training.
    at.selectbox(key="adv_folds").set_value(0).run()
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


def test_two_sessions_share_one_queue(edutune_home):
    """Two browser sessions start runs; the second waits its turn and each keeps its own run."""
    sessions = []
    for epochs in (150, 3):
        at = open_app("pages/data.py")
        choose_gradebook_with_pass_mark(at)
        at.switch_page("pages/train.py").run()
        at.number_input(key="train_epochs").set_value(epochs).run()
        at.selectbox(key="adv_folds").set_value(0).run()
        at.button(key="train_start").click().run()
        sessions.append(at)
    first, second = sessions
    assert "Waiting for another run to finish: place 1 in the queue." in texts(second)
    assert first.session_state["run_id"] != second.session_state["run_id"]
    wait_until_finished(second, timeout=180)
    store = RunStore(edutune_home)
    by_id = {record.run_id: record for record in store.list_runs()}
    assert by_id[first.session_state["run_id"]].config["train"]["epochs"] == 150
    assert by_id[second.session_state["run_id"]].config["train"]["epochs"] == 3
    assert by_id[first.session_state["run_id"]].updated_at <= by_id[second.session_state["run_id"]].updated_at


def finished_run(home, frame, mapping, config, name="run"):
    from edutune_core.runner import create_run, execute_run

    store = RunStore(home)
    record = create_run(store, frame, mapping, config, data_name=f"{name}.csv", name=name)
    return execute_run(store, record.run_id)


def test_results_page_cross_validated_at_risk_run(edutune_home):
    from edutune_core.config import TrainConfig
    from edutune_core.tasks import CLASSIFICATION, ColumnMapping

    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"],
                            group_columns=["class"])
    record = finished_run(edutune_home, make_gradebook(150), mapping, TrainConfig.for_task(False, epochs=3, folds=3))
    at = open_app("pages/results.py")
    shown = {metric.label: (metric.value, metric.proto.delta) for metric in at.metric}
    mean, spread = record.metrics["accuracy"], record.metrics["spread"]["accuracy"]
    assert shown["accuracy"] == (f"{mean:.3f}", f"± {spread:.3f}")
    page = texts(at)
    assert "3-fold cross-validation on 150 rows" in page
    assert "Flag a student when the probability of \"fail\" is at least" in page
    baseline = next(frame.value for frame in at.dataframe if "model" in frame.value.columns)
    assert baseline["model"].tolist() == ["fine-tuned model", "linear model", "random forest",
                                            "floor: most common class or mean"]
    assert [button.label for button in at.get("download_button")] == ["Download report (中文)",
                                                                      "Download report (English)"]

    at.slider(key="results_target_recall").set_value(1.0).run()
    at.checkbox(key="results_threshold_groups").check().run()
    assert not at.exception, at.exception
    assert "(100%)" in texts(at)
    at.button(key="results_importance").click().run()
    assert not at.exception, at.exception


def test_results_page_second_rater_in_chinese(edutune_home, tiny_text_model):
    from conftest import make_essays
    from edutune_core.config import TrainConfig
    from edutune_core.tasks import REGRESSION, ColumnMapping

    frame = make_essays(50)
    frame["rater2"] = frame["score"]
    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=32, learning_rate=1e-3)
    finished_run(edutune_home, frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION), config)
    at = open_app("pages/results.py", lang="zh")
    at.selectbox(key="results_rater_column").set_value("rater2").run()
    assert not at.exception, at.exception
    table = next(frame.value for frame in at.dataframe if "比较对象" in frame.value.columns)
    assert table["比较对象"].tolist() == ["教师 vs. 第二位教师", "教师 vs. 模型"]
    assert table["QWK"].iloc[0] == 1.0


def test_predict_page_explains_text_and_table(edutune_home, tiny_text_model):
    from conftest import make_essays
    from edutune_core.config import TrainConfig
    from edutune_core.tasks import CLASSIFICATION, ColumnMapping

    config = TrainConfig(model=str(tiny_text_model), epochs=1, batch_size=16, max_length=32, learning_rate=1e-3)
    finished_run(edutune_home, make_essays(40), ColumnMapping(target="score", text_column="essay",
                                                              problem=CLASSIFICATION), config, name="essays")
    at = open_app("pages/predict.py")
    at.text_area(key="predict_text").set_value("A clear argument. Stuff like good things.").run()
    at.toggle(key="predict_explain").set_value(True).run()
    at.radio(key="predict_explain_unit").set_value("sentence").run()
    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    highlighted = [element.value for element in at.markdown if "<span" in element.value]
    assert len(highlighted) == 1
    assert highlighted[0].count("<span") == 2

    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    finished_run(edutune_home, make_gradebook(80), mapping, TrainConfig.for_task(False, epochs=2), name="book")
    at = open_app("pages/predict.py", lang="zh")
    at.toggle(key="predict_explain").set_value(True).run()
    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    assert "“fail”的概率" in texts(at)


# Data intake on the Data page, with files saved as uploads by the tests.

def open_upload(home, data: bytes, name: str, lang: str = "en") -> tuple[AppTest, str]:
    choice = f"upload:{UploadStore(home / 'uploads').save(data, name).upload_id}"
    at = open_app("pages/data.py", lang=lang)
    at.selectbox(key="data_file").set_value(choice).run()
    assert not at.exception, at.exception
    return at, choice


def workbook(sheets: dict[str, list[list]], merged: dict[str, list[str]] | None = None) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
        for cells in (merged or {}).get(title, []):
            sheet.merge_cells(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("lang, expected", [("en", "neither a text table nor an Excel workbook"),
                                            ("zh", "既不是文本表格，也不是 Excel 工作簿")])
def test_data_page_binary_file_message(edutune_home, lang, expected):
    at, _ = open_upload(edutune_home, bytes(range(256)) * 4, "photo.csv", lang)

    assert len(at.error) == 1
    assert "photo.csv" in at.error[0].value
    assert expected in at.error[0].value


@pytest.mark.parametrize("lang, expected", [("en", "cannot be opened"), ("zh", "无法打开")])
def test_data_page_truncated_workbook_message(edutune_home, lang, expected):
    data = workbook({"Sheet": [["name", "score"], ["Ada", 91]]})[:700]
    at, _ = open_upload(edutune_home, data, f"cut-{lang}.xlsx", lang)

    assert f"cut-{lang}.xlsx" in at.error[0].value
    assert expected in at.error[0].value


@pytest.mark.parametrize("lang, expected", [("en", "more than the 1 MB limit"), ("zh", "超过了 1 MB 的上限")])
def test_data_page_oversize_file_message(edutune_home, monkeypatch, lang, expected):
    monkeypatch.setattr(edutune_core.data, "MAX_FILE_BYTES", 2**20)
    at, _ = open_upload(edutune_home, b"name,score\n" + b"Ada,91\n" * 200_000 + lang.encode(), "big.csv", lang)

    assert "big.csv" in at.error[0].value
    assert "1.3 MB" in at.error[0].value
    assert expected in at.error[0].value


def test_data_page_sheet_and_header_rows(edutune_home):
    students = [[f"学生{index}", 6 + index % 4, 60 + index, 7 + index % 3, 65 + index] for index in range(12)]
    data = workbook({"期中": [["姓名", "分数"], ["张三", 80], ["李四", 90]],
                     "期末": [["姓名", "第一学期", None, "第二学期", None], [None, "测验", "期末", "测验", "期末"],
                             *students]},
                    merged={"期末": ["A1:A2", "B1:C1", "D1:E1"]})
    at, choice = open_upload(edutune_home, data, "成绩册.xlsx", "zh")
    assert at.selectbox(key=f"sheet_{choice}").options == ["期中", "期末"]

    at.selectbox(key=f"sheet_{choice}").set_value("期末").run()

    assert not at.exception, at.exception
    assert "列名来自两行表头（第 1 行和第 2 行）" in texts(at)
    assert list(at.session_state["dataset"]["frame"].columns) == [
        "姓名", "第一学期 / 测验", "第一学期 / 期末", "第二学期 / 测验", "第二学期 / 期末"]
    at.selectbox(key=f"header_rows_{choice}").set_value(1).run()
    assert "测验_2" in at.session_state["dataset"]["frame"].columns


def test_data_page_joins_labels_file(edutune_home):
    essays = make_essays(24)
    essays["essay_id"] = [f"{index:03d}" for index in range(24)]
    labels = essays[["essay_id", "score"]].iloc[2:].assign(essay_id=lambda frame: frame["essay_id"].astype(int))
    store = UploadStore(edutune_home / "uploads")
    labels_id = store.save(workbook({"Scores": [["id", "score"], *labels.values.tolist(), [99, 3]]}),
                           "scores.xlsx").upload_id
    at, choice = open_upload(edutune_home, essays.drop(columns="score").to_csv(index=False).encode(), "essays.csv")

    at.selectbox(key=f"labels_file_{choice}").set_value(labels_id).run()

    assert not at.exception, at.exception
    assert at.selectbox(key=f"labels_text_id_{choice}").value == "essay_id"
    assert at.selectbox(key=f"labels_label_id_{choice}").value == "id"
    shown = texts(at)
    assert "Joined essays.csv and scores.xlsx: 22 rows have a label." in shown
    assert "2 rows of essays.csv have no row in the labels file and were left out (IDs: 000, 001)." in shown
    assert "1 rows of scores.xlsx match no row of the main file (IDs: 99)." in shown
    dataset = at.session_state["dataset"]
    assert len(dataset["frame"]) == 22
    assert dataset["mapping"].target == "score"
    assert dataset["intake"]["labels_join"]["unmatched_texts"] == 2


def test_data_page_drops_non_numeric_scores(edutune_home):
    frame = make_gradebook(40).rename(columns={"final": "成绩"})
    frame["成绩"] = frame["成绩"].astype(str)
    frame.loc[[3, 8], "成绩"] = "缺考"
    frame.loc[5, "成绩"] = "absent"
    at, choice = open_upload(edutune_home, frame.to_csv(index=False).encode("gb18030"), "成绩.csv", "zh")
    assert "“成绩”列是分数，但其中有 3 个值不是数字（例如 “缺考”, “absent”），另有 0 个空单元格" in texts(at)
    assert at.dataframe[1].value.iloc[:, 1].tolist() == ["缺考", "absent", "缺考"]

    at.checkbox(key=f"drop_target_{choice}_成绩").check().run()

    assert not at.exception, at.exception
    dataset = at.session_state["dataset"]
    assert len(dataset["frame"]) == 37
    assert dataset["frame"]["成绩"].dtype == "int64"
    assert dataset["intake"]["dropped_before_mapping"] == {"intake.dropped.non_numeric_target": 3}
    assert "有 3 行分数不是数字的记录未被使用。" in texts(at)


def test_data_page_privacy_actions(edutune_home):
    frame = make_gradebook(30)
    frame.insert(1, "姓名", [f"{surname}{given}" for surname, given in zip("王李张刘陈杨黄赵吴周" * 3, "伟芳娜敏静丽强磊军洋" * 3)])
    frame.insert(2, "手机", [13800000000 + index for index in range(30)])
    at, choice = open_upload(edutune_home, frame.to_csv(index=False).encode(), "class.csv")
    assert at.session_state["dataset"]["frame"]["姓名"].iloc[0] == "学生001"

    at.selectbox(key=f"privacy_{choice}_手机").set_value("drop").run()

    dataset = at.session_state["dataset"]
    assert "手机" not in dataset["frame"].columns
    actions = {entry["column"]: entry["action"] for entry in dataset["privacy"]["columns"]}
    assert actions == {"student_id": "pseudonymise", "姓名": "pseudonymise", "手机": "drop"}
    assert "王伟" not in str(dataset["privacy"])
    assert "Pseudonymised columns: 2. Dropped columns: 1." in texts(at)


def test_data_page_imbalance_and_leak_warnings(edutune_home):
    rng = np.random.default_rng(0)
    earlier = np.concatenate([rng.integers(11, 20, 170), rng.integers(2, 9, 30)])
    frame = pd.DataFrame({"absences": rng.integers(0, 10, 200), "G2": earlier, "G3": earlier + rng.integers(0, 2, 200)})
    at, choice = open_upload(edutune_home, frame.to_csv(index=False, sep=";").encode(), "student.csv")

    at.checkbox(key=f"use_pass_{choice}").check().run()
    at.number_input(key=f"pass_{choice}_G3").set_value(10.0).run()

    assert not at.exception, at.exception
    shown = texts(at)
    assert "The classes are unbalanced: “pass” has 170 rows but “fail” has only 30" in shown
    assert "Column “G2” alone predicts the target almost perfectly" in shown
    assert "Class weights are recommended" in shown
    assert at.session_state["dataset"]["suggest_class_weights"] is True
