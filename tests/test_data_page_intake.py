"""Data page tests with Streamlit's AppTest: sheets, score cells, column roles, the
score scale, upload limits and the privacy choice recorded in a run."""

from __future__ import annotations

import io
import tomllib

import openpyxl
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_essays, make_gradebook
from edutune_core import data as data_module
from edutune_core.i18n import DataError
from edutune_core.runstore import RunStore
from edutune_core.tasks import prepare_data
from edutune_core.uploads import UploadStore

APP = str(ROOT / "app.py")


def open_upload(home, data: bytes, name: str, lang: str = "en") -> tuple[AppTest, str]:
    choice = f"upload:{UploadStore(home / 'uploads').save(data, name).upload_id}"
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value(choice).run()
    assert not at.exception, at.exception
    return at, choice


def shown_text(at: AppTest) -> str:
    parts = [element.value for kind in ("markdown", "success", "info", "warning", "error", "caption")
             for element in at.get(kind)]
    return "\n".join(str(part) for part in parts)


def cell_examples(at: AppTest, row_header: str) -> pd.DataFrame:
    """Return the table of example cells, the one whose first column is ``row_header``."""
    return next(element.value for element in at.dataframe if list(element.value.columns)[:1] == [row_header])


def workbook(sheets: dict[str, list[list]]) -> bytes:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def grade_rows(count: int = 12) -> list[list]:
    return [["姓名", "作业", "期末"], *[[f"学生{index}", 60 + index, 70 + index % 5] for index in range(count)]]


def test_cover_sheet_skipped_with_picker(edutune_home):
    data = workbook({"封面": [["本册为期末成绩"]], "成绩": grade_rows()})

    at, choice = open_upload(edutune_home, data, "期末.xlsx", "zh")

    assert not at.error
    assert at.selectbox(key=f"sheet_{choice}").options == ["封面", "成绩"]
    assert at.selectbox(key=f"sheet_{choice}").value == "成绩"
    assert list(at.session_state["dataset"]["frame"].columns) == ["姓名", "作业", "期末"]


def test_picker_shown_after_failed_sheet(edutune_home):
    data = workbook({"封面": [["本册为期末成绩"]], "成绩": grade_rows()})
    at, choice = open_upload(edutune_home, data, "期末.xlsx", "zh")

    at.selectbox(key=f"sheet_{choice}").set_value("封面").run()

    assert not at.exception, at.exception
    assert "期末.xlsx" in at.error[0].value
    assert at.selectbox(key=f"sheet_{choice}").options == ["封面", "成绩"]
    at.selectbox(key=f"sheet_{choice}").set_value("成绩").run()
    assert not at.error
    assert len(at.session_state["dataset"]["frame"]) == 12


def test_picker_shown_when_no_sheet_loads(edutune_home):
    data = workbook({"封面": [["本册为期末成绩"]], "说明": [["请勿修改"]]})

    at, choice = open_upload(edutune_home, data, "covers.xlsx")

    assert "covers.xlsx" in at.error[0].value
    assert "no data rows" in at.error[0].value
    assert at.selectbox(key=f"sheet_{choice}").options == ["封面", "说明"]
    assert "dataset" not in at.session_state


@pytest.mark.parametrize("lang, expected", [("en", "format the column as Text"), ("zh", "设置为“文本”格式")])
def test_rounded_ids_warned(edutune_home, lang, expected):
    rows = [["身份证号", "分数"], *[[110105200801011000 + index * 1000, 60 + index] for index in range(12)]]

    at, _ = open_upload(edutune_home, workbook({"S": rows}), "ids.xlsx", lang)

    warnings = [element.value for element in at.warning if expected in element.value]
    assert len(warnings) == 1
    assert "身份证号" in warnings[0]


def scores_with_gaps(markers: list[str]) -> bytes:
    frame = make_gradebook(30)
    frame["final"] = frame["final"].astype(str)
    for position, marker in zip((2, 5, 9, 14), markers):
        frame.loc[position, "final"] = marker
    return frame.to_csv(index=False).encode()


def test_missing_scores_reported_and_dropped(edutune_home):
    at, choice = open_upload(edutune_home, scores_with_gaps(["N/A", "-", ""]), "gaps.csv")

    assert "dataset" in at.session_state
    assert at.session_state["dataset"]["frame"]["final"].dtype == "float64"
    shown = shown_text(at)
    assert "Column “final” has 3 empty or missing cells (blank, NA, N/A or -), for example in rows 3, 6, 10." in shown
    table = cell_examples(at, "Row (below the header)")
    assert table.iloc[:, 0].tolist() == [3, 6, 10]
    assert table.iloc[:, 1].tolist() == ["(empty)", "(empty)", "(empty)"]

    at.checkbox(key=f"drop_target_{choice}_final").check().run()

    assert not at.exception, at.exception
    dataset = at.session_state["dataset"]
    assert len(dataset["frame"]) == 27
    assert dataset["frame"]["final"].dtype == "int64"
    assert dataset["intake"]["dropped_before_mapping"] == {"data.dropped.missing_target": 3}


def test_absent_and_blank_scores_in_chinese(edutune_home):
    at, choice = open_upload(edutune_home, scores_with_gaps(["缺考", "absent", "", "N/A"]), "缺考.csv", "zh")

    shown = shown_text(at)
    assert "“final”列是分数，但其中有 2 个值不是数字（例如 “缺考”, “absent”），另有 2 个空单元格" in shown
    assert cell_examples(at, "行号（表头以下）").iloc[:, 1].tolist() == ["缺考", "absent", "（空）", "N/A"]

    at.checkbox(key=f"drop_target_{choice}_final").check().run()

    dropped = at.session_state["dataset"]["intake"]["dropped_before_mapping"]
    assert dropped == {"intake.dropped.non_numeric_target": 2, "data.dropped.missing_target": 2}


def test_group_and_student_columns_in_mapping(edutune_home):
    frame = make_gradebook(40)
    frame["gender"] = ["f", "m"] * 20
    at, choice = open_upload(edutune_home, frame.to_csv(index=False).encode(), "groups.csv")
    assert at.selectbox(key=f"student_{choice}").value == ""

    at.multiselect(key=f"groups_{choice}").set_value(["class", "gender"]).run()
    at.selectbox(key=f"student_{choice}").set_value("student_id").run()

    assert not at.exception, at.exception
    mapping = at.session_state["dataset"]["mapping"]
    assert mapping.group_columns == ["class", "gender"]
    assert mapping.student_column == "student_id"
    assert "final" not in at.multiselect(key=f"groups_{choice}").options


def test_score_scale_from_rubric(edutune_home):
    essays = make_essays(40)
    at, choice = open_upload(edutune_home, essays.to_csv(index=False).encode(), "essays.csv")
    keys = {name: f"score_{name}_{choice}_score" for name in ("min", "max", "step")}
    assert at.number_input(key=keys["min"]).value == essays["score"].min()
    assert at.number_input(key=keys["max"]).value == essays["score"].max()

    at.number_input(key=keys["min"]).set_value(0.0).run()
    at.number_input(key=keys["max"]).set_value(6.0).run()

    assert not at.exception, at.exception
    mapping = at.session_state["dataset"]["mapping"]
    assert (mapping.score_min, mapping.score_max, mapping.score_step) == (0.0, 6.0, 1.0)
    assert "Scores are whole points from 0 to 6" in shown_text(at)
    assert prepare_data(essays, mapping).score_points == (0, 6)


def test_score_scale_too_narrow_message(edutune_home):
    at, choice = open_upload(edutune_home, make_essays(40).to_csv(index=False).encode(), "essays.csv", "zh")

    at.number_input(key=f"score_max_{choice}_score").set_value(3.0).run()

    assert not at.exception, at.exception
    assert "“score”列有" in at.error[0].value
    assert "超出分数范围 1 到 3" in at.error[0].value


@pytest.mark.parametrize("lang, expected", [("en", "up to 200 MB"), ("zh", "最大 200 MB")])
def test_upload_help_states_limit(edutune_home, lang, expected):
    at = AppTest.from_file(APP, default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.switch_page("pages/data.py").run()

    assert expected in at.get("file_uploader")[0].proto.help


def test_server_upload_limit_above_own():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))

    assert config["server"]["maxUploadSize"] > data_module.MAX_FILE_BYTES // 2**20


@pytest.mark.parametrize("lang, expected", [("en", "more than the 200 MB limit"), ("zh", "超过了 200 MB 的上限")])
def test_oversize_between_limits_gets_own_message(lang, expected):
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    size = (data_module.MAX_FILE_BYTES + config["server"]["maxUploadSize"] * 2**20) // 2

    with pytest.raises(DataError) as raised:
        data_module.check_file_size("big.xlsx", size)

    assert "big.xlsx" in raised.value.message(lang)
    assert expected in raised.value.message(lang)
    data_module.check_file_size("ok.csv", data_module.MAX_FILE_BYTES)


def test_privacy_choice_recorded_in_run(edutune_home):
    frame = make_gradebook(30)
    frame.insert(1, "姓名", [f"{surname}{given}" for surname, given in zip("王李张刘陈杨黄赵吴周" * 3, "伟芳娜敏静丽强磊军洋" * 3)])
    frame.insert(2, "手机", [13800000000 + index for index in range(30)])
    at, choice = open_upload(edutune_home, frame.to_csv(index=False).encode(), "class.csv")
    at.selectbox(key=f"privacy_{choice}_手机").set_value("drop").run()
    at.selectbox(key=f"privacy_{choice}_姓名").set_value("keep").run()

    at.switch_page("pages/train.py").run()
    at.button(key="train_start").click().run()

    assert not at.exception, at.exception
    runs = RunStore(edutune_home).list_runs()
    assert len(runs) == 1
    recorded = {entry["column"]: entry["action"] for entry in runs[0].summary["privacy"]["columns"]}
    assert recorded == {"student_id": "pseudonymise", "姓名": "keep", "手机": "drop"}
    assert "王伟" not in str(runs[0].summary)
