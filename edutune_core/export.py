"""Export a finished run as a zip: weights, config, label map, tokenizer, metrics, model card.

The data snapshots are left out on purpose: an export is meant to be shared, and the
training rows are students' data.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from edutune_core.i18n import ModelError, translate
from edutune_core.metrics import SCALAR_METRICS
from edutune_core.runstore import RunRecord

_EXPORTED_FILES = ("metrics.json", "validation_predictions.csv")


def export_run(record: RunRecord) -> bytes:
    """Return a zip archive of the run's model folder and metadata.

    Raises:
        ModelError: The run has no saved model yet.
    """
    model_dir = record.run_dir / "model"
    if not (model_dir / "edutune.json").exists():
        raise ModelError("model.not_a_run", path=str(record.run_dir))
    buffer = io.BytesIO()
    top = f"edutune-{record.run_id}"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                archive.write(path, f"{top}/model/{path.relative_to(model_dir).as_posix()}")
        for name in _EXPORTED_FILES:
            if (record.run_dir / name).exists():
                archive.write(record.run_dir / name, f"{top}/{name}")
        run_info = {"run_id": record.run_id, "name": record.name, "task": record.task, "model": record.model,
                    "data_name": record.data_name, "status": record.status, "config": record.config,
                    "summary": record.summary, "created_at": record.created_at}
        archive.writestr(f"{top}/run.json", json.dumps(run_info, ensure_ascii=False, indent=2))
        archive.writestr(f"{top}/MODEL_CARD.md", model_card(record))
    return buffer.getvalue()


def model_card(record: RunRecord) -> str:
    """Write a short model card in English and Simplified Chinese."""
    sections = []
    for lang in ("en", "zh"):
        metrics = record.metrics or {}
        lines = [f"- {name}: {metrics[name]:.4f}" for name in SCALAR_METRICS if name in metrics]
        sections.append("\n".join([
            f"# {translate('card.title', lang, name=record.name)}",
            "",
            translate("card.intro", lang, task=translate(f"task.{record.task}", lang), model=record.model,
                      data=record.data_name, rows=record.summary.get("rows_used", "?")),
            "",
            f"## {translate('card.metrics', lang)}",
            *(lines or [translate("card.no_metrics", lang)]),
            "",
            f"## {translate('card.settings', lang)}",
            "```json",
            json.dumps(record.config, ensure_ascii=False, indent=2),
            "```",
            "",
            f"## {translate('card.limits', lang)}",
            translate("card.limits_text", lang),
        ]))
    return "\n\n".join(sections) + "\n"


def write_export(record: RunRecord, destination: Path) -> Path:
    destination.write_bytes(export_run(record))
    return destination
