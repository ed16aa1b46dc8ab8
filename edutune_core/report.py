"""A printable model report for parents and school leaders, in Simplified Chinese or English.

The report is one self-contained HTML page that a browser prints to PDF. It covers the
model's purpose and a data summary without any row. Then come the metrics with their
spread over folds beside the simple baselines, and the per-group results with their
flags. It ends with the intended use and limits, and the exact settings and seed.
"""

from __future__ import annotations

import html
import json
import logging
import time

from edutune_core import metrics as metric_lib
from edutune_core.config import settings_for_task
from edutune_core.fairness import flag_message
from edutune_core.i18n import translate
from edutune_core.runstore import RunRecord

logger = logging.getLogger(__name__)

_STYLE = """
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "Helvetica Neue",
       Arial, sans-serif; color: #1a1a1a; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
h1 { font-size: 1.6rem; margin-bottom: 0.2rem; } h2 { font-size: 1.2rem; border-bottom: 1px solid #999;
     margin-top: 1.6rem; } table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { border: 1px solid #bbb; padding: 0.2rem 0.6rem; text-align: left; } th { background: #eee; }
.meta { color: #555; } .flag { color: #8a2c00; } code { font-size: 0.85rem; }
@media print { body { margin: 0; max-width: none; } section { break-inside: avoid; } a { color: inherit; } }
@page { size: A4; margin: 18mm; }
"""


def _text(key: str, lang: str, **params: object) -> str:
    """Translate and HTML-escape a catalog message."""
    return html.escape(translate(key, lang, **params))


def _table(header: list[str], rows: list[list[object]]) -> str:
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _number(value: object) -> str:
    return "-" if value is None else f"{value:.3f}"


def _purpose(record: RunRecord, lang: str, intended_use: str | None) -> str:
    mapping = record.config.get("mapping", {})
    summary = record.summary
    if summary.get("labels"):
        predicts = _text("report.predicts_classes", lang, labels=", ".join(map(str, summary["labels"])))
    elif summary.get("score_points"):
        low, high = summary["score_points"][:2]
        predicts = _text("report.predicts_scores", lang, low=f"{low:g}", high=f"{high:g}",
                         step=f"{metric_lib.score_step(summary['score_points']):g}")
    else:
        predicts = _text("report.predicts_values", lang)
    task = translate(f"task.{record.task}", lang)
    target = mapping.get("target", "?")
    if mapping.get("text_column"):
        purpose = _text("report.purpose_text", lang, task=task, model=record.model, target=target)
    else:
        purpose = _text("report.purpose_text_table", lang, task=task, target=target)
    teacher = ""
    if intended_use and intended_use.strip():
        teacher = (f"<p><strong>{_text('report.intended_use', lang)}</strong> "
                   f"{html.escape(intended_use.strip())}</p>")
    return f"<section><h2>{_text('report.purpose', lang)}</h2>{teacher}<p>{purpose} {predicts}</p></section>"


def data_summary_items(record: RunRecord, lang: str, groups: dict | None = None) -> list[str]:
    """Describe a run's data in plain sentences: rows used and left out, classes or spread, validation.

    The History page shows the same sentences; no item contains a student's data.
    """
    summary = record.summary
    items = [translate("report.rows", lang, rows=summary.get("rows", "?"), used=summary.get("rows_used", "?"))]
    for reason, count in (summary.get("dropped_rows") or {}).items():
        items.append(translate("report.dropped", lang, count=count, reason=translate(reason, lang)))
    if summary.get("label_counts"):
        counts = ", ".join(f"{label}: {count}" for label, count in summary["label_counts"].items())
        items.append(translate("report.label_counts", lang, counts=counts))
    elif "target_mean" in summary:
        items.append(translate("report.target_spread", lang, mean=f"{summary['target_mean']:.2f}",
                               sd=f"{summary['target_std']:.2f}"))
    folds = int(record.config.get("train", {}).get("folds", 0) or 0)
    if folds >= 2:
        items.append(translate("report.validation_folds", lang, folds=folds))
    else:
        items.append(translate("report.validation_rows", lang, rows=summary.get("validation_rows", "?")))
    for column, rows in (groups or {}).get("groups", {}).items():
        sizes = ", ".join(f"{row['group']}: {row['rows']}" for row in rows)
        items.append(translate("report.group_sizes", lang, column=column, sizes=sizes))
    return items


def _data_summary(record: RunRecord, lang: str, groups: dict | None) -> str:
    bullets = "".join(f"<li>{html.escape(item)}</li>" for item in data_summary_items(record, lang, groups))
    return f"<section><h2>{_text('report.data', lang)}</h2><ul>{bullets}</ul><p>{_text('report.no_rows', lang)}</p></section>"


def _metrics_section(record: RunRecord, lang: str, baseline: dict | None) -> str:
    metrics = record.metrics or {}
    spread = metrics.get("spread", {})
    names = [name for name in metric_lib.SCALAR_METRICS if name in metrics]
    models = (baseline or {}).get("models", {})
    header = [translate("report.metric", lang), translate("report.model", lang)]
    header += [translate(f"baseline.{kind}", lang) for kind in models]
    rows = []
    for name in names:
        value = _number(metrics[name]) + (f" ± {spread[name]:.3f}" if name in spread else "")
        row = [translate(f"metric.{name}", lang), value]
        for kind_metrics in models.values():
            row.append(_number(kind_metrics.get(name)) + (f" ± {kind_metrics['spread'][name]:.3f}"
                                                          if name in kind_metrics.get("spread", {}) else ""))
        rows.append(row)
    note = "report.metrics_folds" if spread else "report.metrics_holdout"
    explain = "".join(f"<li>{_text(f'metric.{name}', lang)}: {_text(f'metric_help.{name}', lang)}</li>" for name in names)
    return (f"<section><h2>{_text('report.metrics', lang)}</h2><p>{_text(note, lang)}</p>"
            f"{_table(header, rows) if rows else _text('card.no_metrics', lang)}<ul>{explain}</ul></section>")


def _groups_section(lang: str, groups: dict | None) -> str:
    if not groups or not groups.get("groups"):
        return f"<section><h2>{_text('report.groups', lang)}</h2><p>{_text('report.no_groups', lang)}</p></section>"
    parts = [f"<section><h2>{_text('report.groups', lang)}</h2>"]
    extra = [("dsm", "fairness.dsm"), ("recall", "fairness.recall"), ("flagged_share", "fairness.flagged_share")]
    for column, rows in groups["groups"].items():
        names = [name for name in metric_lib.SCALAR_METRICS if name in groups["overall"]][:3]
        names += [name for name, _ in extra if name in groups["overall"]]
        header = [column, translate("report.group_rows", lang)]
        header += [translate(f"metric.{name}", lang) if name in metric_lib.SCALAR_METRICS
                   else translate(dict(extra)[name], lang) for name in names]
        table_rows = [[row["group"], row["rows"], *[_number(row.get(name)) for name in names]] for row in rows]
        parts.append(_table(header, table_rows))
    flags = groups.get("flags", [])
    items = "".join(f'<li class="flag">{html.escape(flag_message(flag, lang))}</li>' for flag in flags)
    parts.append(f"<ul>{items}</ul>" if flags else f"<p>{_text('fairness.no_flags', lang)}</p>")
    return "".join(parts) + "</section>"


def _limits_section(lang: str) -> str:
    items = "".join(f"<li>{_text(key, lang)}</li>" for key in
                    ("card.limits_text", "report.limit_population", "report.limit_decisions", "report.limit_drift"))
    return f"<section><h2>{_text('card.limits', lang)}</h2><ul>{items}</ul></section>"


def _settings_section(record: RunRecord, lang: str) -> str:
    train = record.config.get("train", {})
    settings = json.dumps({"train": settings_for_task(train, record.task), "mapping": record.config.get("mapping", {})},
                          ensure_ascii=False, indent=2)
    return (f"<section><h2>{_text('card.settings', lang)}</h2>"
            f"<p>{_text('report.seed', lang, seed=train.get('seed', '?'), run=record.run_id)}</p>"
            f"<pre><code>{html.escape(settings)}</code></pre></section>")


def model_report(record: RunRecord, lang: str, *, baseline: dict | None = None, groups: dict | None = None,
                 generated_at: float | None = None, intended_use: str | None = None) -> str:
    """Write the report of a run as one printable HTML page in ``lang``.

    Args:
        record: A run with metrics.
        lang: ``"zh"`` or ``"en"``.
        baseline: The result of ``edutune_core.baseline.baseline_metrics``, or None.
        groups: The result of ``edutune_core.fairness.group_results``, or None.
        generated_at: Time stamp printed in the report; defaults to now.
        intended_use: What the teacher plans to use the model for, in their own words,
            printed above the generated description.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(generated_at or time.time()))
    title = _text("card.title", lang, name=record.name)
    body = "".join([
        f"<h1>{title}</h1><p class='meta'>{_text('report.meta', lang, date=stamp, data=record.data_name)}</p>",
        _purpose(record, lang, intended_use), _data_summary(record, lang, groups), _metrics_section(record, lang, baseline),
        _groups_section(lang, groups), _limits_section(lang), _settings_section(record, lang),
    ])
    html_lang = "zh-CN" if lang == "zh" else "en"
    return (f"<!DOCTYPE html><html lang='{html_lang}'><head><meta charset='utf-8'><title>{title}</title>"
            f"<style>{_STYLE}</style></head><body>{body}</body></html>")
