"""Column mapping: which column is the text, which is the target, and what kind of task follows.

A teacher's table becomes training data in two steps. ``propose_mapping`` guesses the
columns and the problem type from the table, and the user may change any of it.
``prepare_data`` then checks the mapping against the table and turns it into model
inputs (texts or feature columns) and targets (class indices or numbers).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from edutune_core.i18n import DataError

logger = logging.getLogger(__name__)

CLASSIFICATION = "classification"
REGRESSION = "regression"
PROBLEMS = (CLASSIFICATION, REGRESSION)

ESSAY_SCORING = "essay_scoring"
TEXT_CLASSIFICATION = "text_classification"
TEXT_REGRESSION = "text_regression"
TABULAR = "tabular"
IMAGE_CLASSIFICATION = "image_classification"

PASS_LABEL = "pass"
FAIL_LABEL = "fail"

# A text column differs from a category column by its mean length in characters.
_MIN_MEAN_TEXT_CHARS = 40
# Scores on a scale wider than this are treated as continuous values, not score points.
_MAX_SCORE_POINTS = 61
_MIN_ROWS = 10
_MIN_ROWS_PER_CLASS = 2
SCORE_STEPS = (1.0, 0.5)
# A text or whole-number feature column is left out of a table model when its distinct
# values cover this share of its filled cells. Such columns are IDs and free comments:
# one-hot encoding cannot learn from them, and their categories would store students' values.
NEARLY_UNIQUE_SHARE = 0.9
# Fewer distinct values than this never count as nearly unique, so a small category
# column of a small table stays a model input.
_MIN_UNIQUE_VALUES = 5
# A whole-number column counts as an ID only when all values differ on this many rows,
# so a column of earlier grades stays a model input.
_MIN_NUMBER_ID_ROWS = 20
_CODE_VALUE = re.compile(r"[A-Za-z0-9_./-]+")
LEFT_OUT_IDENTIFIER = "identifier"
LEFT_OUT_FREE_TEXT = "free_text"
LEFT_OUT_PERSONAL_DATA = "personal_data"
_TARGET_NAME_HINTS = ("score", "grade", "label", "target", "final", "result", "category", "topic",
                      "g3", "得分", "分数", "成绩", "等级", "类别", "标签")


@dataclass
class ColumnMapping:
    """Mapping from the columns of a table to a training task.

    Attributes:
        target: Column the model learns to predict.
        text_column: Column with free text (essays, answers, questions), or None for a
            model on the table's other columns.
        ignore_columns: Columns left out of the model inputs (IDs, names, leaked grades).
        problem: ``"classification"`` or ``"regression"``.
        pass_mark: When set, a numeric target becomes ``pass`` (value >= pass_mark) or
            ``fail``, and the problem is classification.
        group_columns: Columns (class, gender, first language) whose groups get their
            own metrics. They stay model inputs unless they are also ignored.
        student_column: Column naming the student (or class) of each row. All rows of
            one student stay on the same side of every split, and the column is never
            a model input.
        image_column: Column with image file paths (scanned work, handwriting), for
            image classification; None for text and table tasks.
        score_min: Lowest score of the rubric for a regression target, or None for
            the lowest score in the data.
        score_max: Highest score of the rubric, or None for the highest in the data.
        score_step: Distance between score points, 1 or 0.5, or None to take 1 when
            every score is whole.
    """

    target: str
    text_column: str | None = None
    ignore_columns: list[str] = field(default_factory=list)
    problem: str = CLASSIFICATION
    pass_mark: float | None = None
    group_columns: list[str] = field(default_factory=list)
    student_column: str | None = None
    image_column: str | None = None
    score_min: float | None = None
    score_max: float | None = None
    score_step: float | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> ColumnMapping:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


@dataclass
class PreparedData:
    """Model inputs and targets built from a table and a mapping.

    Attributes:
        mapping: The mapping the data was built with.
        task: One of the task names of this module.
        texts: One text per row for text tasks, else None.
        features: Feature columns for table tasks, else None.
        targets: Class indices (int64) for classification, values (float64) for
            regression, or None when the table has no target column (prediction).
        labels: Class names in index order, for classification.
        score_points: ``(low, high)`` when the regression target is whole score points,
            such as an essay rubric or a 0-20 grade, or ``(low, high, step)`` for a
            stated half-point rubric. Predictions are rounded to these points and
            clipped to the range. None for continuous values.
        dropped_rows: Number of rows left out, by reason key.
        row_index: Index labels of the kept rows in the source table.
        groups: Values of the mapping's group columns for the kept rows, as text.
        students: Values of the student column for the kept rows, or None.
        images: Image file paths for image tasks, else None.
    """

    mapping: ColumnMapping
    task: str
    texts: list[str] | None
    features: pd.DataFrame | None
    targets: np.ndarray | None
    labels: list[str] | None
    score_points: tuple | None
    dropped_rows: dict[str, int]
    row_index: pd.Index
    groups: pd.DataFrame | None = None
    students: np.ndarray | None = None
    images: list[str] | None = None

    def __len__(self) -> int:
        return len(self.row_index)

    def subset(self, positions: np.ndarray) -> PreparedData:
        """Return the rows at ``positions`` (integer positions, not index labels)."""
        return dataclasses.replace(
            self,
            texts=None if self.texts is None else [self.texts[i] for i in positions],
            features=None if self.features is None else self.features.iloc[positions],
            targets=None if self.targets is None else self.targets[positions],
            row_index=self.row_index[positions],
            groups=None if self.groups is None else self.groups.iloc[positions],
            students=None if self.students is None else self.students[positions],
            images=None if self.images is None else [self.images[i] for i in positions],
        )


def task_for(mapping: ColumnMapping) -> str:
    """Name the task that a mapping describes."""
    if mapping.image_column is not None:
        return IMAGE_CLASSIFICATION
    if mapping.text_column is None:
        return TABULAR
    if mapping.problem == CLASSIFICATION:
        return TEXT_CLASSIFICATION
    return ESSAY_SCORING


def is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def propose_mapping(frame: pd.DataFrame) -> ColumnMapping:
    """Guess the text column, the target and the problem type of a table."""
    text_column = _guess_text_column(frame)
    target = _guess_target(frame, text_column)
    problem = propose_problem(frame[target])
    return ColumnMapping(target=target, text_column=text_column, problem=problem)


def propose_problem(target: pd.Series) -> str:
    """Propose classification for labels and two-valued columns, regression for other numbers."""
    values = target.dropna()
    if is_numeric(values) and values.nunique() > 2:
        return REGRESSION
    return CLASSIFICATION


def _guess_text_column(frame: pd.DataFrame) -> str | None:
    best, best_length = None, float(_MIN_MEAN_TEXT_CHARS)
    for column in frame.columns:
        if is_numeric(frame[column]):
            continue
        mean_length = frame[column].dropna().astype(str).str.len().mean()
        if mean_length > best_length:
            best, best_length = column, mean_length
    return best


def _guess_target(frame: pd.DataFrame, text_column: str | None) -> str:
    candidates = [column for column in frame.columns if column != text_column]
    if not candidates:
        raise DataError("data.no_target_candidate", columns=", ".join(map(str, frame.columns)))
    names = {column: str(column).strip().lower() for column in candidates}
    # An exact name ("score") beats a name that only contains a hint ("rater2_score").
    for column in reversed(candidates):
        if names[column] in _TARGET_NAME_HINTS:
            return column
    for column in reversed(candidates):
        if any(hint in names[column] for hint in _TARGET_NAME_HINTS):
            return column
    return candidates[-1]


def feature_columns(frame: pd.DataFrame, mapping: ColumnMapping) -> list[str]:
    """List the table columns used as model inputs for a table task."""
    left_out = {mapping.target, mapping.text_column, mapping.student_column, mapping.image_column,
                *mapping.ignore_columns}
    return [column for column in frame.columns if column not in left_out]


def unusable_feature_columns(features: pd.DataFrame) -> dict[str, str]:
    """Find the feature columns that a table model leaves out, with the reason of each.

    A text column in which ``privacy.scan_privacy`` finds one name, ID number, phone
    number or e-mail address per cell contains personal data. Another text column whose distinct values cover ``NEARLY_UNIQUE_SHARE`` of its filled
    cells is an identifier when most values are codes of letters, digits and ``_./-``
    (S2024001, 2024-07-15), else free text. A whole-number column is an identifier when every value differs on at
    least 20 rows. Decimal numbers, dates and yes/no columns always stay inputs.
    """
    from edutune_core.privacy import scan_privacy

    text_columns = [column for column in features.columns if not is_numeric(features[column])]
    left_out = {finding.column: LEFT_OUT_PERSONAL_DATA for finding in scan_privacy(features[text_columns]).findings
                if finding.whole_cells}
    for column in features.columns:
        if str(column) in left_out:
            continue
        values = features[column].dropna()
        if values.empty or pd.api.types.is_bool_dtype(values) or pd.api.types.is_float_dtype(values):
            continue
        if pd.api.types.is_datetime64_any_dtype(values):
            continue
        distinct = values.nunique()
        if pd.api.types.is_integer_dtype(values):
            if distinct == len(values) >= _MIN_NUMBER_ID_ROWS:
                left_out[str(column)] = LEFT_OUT_IDENTIFIER
            continue
        text = values.astype(str).str.strip()
        text = text[text != ""]
        distinct = text.nunique()
        if distinct < _MIN_UNIQUE_VALUES or distinct < NEARLY_UNIQUE_SHARE * len(text):
            continue
        codes = sum(1 for value in text if _CODE_VALUE.fullmatch(value))
        left_out[str(column)] = LEFT_OUT_IDENTIFIER if codes >= NEARLY_UNIQUE_SHARE * len(text) else LEFT_OUT_FREE_TEXT
    return left_out


def prepare_data(frame: pd.DataFrame, mapping: ColumnMapping, *, require_target: bool = True,
                 labels: list[str] | None = None, check_rows: bool | None = None) -> PreparedData:
    """Check ``mapping`` against ``frame`` and build model inputs and targets.

    Args:
        frame: The loaded table.
        mapping: Column mapping chosen by the user.
        require_target: False for prediction on a table without the target column.
        labels: Class names of an existing model, so new data uses the same indices.
        check_rows: Apply the training checks (enough rows, two classes, enough rows per
            class, spread). Defaults to ``require_target``; evaluation turns them off,
            because a class that all passed is a valid set to evaluate on.

    Raises:
        DataError: A mapped column is missing, the target has too few rows, classes or
            spread, or the target has values that do not fit the problem type.
    """
    _check_columns(frame, mapping, require_target)
    has_target = mapping.target in frame.columns
    kept = pd.Series(True, index=frame.index)
    dropped: dict[str, int] = {}

    if has_target:
        missing_target = frame[mapping.target].isna() | (frame[mapping.target].astype(str).str.strip() == "")
        dropped["data.dropped.missing_target"] = int(missing_target.sum())
        kept &= ~missing_target
    if mapping.text_column is not None:
        missing_text = frame[mapping.text_column].isna() | (frame[mapping.text_column].astype(str).str.strip() == "")
        dropped["data.dropped.missing_text"] = int((missing_text & kept).sum())
        kept &= ~missing_text

    rows = frame[kept]
    if has_target and require_target and rows.empty:
        raise DataError("data.no_target_rows", column=mapping.target)
    targets, labels, score_points = None, labels, None
    if has_target:
        targets, labels, score_points = _build_targets(rows[mapping.target], mapping, labels,
                                                       require_target if check_rows is None else check_rows)
    texts = None if mapping.text_column is None else rows[mapping.text_column].astype(str).tolist()
    images = None if mapping.image_column is None else rows[mapping.image_column].astype(str).tolist()
    table_task = mapping.text_column is None and mapping.image_column is None
    features = rows[feature_columns(frame, mapping)] if table_task else None
    if features is not None and features.shape[1] == 0:
        raise DataError("data.no_feature_columns", target=mapping.target)

    groups = rows[mapping.group_columns].astype(str) if mapping.group_columns else None
    students = rows[mapping.student_column].astype(str).to_numpy() if mapping.student_column else None
    dropped = {reason: count for reason, count in dropped.items() if count}
    if dropped:
        logger.info("dropped rows: %s", dropped)
    return PreparedData(mapping=mapping, task=task_for(mapping), texts=texts, features=features,
                        targets=targets, labels=labels, score_points=score_points,
                        dropped_rows=dropped, row_index=rows.index, groups=groups, students=students,
                        images=images)


def _check_columns(frame: pd.DataFrame, mapping: ColumnMapping, require_target: bool) -> None:
    available = ", ".join(map(str, frame.columns))
    if mapping.problem not in PROBLEMS:
        raise DataError("data.unknown_problem", problem=mapping.problem, allowed=", ".join(PROBLEMS))
    if require_target and mapping.target not in frame.columns:
        raise DataError("data.missing_column", column=mapping.target, columns=available)
    for column in (mapping.text_column, mapping.image_column):
        if column is not None and column not in frame.columns:
            raise DataError("data.missing_column", column=column, columns=available)
    if mapping.text_column is not None and mapping.text_column == mapping.target:
        raise DataError("data.text_is_target", column=mapping.target)
    if mapping.target in mapping.ignore_columns:
        raise DataError("data.target_ignored", column=mapping.target)
    for column in [*mapping.group_columns, mapping.student_column]:
        if column is not None and column not in frame.columns:
            raise DataError("data.missing_column", column=column, columns=available)
    if mapping.pass_mark is not None and mapping.problem != CLASSIFICATION:
        raise DataError("data.pass_mark_needs_classification", pass_mark=mapping.pass_mark)


def _build_targets(column: pd.Series, mapping: ColumnMapping, labels: list[str] | None,
                   check_rows: bool) -> tuple[np.ndarray, list[str] | None, tuple[int, int] | None]:
    if mapping.pass_mark is not None:
        values = _numeric_target(column, mapping)
        column = pd.Series(np.where(values >= mapping.pass_mark, PASS_LABEL, FAIL_LABEL), index=column.index)
        labels = labels or [FAIL_LABEL, PASS_LABEL]
    if mapping.problem == REGRESSION:
        values = _numeric_target(column, mapping)
        if check_rows:
            _check_regression_rows(values, mapping)
        if check_rows:
            _check_score_scale(values, mapping)
        return values, None, _score_points(values, mapping)
    return _class_targets(column, mapping, labels, check_rows)


def _numeric_target(column: pd.Series, mapping: ColumnMapping) -> np.ndarray:
    numbers = pd.to_numeric(column, errors="coerce")
    bad = column[numbers.isna()]
    if len(bad):
        examples = ", ".join(repr(value) for value in bad.astype(str).unique()[:3])
        raise DataError("data.non_numeric_target", column=mapping.target, count=len(bad), examples=examples)
    return numbers.to_numpy(dtype=np.float64)


def _check_regression_rows(values: np.ndarray, mapping: ColumnMapping) -> None:
    if len(values) < _MIN_ROWS:
        raise DataError("data.too_few_rows", column=mapping.target, rows=len(values), minimum=_MIN_ROWS)
    if np.ptp(values) == 0:
        raise DataError("data.no_spread", column=mapping.target, value=f"{values[0]:g}")


def _score_points(values: np.ndarray, mapping: ColumnMapping) -> tuple | None:
    """Return the rubric as ``(low, high)`` for whole points or ``(low, high, step)`` for half points.

    Returns None for continuous values. The rubric stated in ``mapping`` wins over the
    range found in the data, so a 0-6 rubric where no student scored 6 can still
    predict 6. Half points need a stated step of 0.5.
    """
    step = 1.0 if mapping.score_step is None else float(mapping.score_step)
    low = float(values.min()) if mapping.score_min is None else float(mapping.score_min)
    high = float(values.max()) if mapping.score_max is None else float(mapping.score_max)
    offsets = (values - low) / step
    if step == 1 and not (low.is_integer() and high.is_integer()):
        return None
    if not np.allclose(offsets, np.rint(offsets)):
        return None
    if round((high - low) / step) + 1 > _MAX_SCORE_POINTS:
        return None
    return (int(low), int(high)) if step == 1 else (low, high, step)


def _check_score_scale(values: np.ndarray, mapping: ColumnMapping) -> None:
    """Check the stated rubric against the scores: a range that contains them all, on its steps."""
    low, high, step = mapping.score_min, mapping.score_max, mapping.score_step
    if step is not None and step not in SCORE_STEPS:
        raise DataError("intake.score_step_invalid", step=f"{step:g}", allowed=", ".join(f"{s:g}" for s in SCORE_STEPS))
    if low is not None and high is not None and low >= high:
        raise DataError("intake.score_range_invalid", low=f"{low:g}", high=f"{high:g}")
    outside_mask = np.zeros(len(values), dtype=bool)
    if low is not None:
        outside_mask |= values < low
    if high is not None:
        outside_mask |= values > high
    outside = values[outside_mask]
    if len(outside):
        raise DataError("intake.score_outside_scale", column=mapping.target, count=len(outside),
                        examples=", ".join(f"{value:g}" for value in np.unique(outside)[:5]),
                        low=f"{values.min() if low is None else low:g}",
                        high=f"{values.max() if high is None else high:g}")
    if step is not None:
        origin = values.min() if low is None else low
        off_step = values[np.abs(np.mod(values - origin, step)) > 1e-9]
        if len(off_step):
            raise DataError("intake.score_off_step", column=mapping.target, count=len(off_step), step=f"{step:g}",
                            examples=", ".join(f"{value:g}" for value in np.unique(off_step)[:5]))


def _class_targets(column: pd.Series, mapping: ColumnMapping, labels: list[str] | None,
                   check_rows: bool) -> tuple[np.ndarray, list[str], None]:
    names = column.map(_label_name)
    if labels is None:
        labels = sorted(names.unique(), key=_label_sort_key)
    index = {label: position for position, label in enumerate(labels)}
    unknown = names[~names.isin(index)]
    if len(unknown):
        raise DataError("data.unknown_labels", column=mapping.target,
                        values=", ".join(unknown.unique()[:5]), labels=", ".join(labels))
    if check_rows:
        _check_class_rows(names, mapping)
    return names.map(index).to_numpy(dtype=np.int64), labels, None


def _check_class_rows(names: pd.Series, mapping: ColumnMapping) -> None:
    if len(names) < _MIN_ROWS:
        raise DataError("data.too_few_rows", column=mapping.target, rows=len(names), minimum=_MIN_ROWS)
    counts = names.value_counts()
    if len(counts) < 2:
        raise DataError("data.single_class", column=mapping.target, label=counts.index[0])
    rare = counts[counts < _MIN_ROWS_PER_CLASS]
    if len(rare):
        raise DataError("data.rare_class", column=mapping.target, label=rare.index[0],
                        count=int(rare.iloc[0]), minimum=_MIN_ROWS_PER_CLASS)


def _label_name(value: object) -> str:
    """Turn a label cell into its class name; 3.0 and 3 name the same class."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _label_sort_key(label: str) -> tuple[int, float, str]:
    try:
        return (0, float(label), label)
    except ValueError:
        return (1, 0.0, label)
