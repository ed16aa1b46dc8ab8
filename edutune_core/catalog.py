"""Recommended models per task and language, and whether each is available on this machine.

Sizes are parameter counts published with each model. Training speed is an estimate,
labelled as such: it scales the bundled model's speed, measured on this project's
reference machine, by the ratio of parameter counts.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from edutune_core.models import BUNDLED_MODEL, resolve_model_source, transformers_auto_classes

logger = logging.getLogger(__name__)

# Essays per second when fine-tuning the bundled 22.7M-parameter model at max length 256
# and batch size 16 on 2 CPU cores. Measured with python -m edutune_core train on ASAP
# prompt 3: about 3 s per step of 16 essays.
_BUNDLED_ESSAYS_PER_SECOND_CPU = 5.0
_BUNDLED_PARAMETERS = 22.7e6


@dataclass(frozen=True)
class CatalogEntry:
    """One recommended model."""

    model_id: str
    languages: tuple[str, ...]
    parameters: float
    licence: str
    note_key: str


CATALOG = (
    CatalogEntry(BUNDLED_MODEL, ("en",), 22.7e6, "Apache-2.0", "models.note.bundled"),
    CatalogEntry("hfl/rbt3", ("zh",), 38e6, "Apache-2.0", "models.note.rbt3"),
    CatalogEntry("hfl/chinese-roberta-wwm-ext", ("zh",), 102e6, "Apache-2.0", "models.note.chinese_roberta"),
    CatalogEntry("bert-base-chinese", ("zh",), 102e6, "Apache-2.0", "models.note.bert_chinese"),
    CatalogEntry("intfloat/multilingual-e5-small", ("zh", "en", "multi"), 118e6, "MIT", "models.note.e5_small"),
    CatalogEntry("xlm-roberta-base", ("zh", "en", "multi"), 278e6, "MIT", "models.note.xlmr"),
    CatalogEntry("microsoft/deberta-v3-small", ("en",), 141e6, "MIT", "models.note.deberta"),
)


def availability(model_id: str) -> str:
    """Return ``"bundled"``, ``"local_folder"``, ``"cached"`` or ``"download"``."""
    if model_id == BUNDLED_MODEL:
        return "bundled"
    if Path(model_id).expanduser().is_dir():
        return "local_folder"
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(model_id, "config.json")
    return "cached" if isinstance(cached, str) else "download"


def estimated_essays_per_second(parameters: float, on_gpu: bool) -> float:
    """Estimate training speed from the parameter count; GPUs are assumed 20 times faster."""
    speed = _BUNDLED_ESSAYS_PER_SECOND_CPU * _BUNDLED_PARAMETERS / parameters
    return speed * (20 if on_gpu else 1)


def catalog_rows(language: str | None = None) -> list[dict]:
    """List the catalog, models covering ``language`` first, with availability and speed."""
    import torch

    on_gpu = torch.cuda.is_available()
    entries = sorted(CATALOG, key=lambda entry: language is not None and language not in entry.languages)
    return [{"model_id": entry.model_id, "languages": entry.languages, "parameters": entry.parameters,
             "licence": entry.licence, "note_key": entry.note_key, "availability": availability(entry.model_id),
             "essays_per_second": estimated_essays_per_second(entry.parameters, on_gpu)} for entry in entries]


_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def text_language(texts: list[str]) -> str:
    """Return ``"zh"`` when at least a fifth of the letters are CJK characters, else ``"en"``."""
    sample = "".join(texts[:200])
    letters = sum(character.isalpha() for character in sample)
    return "zh" if letters and len(_CJK.findall(sample)) / letters >= 0.2 else "en"


@dataclass
class LanguageCheck:
    """Share of unknown tokens the model's tokenizer produces on a sample of the texts."""

    language: str
    unknown_share: float
    covered: bool
    recommended: list[str]


def check_language(model_reference: str, texts: list[str], sample_size: int = 200) -> LanguageCheck | None:
    """Tokenise a sample of ``texts`` and tell whether the model covers their language.

    Returns None when the tokenizer is not on this machine (a hub id not downloaded yet).
    """
    AutoTokenizer, _ = transformers_auto_classes()

    try:
        source = resolve_model_source(model_reference)
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as error:
        logger.info("no local tokenizer for %s: %s", model_reference, error)
        return None
    sample = [text for text in texts[:sample_size] if text.strip()]
    ids = [token for text in sample for token in tokenizer(text, add_special_tokens=False)["input_ids"]]
    unknown = tokenizer.unk_token_id
    share = sum(token == unknown for token in ids) / len(ids) if ids and unknown is not None else 0.0
    language = text_language(sample)
    covered = share < 0.05
    recommended = [] if covered else [row["model_id"] for row in catalog_rows(language)
                                      if language in row["languages"]][:3]
    return LanguageCheck(language=language, unknown_share=share, covered=covered, recommended=recommended)


