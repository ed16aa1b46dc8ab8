"""Generate the synthetic sample data sets that ship with EduTune.

Run ``python sample_data/make_samples.py`` to rewrite these files next to this script:

gradebook_en.csv, gradebook_zh.csv
    300 grade-7 students each, one row per student, for predicting ``final_score``
    (or pass/fail at 60). A latent ability drawn from N(0, 1) raises homework, quiz,
    midterm and participation scores and lowers absences. ``final_score`` is a
    weighted sum of midterm, homework, quizzes, study hours, absences and
    participation plus N(0, 4.5) noise, rounded to an integer in 0-100. Gender, age,
    class and first language have no effect on any score. About 3% of
    ``study_hours_per_week`` and ``homework_avg`` cells are blank. The Chinese file is
    drawn independently with Chinese headers and labels.
essays_en.csv, essays_zh.csv
    100 essays each, 50 per prompt, with a rubric score of 1-5 and a second rater's
    score. Essays are assembled from sentence templates in ``_essays_en.py`` and
    ``_essays_zh.py`` by the rules in ``_essay_compose.py``. Higher scores get longer,
    organized essays with examples and connectives. Lower scores get short, repetitive
    text with off-topic sentences, misspellings or typos, and run-on sentences.
questions_en.csv, questions_zh.csv
    100 student questions each, 25 per maths topic, for text classification. They are
    built from the templates in ``_questions.py``.

All data is synthetic. This project wrote every template and sentence, and no row
describes a real student, teacher or school.

Each file has its own random generator, seeded with ``SEED`` plus a fixed offset, so
changing one generator leaves the other files unchanged. The output is byte-identical
across runs with the same numpy and pandas versions.

NOTE: numpy does not promise identical random streams across releases, so a
different numpy version may produce different (equally valid) files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

OUTPUT_DIR = Path(__file__).resolve().parent
# The helper modules sit next to this script. Putting this folder on the path lets them
# import each other both when the script runs directly and when it is imported.
if str(OUTPUT_DIR) not in sys.path:
    sys.path.insert(0, str(OUTPUT_DIR))

import _essays_en  # noqa: E402
import _essays_zh  # noqa: E402
from _essay_compose import EssayLanguage, compose_essay  # noqa: E402
from _questions import generate_questions  # noqa: E402

SEED = 20240901
SEED_OFFSETS = {
    "gradebook_en.csv": 0, "gradebook_zh.csv": 1, "essays_en.csv": 2,
    "essays_zh.csv": 3, "questions_en.csv": 4, "questions_zh.csv": 5,
}

STUDENT_COUNT = 300
# Suggested pass mark for pass/fail prediction. compute_final_score is tuned around it.
PASS_MARK = 60
MISSING_RATE = 0.03
# Essays per rubric score for each prompt. They add up to 50, with fewer 1s and 5s.
ESSAY_SCORE_COUNTS = {1: 5, 2: 11, 3: 16, 4: 12, 5: 6}
QUESTIONS_PER_TOPIC = 25

GRADEBOOK_LABELS = {
    "en": {
        "id_format": "S2024{:03d}",
        "classes": ["7A", "7B", "7C", "7D"],
        "genders": ["F", "M"],
        "languages": ["English", "Spanish", "Mandarin", "Arabic", "Other"],
        "language_weights": [0.70, 0.12, 0.08, 0.04, 0.06],
    },
    "zh": {
        "id_format": "2024{:04d}",
        "classes": ["七年级1班", "七年级2班", "七年级3班", "七年级4班"],
        "genders": ["女", "男"],
        "languages": ["普通话", "粤语", "其他"],
        "language_weights": [0.72, 0.18, 0.10],
    },
}
GRADEBOOK_ZH_COLUMNS = {
    "student_id": "学号", "class": "班级", "gender": "性别", "age": "年龄",
    "study_hours_per_week": "每周学习时长", "absences": "缺勤次数", "homework_avg": "作业平均分",
    "quiz1": "测验1", "quiz2": "测验2", "midterm": "期中成绩", "participation": "课堂表现",
    "first_language": "母语", "final_score": "期末成绩",
}
ESSAY_COLUMNS = {
    "en": ["essay_id", "prompt", "essay", "score", "rater2_score"],
    "zh": ["作文编号", "题目", "作文", "得分", "第二评分"],
}
QUESTION_COLUMNS = {"en": ["question", "topic"], "zh": ["问题", "类别"]}


def simulate_scores(rng: np.random.Generator, count: int) -> pd.DataFrame:
    """Draw the numeric gradebook columns, with ``final_score`` computed from the others.

    Hours are per week, homework and midterm are 0-100, quizzes 0-10 and
    participation 1-5. Missing cells are added later by ``blank_some_cells``.
    """
    ability = rng.normal(0.0, 1.0, count)
    hours = np.clip(rng.gamma(3.0, 2.0, count) + 1.2 * ability, 0.5, 20.0)
    absences = rng.poisson(np.exp(1.0 - 0.35 * ability))
    homework = 72 + 9 * ability + 0.8 * (hours - 6) - 0.8 * absences + rng.normal(0, 7, count)
    quiz1 = np.rint(6.3 + 1.5 * ability + rng.normal(0, 1.3, count))
    quiz2 = np.rint(6.3 + 1.5 * ability + rng.normal(0, 1.3, count))
    midterm = 66 + 11 * ability + 0.6 * (hours - 6) - 0.7 * absences + rng.normal(0, 8, count)
    participation = np.rint(3 + 0.6 * ability + rng.normal(0, 0.8, count))
    scores = pd.DataFrame({
        "study_hours_per_week": np.round(hours * 2) / 2,
        "absences": np.minimum(absences, 30),
        "homework_avg": np.round(np.clip(homework, 0, 100), 1),
        "quiz1": np.clip(quiz1, 0, 10).astype(int),
        "quiz2": np.clip(quiz2, 0, 10).astype(int),
        "midterm": np.clip(np.rint(midterm), 0, 100).astype(int),
        "participation": np.clip(participation, 1, 5).astype(int),
    })
    scores["final_score"] = compute_final_score(rng, scores)
    return scores


def compute_final_score(rng: np.random.Generator, scores: pd.DataFrame) -> np.ndarray:
    """Combine the recorded scores into a 0-100 integer final score, plus N(0, 4.5) noise.

    The intercept puts roughly a fifth of students below ``PASS_MARK``.
    """
    final = (
        14.0
        + 0.40 * scores["midterm"]
        + 0.20 * scores["homework_avg"]
        + 1.2 * (scores["quiz1"] + scores["quiz2"])
        + 0.9 * scores["study_hours_per_week"]
        - 1.0 * scores["absences"]
        + 1.5 * (scores["participation"] - 3)
        + rng.normal(0, 4.5, len(scores))
    )
    return np.clip(np.rint(final), 0, 100).astype(int)


def blank_some_cells(rng: np.random.Generator, table: pd.DataFrame, columns: list[str]) -> None:
    """Set about ``MISSING_RATE`` of the cells in each of ``columns`` to NaN, in place."""
    for column in columns:
        table.loc[rng.random(len(table)) < MISSING_RATE, column] = np.nan


def build_gradebook(rng: np.random.Generator, language: str) -> pd.DataFrame:
    """Return one synthetic class gradebook with the labels and headers of ``language``."""
    labels = GRADEBOOK_LABELS[language]
    scores = simulate_scores(rng, STUDENT_COUNT)
    blank_some_cells(rng, scores, ["study_hours_per_week", "homework_avg"])
    students = pd.DataFrame({
        "student_id": [labels["id_format"].format(i) for i in range(1, STUDENT_COUNT + 1)],
        "class": rng.choice(labels["classes"], STUDENT_COUNT),
        "gender": rng.choice(labels["genders"], STUDENT_COUNT),
        "age": rng.choice([12, 13, 14], STUDENT_COUNT, p=[0.45, 0.50, 0.05]),
    })
    first_language = rng.choice(labels["languages"], STUDENT_COUNT, p=labels["language_weights"])
    table = pd.concat([students, scores.drop(columns="final_score")], axis=1)
    table["first_language"] = first_language
    table["final_score"] = scores["final_score"]
    return table.rename(columns=GRADEBOOK_ZH_COLUMNS) if language == "zh" else table


def simulate_second_rater(rng: np.random.Generator, scores: np.ndarray) -> np.ndarray:
    """Draw a second rater's 1-5 score for each essay, given the first rater's ``scores``.

    60% of the second scores equal the first, 36% differ by one point and 4% by two.
    An offset that would leave the 1-5 scale is applied in the other direction, so the
    agreement rates stay close to these targets at both ends of the scale.
    """
    offsets = rng.choice([0, 1, 2], size=len(scores), p=[0.60, 0.36, 0.04])
    signs = rng.choice([-1, 1], size=len(scores))
    second = scores + signs * offsets
    outside = (second < 1) | (second > 5)
    second[outside] = scores[outside] - signs[outside] * offsets[outside]
    return second


def build_essays(rng: np.random.Generator, language: EssayLanguage, code: str) -> pd.DataFrame:
    """Return distinct essays for every prompt and score of ``language``, in shuffled order."""
    rows: list[tuple[str, str, int]] = []
    seen: set[str] = set()
    for prompt_key, prompt in language.prompts.items():
        for score, count in ESSAY_SCORE_COUNTS.items():
            target = len(rows) + count
            while len(rows) < target:
                essay = compose_essay(rng, language, prompt_key, score)
                if essay not in seen:
                    seen.add(essay)
                    rows.append((prompt, essay, score))
    rows = [rows[int(i)] for i in rng.permutation(len(rows))]
    scores = np.array([row[2] for row in rows])
    id_prefix = "E" if code == "en" else "ZW"
    columns = ESSAY_COLUMNS[code]
    return pd.DataFrame({
        columns[0]: [f"{id_prefix}{i:03d}" for i in range(1, len(rows) + 1)],
        columns[1]: [row[0] for row in rows],
        columns[2]: [row[1] for row in rows],
        columns[3]: scores,
        columns[4]: simulate_second_rater(rng, scores),
    })


def build_questions(rng: np.random.Generator, code: str) -> pd.DataFrame:
    rows = generate_questions(rng, code, QUESTIONS_PER_TOPIC)
    return pd.DataFrame(rows, columns=QUESTION_COLUMNS[code])


def write_csv(table: pd.DataFrame, file_name: str) -> Path:
    """Write ``table`` as UTF-8 CSV without BOM or index, with LF line endings."""
    path = OUTPUT_DIR / file_name
    table.to_csv(path, index=False, encoding="utf-8", lineterminator="\n")
    return path


def main() -> None:
    builders = {
        "gradebook_en.csv": lambda rng: build_gradebook(rng, "en"),
        "gradebook_zh.csv": lambda rng: build_gradebook(rng, "zh"),
        "essays_en.csv": lambda rng: build_essays(rng, _essays_en.LANGUAGE, "en"),
        "essays_zh.csv": lambda rng: build_essays(rng, _essays_zh.LANGUAGE, "zh"),
        "questions_en.csv": lambda rng: build_questions(rng, "en"),
        "questions_zh.csv": lambda rng: build_questions(rng, "zh"),
    }
    for file_name, build in builders.items():
        table = build(np.random.default_rng(SEED + SEED_OFFSETS[file_name]))
        path = write_csv(table, file_name)
        print(f"wrote {path} ({len(table)} rows)")


if __name__ == "__main__":
    main()
