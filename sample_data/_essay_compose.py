"""Compose synthetic essays from sentence pools so that text quality follows the score.

A language module (``_essays_en.py``, ``_essays_zh.py``) supplies an ``EssayLanguage``
with its pools, connectives and length limits. The drafting function for each rubric
score picks sentence templates from those pools:

- 5: hook, thesis, three reasons with examples, a conceded counterargument, conclusion
  (``rich`` pool, with varied connectives such as "Furthermore" and "In conclusion").
- 4: opener, thesis, three or four reasons with examples, usually a short
  counterargument, conclusion (``medium`` pool).
- 3: thesis and two to four reasons, fewer examples and plainer connectives
  (``medium`` pool).
- 2: a thesis, simple claims, one borrowed medium-pool claim, the thesis repeated and
  an off-topic sentence (``simple`` pool).
- 1: simple claims drawn with repetition and one or two off-topic sentences.

The language module then fills the slots, adds spelling mistakes and run-on sentences
for low scores, and measures the length. Drafts outside the length range of their
score are discarded and drawn again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

MAX_DRAFTS = 2000


@dataclass(frozen=True)
class EssayLanguage:
    """Sentence pools and text rules of one essay language."""

    # Prompt key -> prompt text shown in the CSV.
    prompts: dict[str, str]
    # Prompt key -> {"sides": {side: {"rich"|"medium"|"simple": pool}}, "offtopic": [...]}.
    pools: dict[str, dict]
    # Score -> one list of connective choices per reason position. Positions past the
    # end of the list reuse its last entry.
    connectives: dict[int, list[list[str]]]
    # Score -> inclusive (minimum, maximum) length, in the unit that ``measure`` returns.
    length_ranges: dict[int, tuple[int, int]]
    # (rng, prompt key) -> values for the {slot} fields of the templates.
    pick_slots: Callable[[np.random.Generator, str], dict[str, str]]
    # (connective, claim template) -> sentence template.
    attach: Callable[[str, str], str]
    # (rng, filled sentences, score) -> final essay text.
    render: Callable[[np.random.Generator, list[str], int], str]
    # Essay text -> length (words for English, characters for Chinese).
    measure: Callable[[str], int]


def pick(rng: np.random.Generator, items: list):
    """Return one item of ``items`` chosen uniformly, as its original Python object."""
    return items[int(rng.integers(len(items)))]


def sample(rng: np.random.Generator, items: list, count: int) -> list:
    """Return ``count`` distinct items of ``items`` in random order."""
    indices = rng.choice(len(items), size=min(count, len(items)), replace=False)
    return [items[int(i)] for i in indices]


def compose_essay(rng: np.random.Generator, language: EssayLanguage, prompt_key: str, score: int) -> str:
    """Draft essays for ``prompt_key`` until one fits the length range of ``score``.

    Raises:
        RuntimeError: no draft fitted after ``MAX_DRAFTS`` tries, which means the pools
            and ``length_ranges`` of the language no longer match.
    """
    low, high = language.length_ranges[score]
    prompt_pools = language.pools[prompt_key]
    sides = sorted(prompt_pools["sides"])
    for _ in range(MAX_DRAFTS):
        pools = prompt_pools["sides"][pick(rng, sides)]
        templates = DRAFTERS[score](rng, language, pools, prompt_pools["offtopic"])
        slots = language.pick_slots(rng, prompt_key)
        text = language.render(rng, [t.format(**slots) for t in templates], score)
        if low <= language.measure(text) <= high:
            return text
    raise RuntimeError(
        f"no essay for prompt {prompt_key!r} and score {score} fitted the length range "
        f"{low}-{high} after {MAX_DRAFTS} drafts; widen length_ranges or extend the pools"
    )


def _connective(rng: np.random.Generator, language: EssayLanguage, score: int, position: int) -> str:
    choices_by_position = language.connectives[score]
    return pick(rng, choices_by_position[min(position, len(choices_by_position) - 1)])


def _draft_reasons(rng, language, score, reasons, count, p_example, p_second_example):
    """Return claim sentences with connectives, each followed by zero to two examples."""
    sentences = []
    for position, (claim, examples) in enumerate(sample(rng, reasons, count)):
        sentences.append(language.attach(_connective(rng, language, score, position), claim))
        if rng.random() < p_example:
            first, *rest = sample(rng, examples, 2)
            sentences.append(first)
            if rest and rng.random() < p_second_example:
                sentences.append(rest[0])
    return sentences


def _draft_score5(rng, language, pools, offtopic):
    rich = pools["rich"]
    sentences = [pick(rng, rich["hooks"]), pick(rng, rich["theses"])]
    sentences += _draft_reasons(rng, language, 5, rich["reasons"], 3, 1.0, 0.3)
    sentences += list(pick(rng, rich["counters"]))
    sentences.append(pick(rng, rich["conclusions"]))
    return sentences


def _draft_score4(rng, language, pools, offtopic):
    medium = pools["medium"]
    sentences = [pick(rng, medium["openers"]), pick(rng, medium["theses"])]
    count = int(rng.integers(3, len(language.connectives[4]) + 1))
    sentences += _draft_reasons(rng, language, 4, medium["reasons"], count, 1.0, 0.4)
    if rng.random() < 0.7:
        sentences.append(pick(rng, medium["counters"]))
    sentences.append(pick(rng, medium["conclusions"]))
    return sentences


def _draft_score3(rng, language, pools, offtopic):
    medium, simple = pools["medium"], pools["simple"]
    sentences = [pick(rng, medium["openers"])] if rng.random() < 0.5 else []
    sentences.append(pick(rng, medium["theses"]))
    count = int(rng.integers(2, 5))
    sentences += _draft_reasons(rng, language, 3, medium["reasons"], count, 0.5, 0.0)
    conclusions = medium["conclusions"] if rng.random() < 0.5 else simple["conclusions"]
    sentences.append(pick(rng, conclusions))
    return sentences


def _draft_score2(rng, language, pools, offtopic):
    simple = pools["simple"]
    thesis = pick(rng, simple["theses"])
    claims = sample(rng, simple["claims"], int(rng.integers(3, len(simple["claims"]) + 1)))
    claims.append(pick(rng, pools["medium"]["reasons"])[0])
    sentences = [thesis]
    for position, claim in enumerate(claims):
        sentences.append(language.attach(_connective(rng, language, 2, position), claim))
    if rng.random() < 0.7:
        sentences.append(thesis)
    sentences.append(pick(rng, offtopic))
    if rng.random() < 0.6:
        sentences.append(pick(rng, simple["conclusions"]))
    return sentences


def _draft_score1(rng, language, pools, offtopic):
    simple = pools["simple"]
    thesis = pick(rng, simple["theses"])
    sentences = [thesis]
    for position in range(int(rng.integers(4, 11))):
        claim = pick(rng, simple["claims"])
        sentences.append(language.attach(_connective(rng, language, 1, position), claim))
    for off_topic_sentence in sample(rng, offtopic, int(rng.integers(1, 3))):
        sentences.insert(int(rng.integers(1, len(sentences) + 1)), off_topic_sentence)
    if rng.random() < 0.8:
        sentences.append(thesis)
    return sentences


DRAFTERS = {1: _draft_score1, 2: _draft_score2, 3: _draft_score3, 4: _draft_score4, 5: _draft_score5}
