import re

import pytest

from conftest import make_gradebook
from edutune_core.baseline import baseline_metrics
from edutune_core.config import TrainConfig
from edutune_core.evaluation import load_validation
from edutune_core.fairness import group_results
from edutune_core.report import model_report
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, ColumnMapping


@pytest.fixture(scope="module")
def cross_validated_run(tmp_path_factory):
    store = RunStore(tmp_path_factory.mktemp("home"))
    frame = make_gradebook(120)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"],
                            group_columns=["class"])
    config = TrainConfig.for_task(False, epochs=3, folds=3, seed=1234)
    record = create_run(store, frame, mapping, config, data_name="<b>book</b>.csv", name="Year 7 <script>")
    record = execute_run(store, record.run_id)
    groups = group_results(load_validation(record), ["class"], at_risk_label="fail")
    return record, baseline_metrics(record), groups, frame


def visible_text(page: str) -> str:
    return re.sub(r"<[^>]+>", " ", page)


@pytest.mark.parametrize("lang, headings", [
    ("en", ["What the model is for", "Data", "How well it agrees with the teacher", "Results per group",
            "Intended use and limits", "Settings"]),
    ("zh", ["模型的用途", "数据", "与教师判断的一致程度", "分组结果", "预期用途与局限", "参数设置"])])
def test_report_sections_in_both_languages(cross_validated_run, lang, headings):
    record, baseline, groups, _ = cross_validated_run
    page = model_report(record, lang, baseline=baseline, groups=groups, generated_at=0)
    found = re.findall(r"<h2>(.*?)</h2>", page)
    assert found == headings


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_report_metrics_with_spread_and_baselines(cross_validated_run, lang):
    record, baseline, groups, _ = cross_validated_run
    page = model_report(record, lang, baseline=baseline, groups=groups)
    metrics = record.metrics
    assert f"{metrics['accuracy']:.3f} ± {metrics['spread']['accuracy']:.3f}" in page
    linear = baseline["models"]["linear"]
    assert f"{linear['accuracy']:.3f} ± {linear['spread']['accuracy']:.3f}" in page
    assert ("random forest" if lang == "en" else "随机森林") in page
    assert ("3-fold cross-validation" if lang == "en" else "3 折交叉验证") in page
    assert "1234" in visible_text(page)


def test_report_group_rows_and_flags(cross_validated_run):
    record, baseline, groups, _ = cross_validated_run
    page = model_report(record, "en", baseline=baseline, groups=groups)
    for row in groups["groups"]["class"]:
        assert f"<td>{row['group']}</td><td>{row['rows']}</td>" in page
    assert "Validation rows per group of &quot;class&quot;" in page
    if groups["flags"]:
        assert page.count('class="flag"') == len(groups["flags"])
    else:
        assert "No large gap between groups" in page


def test_report_has_no_student_rows(cross_validated_run):
    record, baseline, groups, frame = cross_validated_run
    page = model_report(record, "zh", baseline=baseline, groups=groups)
    assert not any(student in page for student in frame["student_id"])
    assert "本报告不包含任何学生的数据" in page


def test_report_escapes_names(cross_validated_run):
    record, _, _, _ = cross_validated_run
    page = model_report(record, "en")
    assert "<script>" not in page
    assert "Year 7 &lt;script&gt;" in page
    assert "&lt;b&gt;book&lt;/b&gt;.csv" in page


def test_report_without_groups_or_baseline(cross_validated_run):
    record, _, _, _ = cross_validated_run
    page = model_report(record, "zh")
    assert "没有选择分组列" in page
    assert page.startswith("<!DOCTYPE html><html lang='zh-CN'>")
    assert "@media print" in page


@pytest.mark.parametrize("lang, label", [("en", "Intended use, as the teacher wrote it:"), ("zh", "教师说明的用途：")])
def test_report_prints_teacher_intended_use(cross_validated_run, lang, label):
    record = cross_validated_run[0]
    page = model_report(record, lang, intended_use="  Early warning for Year 9 <maths>; I review every flag.  ")
    text = " ".join(visible_text(page).split())
    assert f"{label} Early warning for Year 9 &lt;maths&gt;; I review every flag." in text
    assert "<maths>" not in page
    assert label not in visible_text(model_report(record, lang, intended_use="   "))
