"""Tests for edutune_core.profile and its duplicate finder, on tables built here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import make_essays, make_gradebook
from edutune_core import _duplicates, profile
from edutune_core.i18n import catalog, translate
from edutune_core.profile import build_profile, lookup_score, missing_values
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping, prepare_data

ESSAY = ("Last summer my family drove to the coast. We stayed in a small house near the harbour, and every "
         "morning I walked along the beach to buy bread. The best day was when we took a boat to the island "
         "and saw seals sleeping on the rocks. I learned that slow holidays can be the most memorable ones.")


def profile_of(frame: pd.DataFrame, mapping: ColumnMapping, **options) -> profile.DataProfile:
    return build_profile(frame, mapping, prepare_data(frame, mapping), **options)


def messages(found: profile.Finding) -> tuple[str, str]:
    return translate(found.key, "en", **found.params), translate(found.key, "zh", **found.params)


def test_rows_dropped_with_reasons() -> None:
    frame = make_essays(30)
    frame.loc[[2, 5], "score"] = None
    frame.loc[7, "essay"] = "  "

    result = profile_of(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                        earlier_drops={"intake.dropped.non_numeric_target": 4})

    assert result.source_rows == 34
    assert result.kept_rows == 27
    assert result.dropped == {"intake.dropped.non_numeric_target": 4, "data.dropped.missing_target": 2,
                              "data.dropped.missing_text": 1}


def test_missing_values_per_column() -> None:
    frame = pd.DataFrame({"name": ["Ada", "", None, "Cy"], "score": [1.0, np.nan, 3.0, 4.0], "full": [1, 2, 3, 4]})

    assert missing_values(frame) == {"name": 2, "score": 1}


def test_imbalance_proposes_class_weights() -> None:
    frame = make_gradebook(100)
    frame["level"] = ["rare"] * 10 + ["common"] * 90

    result = profile_of(frame, ColumnMapping(target="level", ignore_columns=["student_id", "final"]))

    assert result.label_counts == {"common": 90, "rare": 10}
    assert result.imbalance_ratio == 9.0
    assert result.heavy_imbalance
    found = result.findings()[0]
    assert found.key == "profile.imbalance"
    english, chinese = messages(found)
    assert "“common” has 90 rows but “rare” has only 10, 9.0 times fewer" in english
    assert "class weights" in english
    assert "“rare”只有 10 行" in chinese
    assert "类别权重" in chinese


def test_balanced_classes_not_flagged() -> None:
    frame = make_gradebook(100)
    result = profile_of(frame, ColumnMapping(target="final", pass_mark=float(frame["final"].median()),
                                             ignore_columns=["student_id"]))

    assert not result.heavy_imbalance
    assert all(found.key != "profile.imbalance" for found in result.findings())


def test_text_lengths_in_characters_and_tokens() -> None:
    frame = pd.DataFrame({"text": ["Short answer."] * 6 + [ESSAY * 3] * 4 + ["学生作文写得很好。" * 40] * 2,
                          "label": ["a", "b"] * 6})

    result = profile_of(frame, ColumnMapping(target="label", text_column="text"), max_lengths=(16, 128, 512))

    assert result.text.characters.tolist()[:1] == [13]
    assert result.text.characters[6] == len(ESSAY * 3)
    assert result.text.tokens[0] == 5  # [CLS] short answer . [SEP]
    assert result.text.tokens[6] > 128
    assert result.text.cut_shares == {16: 0.5, 128: 0.5, 512: 0.0}
    assert not result.text.sampled
    found = [found for found in result.findings(max_length=128) if found.key == "profile.texts_cut"]
    english, chinese = messages(found[0])
    assert english.startswith("50% of the texts are longer than 128 tokens")
    assert "最大长度 128 个词元" in chinese


def test_token_counts_sampled_above_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile, "TOKEN_SAMPLE_ROWS", 8)
    texts = [f"answer number {index}" for index in range(20)]

    lengths = profile.text_lengths(texts, (4,), profile.bundled_tokenizer())

    assert lengths.sampled
    assert len(lengths.tokens) == 8
    assert len(lengths.characters) == 20


def test_exact_duplicates_ignore_case_and_punctuation() -> None:
    texts = [ESSAY, ESSAY.upper().replace(",", ""), "Something else entirely, about football.", ESSAY + "  "]

    found = _duplicates.find_text_duplicates(texts, np.array([3, 3, 1, 2]), pd.Index([0, 1, 2, 3]))

    assert found.exact_groups == 1
    assert found.exact_rows == 2
    assert found.conflicting_groups == 1
    assert found.examples == [[1, 2, 4]]


def test_near_duplicates_found() -> None:
    edited = ESSAY.replace("small house", "tiny cottage").replace("bread", "fresh rolls")
    chinese = ("我的暑假过得很充实。每天早上我都去图书馆看书，下午和朋友一起打篮球，晚上帮妈妈做饭。周末我们全家去爬山，"
               "山上的风景非常美丽，我拍了很多照片。这个暑假让我明白了，只要合理安排时间，学习和玩耍都可以兼顾。")
    texts = [ESSAY, "My school has a big library with many old books and a quiet reading room.", edited,
             chinese, chinese.replace("篮球", "羽毛球"), "数学题：一个三角形的内角和是多少度？"]

    found = _duplicates.find_text_duplicates(texts, None, pd.Index([10, 11, 12, 13, 14, 15]))

    assert found.exact_groups == 0
    assert found.near_pairs == 2
    assert found.near_rows == 4
    assert found.examples == [[11, 13], [14, 15]]


def test_near_duplicate_finding_message() -> None:
    frame = pd.DataFrame({"essay": [ESSAY, ESSAY.replace("seals", "sea lions"), "x" * 60, "y" * 70] * 3,
                          "score": [1, 2] * 6})
    result = profile_of(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION))

    keys = [found.key for found in result.findings()]
    assert "profile.duplicates" in keys
    assert "profile.near_duplicates" in keys
    english, chinese = messages(result.findings()[0])
    assert "rows 1, 5, 9" in english
    assert "第 1, 5, 9" in chinese


def test_repeated_table_rows_found() -> None:
    frame = make_gradebook(40).drop(columns=["student_id"])
    frame = pd.concat([frame, frame.iloc[[3, 4]]], ignore_index=True)

    result = profile_of(frame, ColumnMapping(target="final", problem=REGRESSION))

    assert result.duplicates.exact_groups == 2
    assert result.duplicates.examples == [[4, 41], [5, 42]]


def test_leaks_found_in_gradebook() -> None:
    rng = np.random.default_rng(1)
    frame = make_gradebook(300)
    frame["final_copy"] = frame["final"].where(rng.uniform(size=300) > 0.05, frame["final"] + 1)
    frame["term2"] = frame["final"] + rng.normal(0, 1.5, 300).round()
    frame["noise"] = rng.normal(size=300)

    result = profile_of(frame, ColumnMapping(target="final", problem=REGRESSION))

    kinds = {leak.column: leak.kind for leak in result.leaks}
    assert kinds == {"final_copy": "equal", "term2": "near_perfect"}
    assert result.left_out == {"student_id": "personal_data"}
    english = [messages(found)[0] for found in result.findings() if found.key.startswith("profile.leak")]
    assert any("“final_copy” has the same value as the target" in text for text in english)
    left_out = [messages(found) for found in result.findings() if found.key.startswith("profile.left_out")]
    assert len(left_out) == 1
    assert "“student_id”" in left_out[0][0]
    assert "left out of the table model automatically" in left_out[0][0]
    assert "自动排除在表格模型之外" in left_out[0][1]
    assert result.summary()["left_out"] == {"student_id": "personal_data"}


def test_id_and_comment_columns_left_out() -> None:
    frame = make_gradebook(40).drop(columns="student_id")
    frame["code"] = [f"A-{index:04d}" for index in range(40)]
    frame["remark"] = [f"第{index}周表现不错，继续保持" for index in range(40)]

    result = profile_of(frame, ColumnMapping(target="final", problem=REGRESSION))

    assert result.left_out == {"code": "identifier", "remark": "free_text"}
    assert "identifier" not in {leak.kind for leak in result.leaks}
    english = {found.params["column"]: messages(found)[0] for found in result.findings()
               if found.key.startswith("profile.left_out")}
    assert "like an ID" in english["code"]
    assert "Choose it as the text column" in english["remark"]


def test_text_task_leaves_nothing_out() -> None:
    frame = make_essays(30)

    result = profile_of(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION))

    assert result.left_out == {}


def test_earlier_grade_flagged_for_pass_fail() -> None:
    rng = np.random.default_rng(2)
    earlier = rng.integers(0, 21, 400)
    frame = pd.DataFrame({"G2": earlier, "absences": rng.integers(0, 10, 400),
                          "G3": np.clip(earlier + rng.integers(-1, 2, 400), 0, 20)})

    result = profile_of(frame, ColumnMapping(target="G3", pass_mark=10))

    assert [(leak.column, leak.kind) for leak in result.leaks] == [("G2", "strong")]
    english, chinese = messages(result.findings()[-1])
    assert "Column “G2” alone predicts the target well" in english
    assert "such as a later grade" in english
    assert "仅凭“G2”列就能较好地预测目标" in chinese


def test_text_task_has_no_leak_check() -> None:
    frame = make_essays(40)
    frame["rater2"] = frame["score"]

    result = profile_of(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION))

    assert result.leaks == []


def test_lookup_score_low_for_unique_values() -> None:
    targets = np.arange(100) % 2
    assert lookup_score(pd.Series([f"id{index}" for index in range(100)]), targets, CLASSIFICATION) < 0.6
    assert lookup_score(pd.Series(targets * 3.0), targets, CLASSIFICATION) == 1.0


def test_summary_contains_no_values() -> None:
    frame = make_essays(30)
    frame.loc[5, "essay"] = frame.loc[4, "essay"]

    result = profile_of(frame, ColumnMapping(target="score", text_column="essay", problem=REGRESSION))
    summary = json.dumps(result.summary(), ensure_ascii=False)

    assert json.loads(summary)["duplicates"]["exact_groups"] == 1
    assert frame.loc[4, "essay"][:20] not in summary
    assert "examples" not in summary


def test_near_duplicates_bounded_on_many_texts() -> None:
    rng = np.random.default_rng(3)
    words = np.array(["school", "teacher", "homework", "friend", "summer", "library", "science", "music",
                      "reading", "garden", "river", "holiday", "computer", "history", "football", "kitchen"])
    texts = [" ".join(rng.choice(words, 60)) for _ in range(3000)]
    texts[2999] = texts[10].replace("school", "college", 1)

    pairs = _duplicates.near_duplicate_pairs([_duplicates.normalize_text(text) for text in texts])

    assert (10, 2999) in pairs


@pytest.mark.parametrize("kind", ["equal", "near_perfect", "strong", "identifier"])
def test_leak_messages_in_both_languages(kind: str) -> None:
    found = profile._leak_finding(profile.Leak("期中成绩", kind, 0.97))

    english, chinese = messages(found)
    assert "“期中成绩”" in english
    assert "Columns to leave out" in english
    assert "“期中成绩”" in chinese
    assert "不使用的列" in chinese


def test_every_message_key_in_catalogs() -> None:
    root = Path(profile.__file__).parent
    sources = "".join((root / name).read_text(encoding="utf-8")
                      for name in ("intake.py", "profile.py", "_duplicates.py", "privacy.py"))
    keys = set(re.findall(r'"((?:intake|profile|privacy)\.[a-z_.]+)"', sources))
    keys |= {f"profile.leak.{kind}" for kind in ("equal", "near_perfect", "strong", "identifier")}
    keys |= {f"profile.left_out.{reason}" for reason in ("identifier", "free_text", "personal_data")}

    assert "intake.no_matching_ids" in keys
    for lang in ("en", "zh"):
        assert keys - catalog(lang).keys() == set(), lang
