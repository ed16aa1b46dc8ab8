"""Message catalogs in Simplified Chinese and English, and the user-facing error type.

Every text a teacher reads, in the web pages and on the command line, comes from the
JSON catalogs under ``locales/<lang>/``. Each language folder holds one file per area
(``common.json``, ``data.json`` and so on); the files of one language are merged, and a
key defined twice is a programming error.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "en"
_LOCALES_DIR = Path(__file__).parent / "locales"


@functools.cache
def catalog(lang: str) -> dict[str, str]:
    """Load the merged catalog of one language.

    Raises:
        ValueError: ``lang`` is not one of ``LANGUAGES``, or a key is defined twice.
    """
    if lang not in LANGUAGES:
        raise ValueError(f"unsupported language {lang!r}; expected one of {LANGUAGES}")
    merged: dict[str, str] = {}
    for path in sorted((_LOCALES_DIR / lang).glob("*.json")):
        entries = json.loads(path.read_text(encoding="utf-8"))
        for key in entries.keys() & merged.keys():
            raise ValueError(f"message key {key!r} is defined twice in the {lang} catalog ({path.name})")
        merged.update(entries)
    return merged


def normalize_language(locale: str | None) -> str:
    """Map a browser locale such as ``zh-CN``, ``zh-Hans-TW`` or ``en-GB`` to a catalog language."""
    if locale and locale.lower().startswith("zh"):
        return "zh"
    return DEFAULT_LANGUAGE


def translate(key: str, lang: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """Return the message ``key`` in ``lang`` with ``params`` filled in.

    A key missing from ``lang`` falls back to English, and a key missing from both is
    returned as is, so a gap in a catalog shows up on screen instead of crashing a page.
    """
    text = catalog(lang).get(key)
    if text is None:
        text = catalog(DEFAULT_LANGUAGE).get(key)
        if text is None:
            logger.warning("message key %r is missing from every catalog", key)
            return key
    try:
        return text.format(**params)
    except (KeyError, IndexError, ValueError):
        logger.warning("message %r does not accept the parameters %s", key, sorted(params))
        return text


class EduTuneError(Exception):
    """An error that the user can fix, raised with a catalog key and its parameters.

    The pages show ``message(lang)`` verbatim and the command line prints the English
    text, so the catalog entry must say what is wrong, the value received and what to do.
    """

    def __init__(self, key: str, **params: object) -> None:
        self.key = key
        self.params = params
        super().__init__(self.message(DEFAULT_LANGUAGE))

    def message(self, lang: str = DEFAULT_LANGUAGE) -> str:
        """Render the error in ``lang``."""
        return translate(self.key, lang, **self.params)


class DataError(EduTuneError):
    """A file or a column mapping that cannot be used as training or prediction data."""


class ConfigError(EduTuneError):
    """A training setting that is out of range or conflicts with the data."""


class ModelError(EduTuneError):
    """A model that cannot be found, loaded or used for the chosen task."""
