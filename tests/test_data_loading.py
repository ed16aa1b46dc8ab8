"""Tests for edutune_core.data, with every fixture file built in memory by the test itself."""

from __future__ import annotations

import codecs
import io
import json
import logging
import re
import string
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from edutune_core import _text_tables
from edutune_core import data as data_module
from edutune_core.data import MAX_FILE_BYTES, SUPPORTED_ENCODINGS, LoadedTable, load_table, read_table_file
from edutune_core.i18n import DataError

LOCALES = Path(data_module.__file__).parent / "locales"

GRADES_ZH = "学号,姓名,语文,数学,评语\n2024001,张三,85,90.5,字迹工整，态度认真\n2024002,李四,78,88,需要加强练习\n2024003,王五,92,95,优秀\n"
GRADES_BIG5 = "學號,姓名,國文,數學,評語\n2024001,張三,85,90.5,字跡工整，態度認真\n2024002,李四,78,88,需要加強練習\n2024003,王五,92,95,優秀\n"
TWO_ROW_HEADER = "Student,Term 1,,,Term 2,,\n,Quiz,Essay,Final,Quiz,Essay,Final\nAda,8,14,71,9,15,80\nBo,6,12,65,7,11,70\n"
TWO_ROW_NAMES = ["Student", "Term 1 / Quiz", "Term 1 / Essay", "Term 1 / Final", "Term 2 / Quiz", "Term 2 / Essay",
                 "Term 2 / Final"]
GRADES_FR = (
    "Élève;Note;Remarque\nJosé Müller;14,5;très bien, à continuer\n"
    "Françoise Dubois;12;doit réviser l'été\nGaëlle Lefèvre;16,5;sérieuse – « excellent »\n"
)


@dataclass
class LoadCase:
    """A file to load and what the loaded table must contain."""

    data: bytes
    file_name: str
    columns: list[str]
    rows: int
    kinds: dict[str, str] = field(default_factory=dict)  # column -> "text", "int64", "float64" or "datetime"
    values: dict[tuple[int, str], object] = field(default_factory=dict)  # (row, column) -> value
    attributes: dict[str, object] = field(default_factory=dict)  # LoadedTable field -> value
    overrides: dict[str, object] = field(default_factory=dict)


def workbook_bytes(sheets: dict[str, list[list[object]]]) -> bytes:
    """Write an .xlsx file with openpyxl, with each sheet given as a list of rows."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def merged_header_workbook() -> bytes:
    """Write an .xlsx file with a title, then term names merged across their columns above
    the column names, and 姓名 merged down over both header rows, as Excel users lay them out."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["2024 学年成绩"])
    sheet.append([])
    sheet.append(["姓名", "第一学期", None, None, "第二学期", None])
    sheet.append([None, "测验", "作文", "期末", "测验", "期末"])
    sheet.append(["张三", 8, 14, 71, 9, 80])
    sheet.append(["李四", 6, 12, 65, 7, 70])
    for cells in ("A1:F1", "A3:A4", "B3:D3", "E3:F3"):
        sheet.merge_cells(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xls_bytes(rows: list[list[object]]) -> bytes:
    """Write an .xls file with xlwt. The calling test is skipped where xlwt is not installed."""
    xlwt = pytest.importorskip("xlwt")
    workbook = xlwt.Workbook()
    sheet = workbook.add_sheet("成绩")
    for row_index, row in enumerate(rows):
        for column_index, value in enumerate(row):
            sheet.write(row_index, column_index, value)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def text_cases() -> list:
    essay = 'She wrote: "We tested it; twice,\tcarefully."\nThen a new paragraph.\r\nAnd a third line.'
    essay_field = '"' + essay.replace('"', '""') + '"'
    return [
        pytest.param(LoadCase(
            GRADES_ZH.encode("utf-8"), "grades.csv", ["学号", "姓名", "语文", "数学", "评语"], 3,
            kinds={"学号": "int64", "语文": "int64", "数学": "float64", "评语": "text"},
            values={(0, "姓名"): "张三", (0, "评语"): "字迹工整，态度认真", (0, "数学"): 90.5},
            attributes={"file_format": "csv", "encoding": "utf-8", "separator": ",", "header_row": 0},
        ), id="utf8-chinese"),
        pytest.param(LoadCase(
            codecs.BOM_UTF8 + GRADES_ZH.encode("utf-8"), "grades-bom.csv", ["学号", "姓名", "语文", "数学", "评语"], 3,
            values={(2, "姓名"): "王五"}, attributes={"encoding": "utf-8-sig"},
        ), id="utf8-bom-first-column-clean"),
        pytest.param(LoadCase(
            GRADES_ZH.replace("\n", "\r\n").encode("gb18030"), "成绩表.csv", ["学号", "姓名", "语文", "数学", "评语"], 3,
            kinds={"语文": "int64", "数学": "float64"}, values={(1, "评语"): "需要加强练习"},
            attributes={"encoding": "gb18030", "separator": ","},
        ), id="gb18030-excel-chinese"),
        pytest.param(LoadCase(
            GRADES_BIG5.encode("big5"), "成績.csv", ["學號", "姓名", "國文", "數學", "評語"], 3,
            values={(0, "評語"): "字跡工整，態度認真", (2, "國文"): 92}, attributes={"encoding": "big5"},
        ), id="big5"),
        pytest.param(LoadCase(
            GRADES_ZH.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"), "unicode-text.txt",
            ["学号", "姓名", "语文", "数学", "评语"], 3, kinds={"数学": "float64"},
            values={(1, "姓名"): "李四"}, attributes={"encoding": "utf-16", "separator": "\t"},
        ), id="utf16-bom-tab"),
        pytest.param(LoadCase(
            GRADES_FR.encode("cp1252"), "notes.csv", ["Élève", "Note", "Remarque"], 3,
            kinds={"Note": "float64", "Remarque": "text"},
            values={(0, "Élève"): "José Müller", (0, "Note"): 14.5, (2, "Remarque"): "sérieuse – « excellent »"},
            attributes={"encoding": "cp1252", "separator": ";", "decimal_comma": True},
        ), id="cp1252-accents-decimal-comma"),
        *[
            pytest.param(LoadCase(
                f"name{sep}score{sep}comment\nAda{sep}91{sep}good\nBo{sep}77{sep}\nCy{sep}65{sep}late\n".encode(),
                "scores.txt", ["name", "score", "comment"], 3, kinds={"score": "int64"},
                values={(1, "comment"): "", (2, "score"): 65}, attributes={"separator": sep},
            ), id=f"separator-{label}")
            for sep, label in [(",", "comma"), (";", "semicolon"), ("\t", "tab"), ("|", "pipe")]
        ],
        pytest.param(LoadCase(
            "name\tg1\tg2\nAda\t14,5\t12\nBo\t9,25\t13,5\n".encode(), "comma-decimals.tsv", ["name", "g1", "g2"], 2,
            kinds={"g1": "float64", "g2": "float64"}, values={(0, "g1"): 14.5, (1, "g1"): 9.25, (0, "g2"): 12.0},
            attributes={"separator": "\t", "decimal_comma": True},
        ), id="decimal-comma-tab"),
        pytest.param(LoadCase(
            b'school;age;G1;G2;G3\n"GP";18;"0";"11";11\n"MS";17;"9";"11";11\n"GP";15;"12";13;12\n',
            "student.csv", ["school", "age", "G1", "G2", "G3"], 3,
            kinds={"school": "text", "G1": "int64", "G2": "int64", "G3": "int64"},
            values={(0, "school"): "GP", (1, "G1"): 9, (2, "G2"): 13}, attributes={"separator": ";"},
        ), id="mixed-quoting-uci-style"),
        pytest.param(LoadCase(
            b"student_id,class,zip,score\n4401052024001,007,01234,88\n4401052024002,012,10115,90\n",
            "ids.csv", ["student_id", "class", "zip", "score"], 2,
            kinds={"student_id": "text", "class": "text", "zip": "text", "score": "int64"},
            values={(0, "student_id"): "4401052024001", (0, "class"): "007", (0, "zip"): "01234"},
        ), id="long-ids-leading-zeros"),
        pytest.param(LoadCase(
            b"name,score,bonus\nAda,91,NA\nBo,N/A,2\nCy,-,1.5\nDi,70,\n", "missing.csv", ["name", "score", "bonus"], 4,
            kinds={"score": "float64", "bonus": "float64"}, values={(0, "score"): 91.0, (2, "bonus"): 1.5},
        ), id="missing-markers-float"),
        pytest.param(LoadCase(
            GRADES_ZH.encode("utf-8"), "grades.xlsx", ["学号", "姓名", "语文", "数学", "评语"], 3,
            attributes={"file_format": "csv", "sheet": None, "sheet_names": []},
        ), id="csv-named-xlsx"),
        pytest.param(LoadCase(
            b"2024 Term 1 Grades,,\nClass 3A,,\n,,\nname,score,comment\nAda,91,ok\nBo,77,\n", "titled.csv",
            ["name", "score", "comment"], 2, kinds={"score": "int64"}, attributes={"header_row": 3},
        ), id="title-rows-above-header"),
        pytest.param(LoadCase(
            b"Report\nname,score\nAda,91\nBo,77\n", "override.csv", ["Report", "column_2"], 3,
            kinds={"Report": "text"}, values={(0, "Report"): "name", (1, "column_2"): "91"},
            attributes={"header_row": 0}, overrides={"header_row": 0},
        ), id="header-row-override"),
        pytest.param(LoadCase(
            b" score ,score,,score_2,score\n1,2,3,4,5\n", "dupes.csv",
            ["score", "score_3", "column_3", "score_2", "score_4"], 1,
            values={(0, "score_3"): 2, (0, "column_3"): 3, (0, "score_2"): 4, (0, "score_4"): 5},
        ), id="duplicate-and-empty-names"),
        pytest.param(LoadCase(
            b"name;score\nAda;91\nBo;77\n;;;\n", "wide-separators.csv", ["name", "score"], 2,
            kinds={"score": "int64"}, values={(1, "name"): "Bo"}, attributes={"dropped_empty_rows": 1},
        ), id="separator-row-wider-than-header"),
        pytest.param(LoadCase(
            b"name,score\r\nAda,91\r\n,,,,\r\nBo,\"77\"\r\n", "wide-middle.csv", ["name", "score"], 2,
            kinds={"score": "int64"}, values={(1, "score"): 77}, attributes={"dropped_empty_rows": 1},
        ), id="separator-row-wider-in-middle"),
        pytest.param(LoadCase(
            b"a,,column_2\n1,2,3\n", "blank-name.csv", ["a", "column_2_2", "column_2"], 1,
            values={(0, "column_2"): 3, (0, "column_2_2"): 2},
        ), id="blank-name-beside-column-2"),
        pytest.param(LoadCase(
            b",column_1,column_1_2\nx,y,z\n", "generated-taken.csv", ["column_1_3", "column_1", "column_1_2"], 1,
            values={(0, "column_1"): "y", (0, "column_1_2"): "z", (0, "column_1_3"): "x"},
            overrides={"header_row": 0},
        ), id="generated-name-avoids-all-names"),
        pytest.param(LoadCase(
            b"name;score;\r\nAda;91;\nBo;77;\r\n;;\n\n;;\r\n", "trailing.csv", ["name", "score"], 2,
            kinds={"score": "int64"}, attributes={"dropped_empty_rows": 3},
        ), id="trailing-empty-rows-and-column"),
        pytest.param(LoadCase(
            ("essay_id,essay,score\r\n1," + essay_field + ",4\n2,\"Short, with comma\",3\r\n").encode(),
            "essays.csv", ["essay_id", "essay", "score"], 2, kinds={"essay": "text", "score": "int64"},
            values={(0, "essay"): essay, (1, "essay"): "Short, with comma"}, attributes={"separator": ","},
        ), id="essays-newlines-quotes-tabs"),
        pytest.param(LoadCase(
            GRADES_FR.encode("cp1252"), "forced.csv", ["Élève", "Note", "Remarque"], 3,
            values={(0, "Élève"): "José Müller"}, attributes={"encoding": "latin-1"},
            overrides={"encoding": "latin-1"},
        ), id="encoding-override"),
        pytest.param(LoadCase(
            b"a|b,c\n1|2,3\n4|5,6\n", "pipes.csv", ["a|b", "c"], 2, values={(0, "a|b"): "1|2"},
            attributes={"separator": ","}, overrides={"separator": ","},
        ), id="separator-override"),
        pytest.param(LoadCase(
            TWO_ROW_HEADER.encode(), "terms.csv", TWO_ROW_NAMES, 2,
            kinds={"Student": "text", "Term 1 / Quiz": "int64", "Term 2 / Final": "int64"},
            values={(0, "Student"): "Ada", (0, "Term 1 / Essay"): 14, (1, "Term 2 / Final"): 70},
            attributes={"header_row": 0, "header_rows": 2},
        ), id="two-row-header-csv"),
        pytest.param(LoadCase(
            ("Grades 2024,,,\n\n" + TWO_ROW_HEADER).encode(), "terms-titled.csv", TWO_ROW_NAMES, 2,
            values={(1, "Term 1 / Quiz"): 6}, attributes={"header_row": 2, "header_rows": 2},
        ), id="two-row-header-below-title"),
        pytest.param(LoadCase(
            b",Term 1,,\nName,Quiz,Essay,Final\nAda,8,14,71\n", "lower-name.csv",
            ["Name", "Term 1 / Quiz", "Term 1 / Essay", "Term 1 / Final"], 1, attributes={"header_rows": 2},
        ), id="two-row-header-name-in-lower-row"),
        pytest.param(LoadCase(
            TWO_ROW_HEADER.encode(), "terms.csv", TWO_ROW_NAMES, 2, attributes={"header_row": 0, "header_rows": 2}, overrides={"header_row": 0},
        ), id="two-row-header-at-chosen-row"),
        pytest.param(LoadCase(
            TWO_ROW_HEADER.encode(), "terms.csv",
            ["column_1", "Quiz", "Essay", "Final", "Quiz_2", "Essay_2", "Final_2"], 2,
            attributes={"header_row": 1, "header_rows": 1}, overrides={"header_rows": 1},
        ), id="two-row-header-turned-off"),
        pytest.param(LoadCase(
            b"Class 3A,,Teacher: Li,\nname,score,comment,extra\nAda,91,good,x\nBo,77,ok,y\n", "class.csv",
            ["name", "score", "comment", "extra"], 2, attributes={"header_row": 1, "header_rows": 1},
        ), id="title-row-with-two-cells-not-a-group"),
        pytest.param(LoadCase(
            b"Grades 2024\nname,score\nAda,91\nBo,77\n", "title.csv", ["name", "score"], 2,
            attributes={"header_row": 1, "header_rows": 1},
        ), id="one-cell-title-not-a-group"),
    ]


def workbook_cases() -> list:
    two_sheets = workbook_bytes({
        "说明": [],
        "期中": [["学号", "姓名", "分数", "备注"], ["00123", "张三", 85, "14,5"], ["00124", "李四", 92.5, "9,5"]],
        "期末": [["学号", "分数"], [2024010100001, 88], [2024010100002, 91]],
    })
    return [
        pytest.param(LoadCase(
            two_sheets, "成绩册.xlsx", ["学号", "姓名", "分数", "备注"], 2,
            kinds={"学号": "text", "姓名": "text", "分数": "float64", "备注": "float64"},
            values={(0, "学号"): "00123", (1, "分数"): 92.5, (0, "备注"): 14.5},
            attributes={"file_format": "xlsx", "sheet": "期中", "sheet_names": ["说明", "期中", "期末"],
                        "encoding": None, "separator": None, "decimal_comma": True},
        ), id="xlsx-first-non-empty-sheet"),
        pytest.param(LoadCase(
            two_sheets, "gradebook.bin", ["学号", "分数"], 2, kinds={"学号": "text", "分数": "int64"},
            values={(0, "学号"): "2024010100001"}, attributes={"file_format": "xlsx", "sheet": "期末"},
            overrides={"sheet": "期末"},
        ), id="xlsx-sheet-selection"),
        pytest.param(LoadCase(
            workbook_bytes({"Grades": [["2024 Term 1 Grades"], [], ["name", "score", "passed"],
                                       ["Ada", 91, "yes"], [], ["Bo", 77, "no"], [" ", None, "  "]]}),
            "titled.xlsx", ["name", "score", "passed"], 2, kinds={"score": "int64"},
            values={(1, "name"): "Bo"}, attributes={"header_row": 2, "dropped_empty_rows": 2},
        ), id="xlsx-title-rows"),
        pytest.param(LoadCase(
            merged_header_workbook(), "学期成绩.xlsx", ["姓名", "第一学期 / 测验", "第一学期 / 作文", "第一学期 / 期末",
                                                    "第二学期 / 测验", "第二学期 / 期末"], 2,
            kinds={"姓名": "text", "第一学期 / 期末": "int64"},
            values={(0, "姓名"): "张三", (1, "第二学期 / 期末"): 70},
            attributes={"file_format": "xlsx", "header_row": 2, "header_rows": 2},
        ), id="xlsx-merged-two-row-header"),
        pytest.param(LoadCase(
            two_sheets, "gradebook.csv", ["学号", "姓名", "分数", "备注"], 2,
            attributes={"file_format": "xlsx", "sheet": "期中"},
        ), id="xlsx-named-csv"),
        pytest.param(LoadCase(
            workbook_bytes({"封面": [["本册为期末成绩"]], "成绩": [["姓名", "分数"], ["张三", 85], ["李四", 92]]}),
            "封面.xlsx", ["姓名", "分数"], 2, values={(1, "姓名"): "李四"},
            attributes={"sheet": "成绩", "sheet_names": ["封面", "成绩"]},
        ), id="xlsx-title-sheet-skipped"),
        pytest.param(LoadCase(
            workbook_bytes({"IDs": [["学号", "身份证号", "分数"], [202401010001, 110105200801011234, 88],
                                    [202401010002, 110105200802021234, 91]]}),
            "ids.xlsx", ["学号", "身份证号", "分数"], 2,
            kinds={"学号": "text", "身份证号": "text", "分数": "int64"},
            values={(0, "学号"): "202401010001", (1, "学号"): "202401010002", (0, "身份证号"): "110105200801011000"},
            attributes={"rounded_id_columns": ["身份证号"]},
        ), id="xlsx-long-number-ids"),
    ]


def test_xls_loads_with_numeric_cells() -> None:
    table = load_table(xls_bytes([["学号", "姓名", "分数"], ["007", "张三", 85], ["008", "李四", 90.5]]), "old.xls")

    assert table.file_format == "xls"
    assert table.sheet_names == ["成绩"]
    assert list(table.frame.columns) == ["学号", "姓名", "分数"]
    assert table.frame["学号"].tolist() == ["007", "008"]
    assert table.frame["分数"].dtype == "float64"
    assert table.frame["分数"].tolist() == [85.0, 90.5]


def test_xls_integral_numbers_become_int64() -> None:
    table = load_table(xls_bytes([["name", "score"], ["Ada", 85], ["Bo", 90]]), "whole.xls")

    assert table.frame["score"].dtype == "int64"


def test_xls_sheet_choice_and_merged_header() -> None:
    xlwt = pytest.importorskip("xlwt")
    workbook = xlwt.Workbook()
    workbook.add_sheet("封面").write(0, 0, "期末成绩册")
    sheet = workbook.add_sheet("成绩")
    sheet.write_merge(0, 1, 0, 0, "学号")
    sheet.write_merge(0, 0, 1, 2, "Term 1")
    for column, name in enumerate(["Quiz", "Final"], start=1):
        sheet.write(1, column, name)
    for row, values in enumerate([["2024010100001", 8, 71.5], ["2024010100002", 6, 65]], start=2):
        for column, value in enumerate(values):
            sheet.write(row, column, value)
    buffer = io.BytesIO()
    workbook.save(buffer)

    table = load_table(buffer.getvalue(), "old.xls", sheet="成绩")

    assert table.sheet_names == ["封面", "成绩"]
    assert table.header_rows == 2
    assert list(table.frame.columns) == ["学号", "Term 1 / Quiz", "Term 1 / Final"]
    assert table.frame["学号"].tolist() == ["2024010100001", "2024010100002"]
    assert table.frame["Term 1 / Final"].tolist() == [71.5, 65.0]


def assert_kind(series: pd.Series, kind: str) -> None:
    if kind == "text":
        assert pd.api.types.is_string_dtype(series), series.dtype
        assert all(isinstance(value, str) for value in series), series.tolist()
    elif kind == "datetime":
        assert pd.api.types.is_datetime64_any_dtype(series), series.dtype
    else:
        assert series.dtype == kind, series.dtype


@pytest.mark.parametrize("case", text_cases() + workbook_cases())
def test_load_table_case(case: LoadCase) -> None:
    table = load_table(case.data, case.file_name, **case.overrides)

    assert isinstance(table, LoadedTable)
    assert table.file_name == case.file_name
    assert list(table.frame.columns) == case.columns
    assert len(table.frame) == case.rows
    for column, kind in case.kinds.items():
        assert_kind(table.frame[column], kind)
    for (row, column), expected in case.values.items():
        assert table.frame[column].iloc[row] == expected, (row, column)
    for name, expected in case.attributes.items():
        assert getattr(table, name) == expected, name


def test_text_file_attributes_for_excel_fields() -> None:
    table = load_table(GRADES_ZH.encode("utf-8"), "grades.csv")

    assert table.sheet is None
    assert table.sheet_names == []
    assert table.decimal_comma is False
    assert table.dropped_empty_rows == 0


def test_large_ids_never_scientific() -> None:
    rows = "".join(f"{440105202400000 + i},{i}\n" for i in range(50))
    table = load_table(("id,n\n" + rows).encode(), "many-ids.csv")

    assert table.frame["id"].iloc[0] == "440105202400000"
    assert "e+" not in table.frame.to_csv()


def test_integers_with_gaps_become_float() -> None:
    table = load_table(b"name,score\nAda,91\nBo,\nCy,70\n", "gaps.csv")

    assert table.frame["score"].dtype == "float64"
    assert table.frame["score"].isna().tolist() == [False, True, False]


def test_mixed_line_endings_lone_cr() -> None:
    table = load_table(b"a,b\r\n1,2\n3,4\r5,6\r\n", "endings.csv")

    assert table.frame["a"].tolist() == [1, 3, 5]


def test_utf16_without_bom() -> None:
    table = load_table("name\tscore\nAda\t91\nBo\t77\n".encode("utf-16-le"), "nobom.txt")

    assert table.encoding == "utf-16-le"
    assert table.frame["score"].tolist() == [91, 77]


@pytest.mark.parametrize(("text", "encoding"), [
    pytest.param("姓名,分数\n王伟,90\n李娜,88\n刘洋,70\n", "gb18030", id="gb18030-names"),
    pytest.param("姓名,分数\n张三,90\n", "gb18030", id="gb18030-one-row"),
    pytest.param("姓名,分數\n陳志明,90\n林怡君,88\n黃建宏,70\n", "big5", id="big5-names"),
    pytest.param("Schüler;Note\nJürgen Groß;2\n", "cp1252", id="cp1252-german"),
    pytest.param("Name;Prix\nAda;10 €\nBo;“5” €\n", "cp1252", id="cp1252-euro-quotes"),
    pytest.param("名前,点数\n山田,90\n", "shift_jis", id="shift-jis"),
    pytest.param("Имя,Оценка\nИван,5\n", "cp1251", id="cp1251-outside-candidates"),
])
def test_detects_encoding_of_short_file(text: str, encoding: str) -> None:
    table = load_table(text.encode(encoding), "short.csv")

    assert table.encoding == encoding
    assert list(table.frame.columns) == text.split("\n")[0].replace(";", ",").split(",")


def test_bom_stripped_under_utf8_override() -> None:
    table = load_table(codecs.BOM_UTF8 + " 学号 ,姓名\n1,张三\n".encode(), "bom.csv", encoding="utf-8")

    assert list(table.frame.columns) == ["学号", "姓名"]
    assert table.encoding == "utf-8"


def test_field_longer_than_sniff_sample() -> None:
    essay = "Ein langer Aufsatz, mit Kommas; und Semikolons.\n" * 3000
    data = ("id,essay,score\n1,\"" + essay + "\",3\n2,short,4\n").encode()

    table = load_table(data, "long-essay.csv")

    assert len(essay) > 128 * 1024
    assert table.frame["essay"].iloc[0] == essay
    assert table.frame["score"].tolist() == [3, 4]


def test_single_column_text_with_commas() -> None:
    table = load_table(b"essay\nI like school.\nMy summer, briefly; in short.\n", "essays.txt")

    assert list(table.frame.columns) == ["essay"]
    assert table.frame["essay"].tolist() == ["I like school.", "My summer, briefly; in short."]


def test_title_above_header_with_blank_name() -> None:
    table = load_table(b"Grades 2024\n\n,math,english\nAda,91,80\nBo,70,60\n", "pivot.csv")

    assert table.header_row == 2
    assert list(table.frame.columns) == ["column_1", "math", "english"]
    assert table.frame["column_1"].tolist() == ["Ada", "Bo"]


def test_xlsx_dates_booleans_and_merged_title() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.merge_cells("A1:D1")
    sheet["A1"] = "2024 期中成绩"
    sheet.append([])
    sheet.append(["学号", "日期", "通过", 2024])
    sheet.append([20240001, datetime(2024, 3, 1), True, 88.0])
    sheet.append([20240002, datetime(2024, 3, 2), False, None])
    buffer = io.BytesIO()
    workbook.save(buffer)

    table = load_table(buffer.getvalue(), "dates.xlsx")

    assert table.header_row == 2
    assert list(table.frame.columns) == ["学号", "日期", "通过", "2024"]
    assert table.frame["学号"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(table.frame["日期"])
    assert table.frame["日期"].iloc[1] == pd.Timestamp(2024, 3, 2)
    assert table.frame["通过"].tolist() == ["True", "False"]
    assert table.frame["2024"].dtype == "float64"


def test_detection_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="edutune_core"):
        load_table(GRADES_FR.encode("cp1252"), "notes.csv")

    messages = [record.getMessage() for record in caplog.records if record.levelno == logging.DEBUG]
    assert any("cp1252" in message for message in messages)
    assert any("';'" in message for message in messages)
    assert any("header row 0" in message for message in messages)


def test_read_table_file_reads_disk(tmp_path: Path) -> None:
    path = tmp_path / "成绩.csv"
    path.write_bytes(GRADES_ZH.encode("gb18030"))

    table = read_table_file(path, encoding="gb18030")

    assert table.file_name == "成绩.csv"
    assert table.frame["姓名"].tolist() == ["张三", "李四", "王五"]


def test_supported_encodings_decode() -> None:
    for name in SUPPORTED_ENCODINGS:
        assert codecs.lookup(name), name
    assert {"utf-8", "utf-8-sig", "gb18030", "big5", "utf-16", "cp1252"} <= set(SUPPORTED_ENCODINGS)


@pytest.mark.parametrize(("separator", "header_row"), [(";;", None), ('"', None), (None, -1)])
def test_invalid_arguments_raise_value_error(separator: str | None, header_row: int | None) -> None:
    with pytest.raises(ValueError):
        load_table(b"a,b\n1,2\n", "x.csv", separator=separator, header_row=header_row)


@pytest.mark.parametrize("header_rows", [0, 3])
def test_invalid_header_rows_raise_value_error(header_rows: int) -> None:
    with pytest.raises(ValueError, match="header_rows must be 1 or 2"):
        load_table(b"a,b\n1,2\n", "x.csv", header_rows=header_rows)


@dataclass
class ErrorCase:
    """A file that must be rejected, with the catalog key and text the messages must contain."""

    data: bytes
    file_name: str
    key: str
    english: list[str]
    chinese: list[str]
    overrides: dict[str, object] = field(default_factory=dict)


def corrupt_xlsx() -> bytes:
    return workbook_bytes({"Sheet": [["a", "b"], [1, 2]]})[:600]


def docx_like_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def workbook_with_broken_xml() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("xl/workbook.xml", "<workbook><sheets><sheet name=")
    return buffer.getvalue()


def gb18030_then_invalid_bytes() -> bytes:
    """Return over a megabyte of valid GB18030, which encoding detection samples, followed
    by thousands of bytes that are invalid in it."""
    clean = ("姓名,分数,评语\n" + "张三,90,字迹工整\n" * 75000).encode("gb18030")
    return clean + b"\xff,1,\xff\n" * 2000


def error_cases() -> list:
    wrong_separator = "name;score\nAda;91\nBo;77\n".encode()
    return [
        pytest.param(ErrorCase(b"", "empty.csv", "data.empty_file", ["is empty"], ["是空的"]), id="empty"),
        pytest.param(ErrorCase(codecs.BOM_UTF8 + b" \r\n\r\n", "blank.csv", "data.empty_file", ["is empty"], ["是空的"]),
                     id="only-bom-and-blank-lines"),
        pytest.param(ErrorCase(b"\x89PNG\r\n\x1a\n" + bytes(64), "photo.csv", "data.unsupported_format",
                               ["PNG", "not a table"], ["PNG", "不是表格"]), id="png"),
        pytest.param(ErrorCase(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "grades.pdf", "data.unsupported_format",
                               ["PDF", "CSV UTF-8"], ["PDF", "另存为"]), id="pdf"),
        pytest.param(ErrorCase(b"<html><body><table><tr><td>1</td></tr></table>", "export.xls",
                               "data.unsupported_format", ["HTML"], ["HTML"]), id="html-named-xls"),
        pytest.param(ErrorCase(docx_like_zip(), "essay.docx", "data.unsupported_format", ["Word"], ["Word"]),
                     id="word-document"),
        pytest.param(ErrorCase(bytes(range(256)) * 8, "blob.dat", "data.binary_file",
                               ["neither a text table"], ["既不是文本表格"]), id="binary"),
        pytest.param(ErrorCase(corrupt_xlsx(), "truncated.xlsx", "data.corrupt_excel",
                               ["cannot be opened", "damaged"], ["无法打开", "损坏"]), id="truncated-xlsx"),
        pytest.param(ErrorCase(workbook_with_broken_xml(), "broken-xml.xlsx", "data.corrupt_excel",
                               ["Excel", "save it as .xlsx"], ["Excel", "另存为 .xlsx"]), id="workbook-broken-xml"),
        pytest.param(ErrorCase(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "broken.xls", "data.corrupt_excel",
                               ["password"], ["密码"]), id="corrupt-xls"),
        pytest.param(ErrorCase(b"name,score,comment\n", "header-only.csv", "data.no_data_rows",
                               ["row 1", "no data rows"], ["第 1 行", "没有数据行"]), id="header-only"),
        pytest.param(ErrorCase(b"title\n\nname,score\n,\n\n", "no-rows.csv", "data.no_data_rows",
                               ["row 3"], ["第 3 行"]), id="header-then-blank-rows"),
        pytest.param(ErrorCase(workbook_bytes({"期中": [["a"], [1]], "期末": [["a"], [2]]}), "book.xlsx",
                               "data.sheet_not_found", ["Sheet9", "期中, 期末"], ["Sheet9", "期中, 期末"],
                               {"sheet": "Sheet9"}), id="missing-sheet"),
        pytest.param(ErrorCase(workbook_bytes({"Data": [["a"], [1]], "Blank": []}), "book.xlsx", "data.empty_sheet",
                               ["Blank", "is empty"], ["Blank", "是空的"], {"sheet": "Blank"}), id="empty-sheet"),
        pytest.param(ErrorCase(workbook_bytes({"A": [], "B": []}), "blank.xlsx", "data.empty_file",
                               ["is empty"], ["是空的"]), id="workbook-all-sheets-empty"),
        pytest.param(ErrorCase(GRADES_ZH.encode("gb18030"), "成绩.csv", "data.bad_encoding",
                               ["utf-8", "Choose another encoding"], ["utf-8", "换一种编码"],
                               {"encoding": "utf-8"}), id="bad-encoding-override"),
        pytest.param(ErrorCase(gb18030_then_invalid_bytes(), "mixed.csv", "data.undetected_encoding",
                               ["could not be detected", "CSV UTF-8"], ["无法识别", "gb18030"]),
                     id="invalid-bytes-after-detection-sample"),
        pytest.param(ErrorCase(b"a,b\n1,2\n", "x.csv", "data.unknown_encoding", ["klingon"], ["klingon"],
                               {"encoding": "klingon"}), id="unknown-encoding-name"),
        pytest.param(ErrorCase(wrong_separator, "scores.csv", "data.separator_mismatch",
                               ['"Tab"', '";"', "2 columns"], ["“Tab”", "“;”", "2 列"], {"separator": "\t"}),
                     id="wrong-separator-override"),
        pytest.param(ErrorCase(b"name,score\nAda,91\nSmith, John,77\n", "ragged.csv", "data.ragged_row",
                               ["Line 3", "3 values", "2 columns"], ["第 3 行", "3 个值", "2 列"]), id="ragged-row"),
        pytest.param(ErrorCase(b'name,comment,score\nAda,good,91\nBo,"ok,70\nCy,fine,80\n', "quotes.csv",
                               "data.unclosed_quote", ["line 3", "closing double quote"], ["第 3 行", "结尾的双引号"]),
                     id="unclosed-quote"),
        pytest.param(ErrorCase(b"a,b\n1,2\n", "short.csv", "data.header_row_out_of_range",
                               ["Row 6", "only 2 rows"], ["第 6 行", "只有 2 行"], {"header_row": 5}),
                     id="header-row-out-of-range"),
    ]


@pytest.mark.parametrize("case", error_cases())
def test_load_table_rejects(case: ErrorCase) -> None:
    with pytest.raises(DataError) as raised:
        load_table(case.data, case.file_name, **case.overrides)

    error = raised.value
    assert error.key == case.key
    english, chinese = error.message("en"), error.message("zh")
    assert case.file_name in english
    assert case.file_name in chinese
    for text in case.english:
        assert text in english
    for text in case.chinese:
        assert text in chinese


def test_every_catalog_key_has_error_case() -> None:
    english = json.loads((LOCALES / "en" / "data.json").read_text(encoding="utf-8"))
    tested = {param.values[0].key for param in error_cases()}
    tested |= {"data.file_too_large", "data.malformed_text"}  # tested below, outside the table

    assert tested == english.keys()


def test_cp1251_loads_with_override() -> None:
    data = "Ученик;Оценка\nПетров Иван;5\nСидорова Анна;4\n".encode("cp1251")

    table = load_table(data, "russian.csv", encoding="cp1251")

    assert table.frame["Ученик"].tolist() == ["Петров Иван", "Сидорова Анна"]
    assert table.frame["Оценка"].tolist() == [5, 4]


def test_damaged_byte_replaced(caplog: pytest.LogCaptureFixture) -> None:
    data = "姓名,分数,评语\n张三,90,认真\n李四,85,".encode("gb18030") + b"\xff\n"

    with caplog.at_level(logging.WARNING, logger="edutune_core"):
        table = load_table(data, "damaged.csv")

    assert table.encoding == "gb18030"
    assert table.frame["姓名"].tolist() == ["张三", "李四"]
    assert table.frame["评语"].tolist() == ["认真", "\ufffd"]
    assert any("replaced 1 invalid gb18030" in record.getMessage() for record in caplog.records)


def test_too_large_bytes_rejected() -> None:
    with pytest.raises(DataError) as raised:
        load_table(b"a" * (MAX_FILE_BYTES + 1), "huge.csv")

    assert raised.value.key == "data.file_too_large"
    assert "huge.csv" in raised.value.message("en")
    assert "200 MB limit" in raised.value.message("en")
    assert "200.0 MB" in raised.value.message("zh")
    assert "上限" in raised.value.message("zh")


def test_too_large_file_rejected_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 2**20)  # sparse, so the test writes almost nothing

    with pytest.raises(DataError) as raised:
        read_table_file(path)

    assert raised.value.key == "data.file_too_large"
    assert "201.0 MB" in raised.value.message("en")


def test_unexplained_parse_failure_message() -> None:
    # pandas raised an error that names neither a long record nor an open quote.
    error = _text_tables._parse_error("a,b\n1,2\n", ",", "odd.csv", 2, "C error: unknown failure")

    assert error.key == "data.malformed_text"
    assert "odd.csv" in error.message("en")
    assert "CSV UTF-8" in error.message("en")
    assert "odd.csv" in error.message("zh")
    assert "引号或分隔符不一致" in error.message("zh")


def test_catalogs_define_same_keys() -> None:
    english = json.loads((LOCALES / "en" / "data.json").read_text(encoding="utf-8"))
    chinese = json.loads((LOCALES / "zh" / "data.json").read_text(encoding="utf-8"))

    assert english.keys() == chinese.keys()
    for key in english:
        fields_en = {name for _, name, _, _ in string.Formatter().parse(english[key]) if name}
        fields_zh = {name for _, name, _, _ in string.Formatter().parse(chinese[key]) if name}
        assert fields_en == fields_zh, key
        assert re.search(r"[\u4e00-\u9fff]", chinese[key]), key


def test_every_raised_key_is_in_catalog() -> None:
    english = json.loads((LOCALES / "en" / "data.json").read_text(encoding="utf-8"))
    sources = (Path(data_module.__file__).parent / name for name in ("data.py", "_text_tables.py"))
    raised = {key for path in sources for key in re.findall(r'"(data\.[a-z_]+)"', path.read_text(encoding="utf-8"))}

    assert raised
    assert raised <= english.keys()


def test_xls_long_number_ids_become_text() -> None:
    table = load_table(xls_bytes([["学号", "分数"], [202401010001, 85], [202401010002, 90.5]]), "ids.xls")

    assert pd.api.types.is_string_dtype(table.frame["学号"])
    assert table.frame["学号"].tolist() == ["202401010001", "202401010002"]
    assert table.rounded_id_columns == []


def test_short_number_column_stays_numeric() -> None:
    table = load_table(workbook_bytes({"S": [["id", "score"], [12345678901, 1], [12345678902, 2]]}), "short.xlsx")

    assert table.frame["id"].dtype == "int64"


def test_rounded_ids_logged_as_warning(caplog: pytest.LogCaptureFixture) -> None:
    data = workbook_bytes({"S": [["身份证号", "score"], [110105200801011234, 1], [110105200802021234, 2]]})

    with caplog.at_level(logging.WARNING, logger="edutune_core"):
        table = load_table(data, "national.xlsx")

    assert table.rounded_id_columns == ["身份证号"]
    assert any("16 or more digits" in record.getMessage() for record in caplog.records)


def test_sheet_names_of_files() -> None:
    data = workbook_bytes({"封面": [["本册为期末成绩"]], "成绩": [["a"], [1]]})

    assert data_module.sheet_names(data, "book.xlsx") == ["封面", "成绩"]
    assert data_module.sheet_names(b"a,b\n1,2\n", "plain.csv") == []
    assert data_module.sheet_names(data[:600], "cut.xlsx") == []
    assert data_module.sheet_names(b"", "empty.xlsx") == []


def test_no_sheet_with_table_reports_first() -> None:
    data = workbook_bytes({"封面": [["本册为期末成绩"]], "说明": [["仅供参考"]]})

    with pytest.raises(DataError) as raised:
        load_table(data, "covers.xlsx")

    assert raised.value.key == "data.no_data_rows"
    assert "covers.xlsx" in raised.value.message("en")
