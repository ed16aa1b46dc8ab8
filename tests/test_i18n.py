import re

import pytest

from edutune_core.i18n import LANGUAGES, DataError, catalog, normalize_language, translate

PLACEHOLDER = re.compile(r"{(\w+)}")


def test_catalogs_have_same_keys():
    english, chinese = catalog("en"), catalog("zh")
    assert sorted(set(english) - set(chinese)) == []
    assert sorted(set(chinese) - set(english)) == []


@pytest.mark.parametrize("lang", LANGUAGES)
def test_catalog_placeholders_match_english(lang):
    english = catalog("en")
    for key, text in catalog(lang).items():
        assert set(PLACEHOLDER.findall(text)) == set(PLACEHOLDER.findall(english[key])), key


def test_chinese_catalog_is_chinese():
    untranslated = [key for key, text in catalog("zh").items()
                    if text == catalog("en")[key] and re.search(r"[a-z]{3,} [a-z]{2,}", text)]
    # Field terms such as QWK and RMSE read the same in both languages.
    assert untranslated == []


@pytest.mark.parametrize("locale, expected", [("zh-CN", "zh"), ("zh-Hant-TW", "zh"), ("en-US", "en"),
                                              ("fr-FR", "en"), (None, "en")])
def test_normalize_language(locale, expected):
    assert normalize_language(locale) == expected


def test_error_message_in_both_languages():
    error = DataError("data.missing_column", column="成绩", columns="姓名, 分数")
    assert error.message("en") == ('Column "成绩" is not in the file. The file has these columns: 姓名, 分数. '
                                   "Check the spelling or pick another column.")
    assert "“成绩”" in error.message("zh")
    assert "姓名, 分数" in error.message("zh")
    assert str(error) == error.message("en")


def test_missing_key_is_shown_not_raised():
    assert translate("no.such.key", "zh") == "no.such.key"
