"""Per-group results on the validation rows, with plain-words flags for large gaps.

For each group column of the mapping (class, gender, first language, school) every
group gets the task's metrics. Scores and values also get the difference between
standardised means (DSM) as RSMTool defines it (doc/evaluation.rst of
EducationalTestingService/rsmtool). Machine and teacher scores are first turned into
z-scores with the mean and standard deviation of all validation rows. A group's DSM is
then the mean of (machine z-score - teacher z-score) over its rows. At-risk models also
get, per group, the recall of the at-risk class and the share of students flagged.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from edutune_core import metrics as metric_lib
from edutune_core.evaluation import ValidationSet
from edutune_core.i18n import translate

logger = logging.getLogger(__name__)

# RSMTool's by-group report highlights standardised differences outside -0.1 to 0.1.
DSM_LIMIT = 0.10
# A group whose agreement or accuracy is this much below all students' is flagged.
METRIC_GAP = 0.10
# A group whose mean absolute error is this many times all students' is flagged.
ERROR_RATIO = 1.25
# A group whose flagged share differs from its at-risk share by more than this is flagged.
FLAG_SHARE_GAP = 0.10
# Groups with fewer validation rows are listed but not judged: their numbers are too noisy.
MIN_GROUP_ROWS = 10
# A group's recall is judged only when it has at least this many at-risk students.
MIN_AT_RISK_ROWS = 5
MISSING_GROUP = "?"

# The metric compared between groups, and whether higher is better.
GAP_METRIC = {"score": ("qwk", True), "classification": ("accuracy", True), "regression": ("mae", False)}


def group_results(validation: ValidationSet, group_columns: list[str], *, at_risk_label: str | None = None,
                  threshold: float | None = None) -> dict:
    """Compute every metric per group and flag large gaps.

    Args:
        validation: The run's validation rows and predictions.
        group_columns: Columns of the snapshot whose groups are compared.
        at_risk_label: For two-class models, the class that means "at risk".
        threshold: Flag a student when the at-risk probability is at least this;
            None uses the model's own prediction.

    Returns:
        ``{"overall": row, "groups": {column: [row per group]}, "flags": [flag]}``. A row
        has ``group``, ``rows``, the scalar metrics and, where they apply, ``dsm``,
        ``recall``, ``flagged_share`` and ``at_risk_share``. A flag is
        ``{"key": catalog key, "params": {...}}``; ``flag_message`` renders it.
    """
    targets, predicted = validation.target_values(), _predictions(validation, at_risk_label, threshold)
    differences = _standardised_differences(validation)
    overall = _group_row(validation, "*", np.ones(len(validation), bool), targets, predicted, differences,
                         at_risk_label)
    groups, flags = {}, []
    for column in group_columns:
        if column not in validation.source.columns:
            flags.append({"key": "fairness.column_missing", "params": {"column": column}})
            continue
        values = validation.source[column].astype(object).where(validation.source[column].notna(), MISSING_GROUP)
        values = values.astype(str).to_numpy()
        rows = [_group_row(validation, group, values == group, targets, predicted, differences, at_risk_label)
                for group in sorted(set(values))]
        groups[column] = rows
        for row in rows:
            flags.extend(_flags(validation.family, column, row, overall))
    return {"overall": overall, "groups": groups, "flags": flags}


def _predictions(validation: ValidationSet, at_risk_label: str | None, threshold: float | None) -> np.ndarray:
    predicted = validation.predicted_values()
    probabilities = validation.probabilities
    if threshold is None or at_risk_label is None or probabilities is None or len(validation.labels) != 2:
        return predicted
    at_risk = validation.labels.index(at_risk_label)
    return np.where(probabilities[:, at_risk] >= threshold, at_risk, 1 - at_risk)


def _standardised_differences(validation: ValidationSet) -> np.ndarray | None:
    """Return machine z-score minus teacher z-score per row, or None for classes and constant scores."""
    if validation.labels is not None or len(validation) < 2:
        return None
    machine, teacher = validation.raw_values(), validation.target_values()
    machine_sd, teacher_sd = machine.std(ddof=1), teacher.std(ddof=1)
    if machine_sd == 0 or teacher_sd == 0:
        return None
    return (machine - machine.mean()) / machine_sd - (teacher - teacher.mean()) / teacher_sd


def _group_row(validation: ValidationSet, group: str, member: np.ndarray, targets: np.ndarray,
               predicted: np.ndarray, differences: np.ndarray | None, at_risk_label: str | None) -> dict:
    row: dict = {"group": group, "rows": int(member.sum())}
    metrics = metric_lib.compute_metrics(validation.mapping.problem, targets[member], predicted[member],
                                         labels=validation.labels, score_points=validation.score_points)
    row.update({name: metrics[name] for name in metric_lib.SCALAR_METRICS if name in metrics})
    if differences is not None:
        row["dsm"] = float(differences[member].mean())
    if at_risk_label is not None and validation.labels is not None:
        at_risk = validation.labels.index(at_risk_label)
        is_at_risk, flagged = targets[member] == at_risk, predicted[member] == at_risk
        row["recall"] = float(flagged[is_at_risk].mean()) if is_at_risk.any() else None
        row["at_risk"] = int(is_at_risk.sum())
        row["flagged_share"] = float(flagged.mean())
        row["at_risk_share"] = float(is_at_risk.mean())
    return row


def _flags(family: str, column: str, row: dict, overall: dict) -> list[dict]:
    base = {"column": column, "group": row["group"], "rows": row["rows"]}
    if row["rows"] < MIN_GROUP_ROWS:
        return [{"key": "fairness.small_group", "params": {**base, "minimum": MIN_GROUP_ROWS}}]
    flags = []
    name, higher_is_better = GAP_METRIC[family]
    value, reference = row.get(name), overall.get(name)
    if value is not None and reference is not None:
        worse = value < reference - METRIC_GAP if higher_is_better else value > reference * ERROR_RATIO
        if worse:
            flags.append({"key": "fairness.metric_gap",
                          "params": {**base, "metric": name, "value": f"{value:.2f}", "overall": f"{reference:.2f}"}})
    if "dsm" in row and abs(row["dsm"]) > DSM_LIMIT:
        key = "fairness.dsm_high" if row["dsm"] > 0 else "fairness.dsm_low"
        flags.append({"key": key, "params": {**base, "dsm": f"{abs(row['dsm']):.2f}", "limit": DSM_LIMIT}})
    if row.get("recall") is not None and overall.get("recall") is not None \
            and row["at_risk"] >= MIN_AT_RISK_ROWS and row["recall"] < overall["recall"] - METRIC_GAP:
        flags.append({"key": "fairness.recall_gap", "params": {**base, "value": f"{row['recall']:.0%}",
                                                               "overall": f"{overall['recall']:.0%}"}})
    if "flagged_share" in row and abs(row["flagged_share"] - row["at_risk_share"]) > FLAG_SHARE_GAP:
        key = "fairness.flags_too_many" if row["flagged_share"] > row["at_risk_share"] else "fairness.flags_too_few"
        flags.append({"key": key, "params": {**base, "flagged": f"{row['flagged_share']:.0%}",
                                             "actual": f"{row['at_risk_share']:.0%}"}})
    return flags


def flag_message(flag: dict, lang: str) -> str:
    """Render a flag of ``group_results`` in ``lang``, with the metric's name translated."""
    params = dict(flag["params"])
    if "metric" in params:
        params["metric"] = translate(f"metric.{params['metric']}", lang)
    return translate(flag["key"], lang, **params)


def groups_table(results: dict, column: str) -> pd.DataFrame:
    """Return the rows of one group column as a table, all students first."""
    overall = {**results["overall"], "group": "*"}
    return pd.DataFrame([overall, *results["groups"][column]])
