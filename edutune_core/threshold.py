"""Alert thresholds for at-risk models, chosen by the share of at-risk students to catch.

A two-class model gives each student a probability of the at-risk class (``fail``). A
student is flagged when that probability is at least the threshold. A teacher states
the recall they need ("catch at least 9 of 10 students who will fail"), and
``choose_threshold`` returns the highest threshold that reaches it on the validation
rows, with the number of students it flags and how many of those are false alarms.
An ``AlertRule`` saved in the run's summary carries the chosen threshold to prediction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from edutune_core.i18n import EduTuneError
from edutune_core.tasks import FAIL_LABEL


# Key of the saved alert threshold in a run's summary.
ALERT_SUMMARY_KEY = "alert_threshold"


class ThresholdError(EduTuneError):
    """A threshold that cannot be chosen from the validation rows."""


@dataclass
class ThresholdChoice:
    """An alert threshold and what it does on the validation rows.

    Attributes:
        threshold: Flag a student when the at-risk probability is at least this.
        target_recall: The recall that was requested.
        recall: Share of at-risk students flagged (at least ``target_recall``).
        flagged: Students flagged.
        caught: Flagged students who are at risk.
        false_alarms: Flagged students who are not at risk.
        missed: At-risk students not flagged.
        at_risk: At-risk students in the validation rows.
        rows: Validation rows.
    """

    threshold: float
    target_recall: float
    recall: float
    flagged: int
    caught: int
    false_alarms: int
    missed: int
    at_risk: int
    rows: int

    @property
    def precision(self) -> float:
        """Share of flagged students who are at risk; 0 when no student is flagged."""
        return self.caught / self.flagged if self.flagged else 0.0


def default_at_risk_label(labels: list[str], counts: dict[str, int] | None = None) -> str:
    """Return ``fail`` when it is a class, else the rarer class (the first on a tie or without counts)."""
    if FAIL_LABEL in labels:
        return FAIL_LABEL
    if counts:
        return min(labels, key=lambda label: (counts.get(label, 0), labels.index(label)))
    return labels[0]


def _check(is_positive: np.ndarray, probability: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    is_positive = np.asarray(is_positive, dtype=bool)
    probability = np.asarray(probability, dtype=np.float64)
    if len(is_positive) != len(probability):
        raise ValueError(f"{len(is_positive)} labels but {len(probability)} probabilities")
    if not is_positive.any():
        raise ThresholdError("evaluation.no_at_risk_rows", rows=len(is_positive))
    return is_positive, probability


def evaluate_threshold(is_positive: np.ndarray, probability: np.ndarray, threshold: float,
                       target_recall: float | None = None) -> ThresholdChoice:
    """Count what flagging ``probability >= threshold`` does on labelled rows.

    Raises:
        ThresholdError: No row is at risk, so recall is undefined.
    """
    is_positive, probability = _check(is_positive, probability)
    flagged = probability >= threshold
    caught = int(np.sum(flagged & is_positive))
    at_risk = int(is_positive.sum())
    recall = caught / at_risk
    return ThresholdChoice(threshold=float(threshold),
                           target_recall=float(recall if target_recall is None else target_recall),
                           recall=recall, flagged=int(flagged.sum()), caught=caught,
                           false_alarms=int(np.sum(flagged & ~is_positive)), missed=at_risk - caught,
                           at_risk=at_risk, rows=len(is_positive))


def choose_threshold(is_positive: np.ndarray, probability: np.ndarray, target_recall: float) -> ThresholdChoice:
    """Return the highest threshold whose recall on these rows is at least ``target_recall``.

    With P at-risk rows, at least ``ceil(target_recall * P)`` of them must be flagged, so
    the threshold is that many-th highest probability among the at-risk rows. Rows with
    the same probability are flagged together, so recall may come out higher.

    Raises:
        ThresholdError: ``target_recall`` is outside (0, 1], or no row is at risk.
    """
    if not 0 < target_recall <= 1:
        raise ThresholdError("evaluation.recall_out_of_range", recall=target_recall)
    is_positive, probability = _check(is_positive, probability)
    needed = max(1, math.ceil(target_recall * is_positive.sum() - 1e-9))
    at_risk_probabilities = np.sort(probability[is_positive])[::-1]
    return evaluate_threshold(is_positive, probability, float(at_risk_probabilities[needed - 1]), target_recall)


def threshold_curve(is_positive: np.ndarray, probability: np.ndarray) -> pd.DataFrame:
    """Return recall, flagged and false alarms for every distinct threshold, highest first.

    Raises:
        ThresholdError: No row is at risk.
    """
    is_positive, probability = _check(is_positive, probability)
    rows = [evaluate_threshold(is_positive, probability, threshold)
            for threshold in np.unique(probability)[::-1]]
    return pd.DataFrame({"threshold": [row.threshold for row in rows], "recall": [row.recall for row in rows],
                         "flagged": [row.flagged for row in rows], "false_alarms": [row.false_alarms for row in rows]})


@dataclass(frozen=True)
class AlertRule:
    """An alert threshold saved with a two-class run: flag a student when P(``label``) >= ``threshold``.

    Attributes:
        label: The class that means "at risk".
        threshold: Flag a row when the probability of ``label`` is at least this.
        target_recall: The recall on the validation rows that the threshold was chosen for.
    """

    label: str
    threshold: float
    target_recall: float

    def to_dict(self) -> dict:
        return {"label": self.label, "threshold": float(self.threshold), "target_recall": float(self.target_recall)}

    @classmethod
    def from_summary(cls, summary: dict, labels: list[str] | None) -> AlertRule | None:
        """Return the rule saved in a run's summary, or None when none is saved or it does not fit ``labels``."""
        saved = summary.get(ALERT_SUMMARY_KEY)
        if not saved or not labels or len(labels) != 2 or saved.get("label") not in labels:
            return None
        threshold = saved.get("threshold")
        if not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            return None
        return cls(label=saved["label"], threshold=float(threshold), target_recall=float(saved.get("target_recall", 0)))

    def flags(self, probabilities: np.ndarray, labels: list[str]) -> np.ndarray:
        """Return True for each row (of class probabilities, one column per label) at or above the threshold."""
        return np.asarray(probabilities)[:, labels.index(self.label)] >= self.threshold
