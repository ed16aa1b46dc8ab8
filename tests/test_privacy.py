"""Tests for edutune_core.privacy: finding personal data and dropping or pseudonymising it."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from edutune_core.data import load_table
from edutune_core.privacy import (
    DROP,
    EMAIL,
    KEEP,
    NAME,
    NATIONAL_ID,
    PHONE,
    STUDENT_ID,
    apply_privacy,
    find_spans,
    header_kind,
    mask,
    resident_id_valid,
    scan_privacy,
)

# A resident ID number with a valid MOD 11-2 checksum (X), and the same number with a wrong one.
VALID_ID = "11010519491231002X"
INVALID_ID = "110105194912310021"


def roster() -> pd.DataFrame:
    return pd.DataFrame({
        "学号": ["2024001", "2024002", "2024003", "2024004"],
        "姓名": ["张三", "李四", "王小明", "欧阳娜娜"],
        "Student": ["Anna Smith", "José Müller", "Li Wei", "Mary-Jane O'Neil"],
        "手机": [13812345678, 13912345678, 15012345678, 18612345678],
        "评语": [
            "张三同学很认真，家长电话 138-1234-5678，邮箱 zhang.san@example.com。",
            "李四的作文写得好，身份证 " + VALID_ID + " 不要写在作文里。",
            "王老师说王小明进步很大，Ms. Novak agrees; call +44 20 7946 0958.",
            "Anna Smith helped 欧阳娜娜 with fractions; her student ID: S2024009.",
        ],
        "score": [85, 90, 77, 68],
    })


def kinds_by_column(frame: pd.DataFrame) -> dict[str, dict[str, int]]:
    return {finding.column: finding.kinds for finding in scan_privacy(frame).findings}


def test_resident_id_checksum() -> None:
    assert resident_id_valid(VALID_ID)
    assert resident_id_valid(VALID_ID.lower())
    assert not resident_id_valid(INVALID_ID)


@pytest.mark.parametrize(("column", "kind"), [
    ("姓名", NAME), ("学生姓名", NAME), ("Full name", NAME), ("学号", STUDENT_ID), ("student_id", STUDENT_ID),
    ("身份证号", NATIONAL_ID), ("手机号码", PHONE), ("E-mail", EMAIL), ("score", None), ("作文", None),
])
def test_header_kind(column: str, kind: str | None) -> None:
    assert header_kind(column) == kind


def test_scan_finds_each_kind() -> None:
    found = kinds_by_column(roster())

    assert found["学号"] == {STUDENT_ID: 4}
    assert found["姓名"] == {NAME: 4}
    assert found["Student"] == {NAME: 4}
    assert found["手机"] == {PHONE: 4}
    assert found["评语"] == {NAME: 4, STUDENT_ID: 1, NATIONAL_ID: 1, PHONE: 2, EMAIL: 1}
    assert "score" not in found


def test_names_found_without_header_hint() -> None:
    frame = pd.DataFrame({"who": ["陈志明", "林怡君", "黄建宏", "刘洋"], "person": ["Ada Lovelace", "Alan Turing",
                                                                         "Grace Hopper", "Smith, John"]})

    assert kinds_by_column(frame) == {"who": {NAME: 4}, "person": {NAME: 4}}


def test_codes_found_in_unique_column() -> None:
    frame = pd.DataFrame({"code": [f"S{2024000 + index}" for index in range(10)],
                          "essay_no": [f"E{index:03d}" for index in range(10)]})

    assert kinds_by_column(frame) == {"code": {STUDENT_ID: 10}}


@pytest.mark.parametrize("frame", [
    pytest.param(pd.DataFrame({"类别": ["方程", "分数", "几何", "方程", "分数", "几何"]}), id="repeated-topics"),
    pytest.param(pd.DataFrame({"guardian": ["mother", "father", "other", "mother"]}), id="guardian-roles"),
    pytest.param(pd.DataFrame({"score": [12, 15, 9], "hours": [1.5, 2.0, 3.5]}), id="numbers"),
    pytest.param(pd.DataFrame({"essay": [
        "Last year we visited New York and the Empire State Building, which my teacher recommended to us.",
        "老师告诉我们，我的老师是郑老师，她讲课很有趣，方便了同学之间的交流和学习，全班同学都很喜欢。",
        "The library will be busy with toddlers ranging from @NUM5 -@NUM6.this is why @DATE1@NUM1.and more.",
        "Call 2024-03-01 at 10:30; my score was 98.5 out of 100, and student number 12 won the prize.",
    ]}), id="free-text-without-personal-data"),
])
def test_no_false_findings(frame: pd.DataFrame) -> None:
    assert scan_privacy(frame).findings == []


def test_short_comments_searched_for_names() -> None:
    frame = pd.DataFrame({"姓名": ["吴志强", "黄小明", "杨建国"], "评语": ["吴志强同学学习认真", "继续努力", "黄小明有进步"]})

    result, _ = apply_privacy(frame, scan_privacy(frame), {})

    assert kinds_by_column(frame)["评语"] == {NAME: 2}
    assert result["评语"].tolist() == ["学生001同学学习认真", "继续努力", "学生002有进步"]


def test_invalid_resident_id_not_flagged() -> None:
    assert find_spans(f"号码 {INVALID_ID} 是错的") == []
    assert find_spans(f"号码 {VALID_ID} 是对的") == [(3, 21, NATIONAL_ID)]


@pytest.mark.parametrize(("text", "found"), [
    ("我叫李明，今年十二岁。", "李明"),
    ("同学王小红帮我讲题。", "王小红"),
    ("昨天李明同学没来。", "李明"),
    ("Dr. Adeyemi explained it.", "Adeyemi"),
    ("Mail me at li.ming@school.edu.cn today", "li.ming@school.edu.cn"),
    ("电话：+86 138 1234 5678", "+86 138 1234 5678"),
    ("office (555) 123-4567 ext", "(555) 123-4567"),
    ("座机 010-12345678", "010-12345678"),
    ("学号：20240101 的作业", "20240101"),
])
def test_find_spans_in_free_text(text: str, found: str) -> None:
    assert [text[start:end] for start, end, _ in find_spans(text)] == [found]


def test_pseudonymise_consistently_across_columns_and_text() -> None:
    frame = roster()
    result, summary = apply_privacy(frame, scan_privacy(frame), {})

    assert result["姓名"].tolist() == ["学生001", "学生002", "学生003", "学生004"]
    # Each placeholder prefix counts on its own: 学生001 and STUDENT_001 are different people.
    assert result["Student"].tolist() == ["STUDENT_001", "STUDENT_002", "STUDENT_003", "STUDENT_004"]
    assert result["学号"].tolist() == ["ID_001", "ID_002", "ID_003", "ID_004"]
    assert result["手机"].tolist() == ["PHONE_001", "PHONE_002", "PHONE_003", "PHONE_004"]
    comments = result["评语"].tolist()
    assert comments[0] == "学生001同学很认真，家长电话 PHONE_001，邮箱 EMAIL_001。"
    assert comments[1] == "学生002的作文写得好，身份证 ID_005 不要写在作文里。"
    assert comments[2] == "王老师说学生003进步很大，Ms. STUDENT_005 agrees; call PHONE_005."
    assert comments[3] == "STUDENT_001 helped 学生004 with fractions; her student ID: ID_006."
    assert result["score"].tolist() == [85, 90, 77, 68]


def test_summary_records_actions_without_values() -> None:
    frame = roster()
    result, summary = apply_privacy(frame, scan_privacy(frame), {"学号": DROP, "Student": KEEP})

    assert "学号" not in result.columns
    assert result["Student"].tolist() == frame["Student"].tolist()
    assert {entry["column"]: entry["action"] for entry in summary["columns"]} == {
        "学号": "drop", "姓名": "pseudonymise", "Student": "keep", "手机": "pseudonymise", "评语": "pseudonymise"}
    assert summary["rows"] == 4
    text = json.dumps(summary, ensure_ascii=False)
    for value in ("张三", "Anna", "13812345678", "zhang.san", VALID_ID, "2024001"):
        assert value not in text


def test_unknown_action_rejected() -> None:
    frame = roster()
    with pytest.raises(ValueError, match="unknown privacy actions"):
        apply_privacy(frame, scan_privacy(frame), {"姓名": "hide"})


def test_blank_cells_stay_blank() -> None:
    frame = pd.DataFrame({"姓名": ["张三", None, "李四", ""], "score": [1, 2, 3, 4]})

    result, _ = apply_privacy(frame, scan_privacy(frame), {})

    assert result["姓名"].tolist()[0] == "学生001"
    assert pd.isna(result["姓名"].iloc[1])
    assert result["姓名"].tolist()[2:] == ["学生002", ""]


def test_examples_are_masked() -> None:
    findings = {finding.column: finding for finding in scan_privacy(roster()).findings}

    assert findings["姓名"].examples == ["张*", "李*", "王**"]
    assert findings["手机"].examples[0] == "1*********8"
    assert mask("Anna Smith") == "A********h"
    assert mask("S0001") == "S***1"


def test_loaded_gradebook_with_personal_data() -> None:
    text = "学号,姓名,联系电话,成绩\n20240001,张伟,13800001111,88\n20240002,王芳,13900002222,92\n20240003,李娜,,75\n"
    frame = load_table(text.encode("gb18030"), "成绩.csv").frame

    result, summary = apply_privacy(frame, scan_privacy(frame), {"联系电话": DROP})

    assert list(result.columns) == ["学号", "姓名", "成绩"]
    assert result["姓名"].tolist() == ["学生001", "学生002", "学生003"]
    assert result["成绩"].tolist() == [88, 92, 75]


@pytest.mark.parametrize("text, kind, value", [
    ("我的学号是2024010001", STUDENT_ID, "2024010001"),
    ("my student ID is 2024010001", STUDENT_ID, "2024010001"),
    ("Student number: S20240001, class 7A", STUDENT_ID, "S20240001"),
    ("工号为88120341", STUDENT_ID, "88120341"),
    ("我的身份证号是110105200801011234", NATIONAL_ID, "110105200801011234"),
    ("My name is Anna Smith and I like maths.", NAME, "Anna Smith"),
    ("我的名字是李明，今年十岁。", NAME, "李明"),
    ("我叫王芳。", NAME, "王芳"),
])
def test_cued_values_found(text: str, kind: str, value: str) -> None:
    spans = find_spans(text)

    assert [(text[start:end], found) for start, end, found in spans] == [(value, kind)]


@pytest.mark.parametrize("text", [
    "My name is important to me.",
    "My name is on the list.",
    "I visited New York last summer.",
    "The student number of the class is large.",
    "王老师说明天考试。",
    "我们的班级有40个学生。",
    "学号和姓名写在试卷左上角。",
    "The student ID card was lost.",
])
def test_ordinary_sentences_not_flagged(text: str) -> None:
    assert find_spans(text) == []


def test_repeated_chinese_names_column() -> None:
    frame = pd.DataFrame({"作者": ["李明", "李明", "王芳", "李明", "王芳", "李明", "王芳", "李明"],
                          "score": range(8)})

    report = scan_privacy(frame)

    assert report.columns == ["作者"]
    assert report.findings[0].kinds == {NAME: 8}


def test_four_character_names_column() -> None:
    frame = pd.DataFrame({"who": ["欧阳娜娜", "司马相如", "李明", "王小明"]})

    assert scan_privacy(frame).findings[0].kinds == {NAME: 4}


@pytest.mark.parametrize("column, values", [
    ("班级", ["高一三班", "高一四班", "高二一班"] * 3),
    ("校区", ["张江校区", "徐汇校区"] * 4),
    ("班主任", ["王老师", "李老师"] * 4),
])
def test_class_and_campus_columns_not_names(column: str, values: list) -> None:
    assert scan_privacy(pd.DataFrame({column: values})).findings == []


def test_name_header_with_repeated_names() -> None:
    frame = pd.DataFrame({"Student Name": ["李明"] * 5 + ["王芳"] * 5})

    assert scan_privacy(frame).findings[0].kind == NAME
