"""Export a finished run as a zip, and import such a zip as a new run.

An export contains the weights (safetensors), config, label map, tokenizer, metrics,
validation predictions and a model card. The data snapshots and the checkpoint are left
out on purpose: an export is meant to be shared, the training rows are students' data,
and a checkpoint contains pickled training state.

An import trusts nothing in the zip. ``import_run`` checks every entry before it writes a
byte (paths, links, encryption, counts, sizes, compression ratio, file types), unpacks
into a staging folder while counting the real bytes, loads the model once, and only then
records a new run with a new id.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import stat
import uuid
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from edutune_core.config import settings_for_task
from edutune_core.i18n import EduTuneError, ModelError, translate
from edutune_core.metrics import SCALAR_METRICS
from edutune_core.models import TABULAR_MODEL
from edutune_core.runstore import COMPLETED, RunRecord, RunStore
from edutune_core.security import SecurityError, clean_display_name, is_inside, safe_relative_path
from edutune_core.tasks import ESSAY_SCORING, TABULAR, TEXT_CLASSIFICATION, TEXT_REGRESSION

logger = logging.getLogger(__name__)

_EXPORTED_FILES = ("metrics.json", "validation_predictions.csv")

# Import limits. An export of the bundled model is about 90 MB packed, and one of a
# 110-million-parameter model an estimated 400 MB. The limits leave room for those and
# bound memory and disk use.
MAX_IMPORT_BYTES = 1024 * 2**20
MAX_UNPACKED_BYTES = 4 * 2**30
MAX_IMPORT_FILES = 200
MAX_COMPRESSION_RATIO = 100
# Small files, such as a config of repeated spaces, may compress far better than any
# model, so the ratio is checked only from this size up. They still count to the total.
_RATIO_MIN_BYTES = 2**20
_MAX_JSON_BYTES = 16 * 2**20
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz")
_MODEL_SUFFIXES = (".json", ".safetensors", ".txt", ".model")
_TOP_FILES = ("run.json", "MODEL_CARD.md", *_EXPORTED_FILES)
_ALLOWED = "model/*.json, model/*.safetensors, model/*.txt, model/*.model, " + ", ".join(_TOP_FILES)
_TASKS = (ESSAY_SCORING, TEXT_CLASSIFICATION, TEXT_REGRESSION, TABULAR)


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
            # A link could pull in a file from outside the run, so links are left out.
            if path.is_file() and not path.is_symlink():
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
            translate("card.intro_table" if record.task == TABULAR and record.model == TABULAR_MODEL else "card.intro",
                      lang, task=translate(f"task.{record.task}", lang), model=record.model,
                      data=record.data_name, rows=record.summary.get("rows_used", "?")),
            "",
            f"## {translate('card.metrics', lang)}",
            *(lines or [translate("card.no_metrics", lang)]),
            "",
            f"## {translate('card.settings', lang)}",
            "```json",
            json.dumps({**record.config, "train": settings_for_task(record.config.get("train", {}), record.task)},
                       ensure_ascii=False, indent=2),
            "```",
            "",
            f"## {translate('card.limits', lang)}",
            translate("card.limits_text", lang),
        ]))
    return "\n\n".join(sections) + "\n"


def write_export(record: RunRecord, destination: Path) -> Path:
    destination.write_bytes(export_run(record))
    return destination



class RunImportError(EduTuneError):
    """A zip that cannot be imported as a run: not an export, unsafe, too large or unusable."""


def import_run(store: RunStore, data: bytes, file_name: str = "run.zip") -> RunRecord:
    """Check an exported run's zip, unpack it into a new run folder and record it as completed.

    Args:
        store: The run store that receives the run.
        data: The zip's bytes.
        file_name: The uploaded file's name, for messages only.

    Returns:
        The new run, with a new id.

    Raises:
        RunImportError: The zip is too large, damaged, not an EduTune export, contains a
            pickled file, a checkpoint, a link or another unexpected entry, or its model
            does not load.
        SecurityError: An entry's path would leave the run folder.
        EduTuneError: ``store.write_failed`` when the runs folder cannot be written.
    """
    shown_name = clean_display_name(file_name, 200, fallback="?")
    if len(data) > MAX_IMPORT_BYTES:
        raise RunImportError("import.too_large", file=shown_name, size_mb=f"{len(data) / 2**20:.1f}",
                             max_mb=MAX_IMPORT_BYTES // 2**20)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as error:
        raise RunImportError("import.not_a_zip", file=shown_name) from error
    staging = store.runs_dir / f".import-{uuid.uuid4().hex}"
    with archive:
        members = _checked_members(archive)
        try:
            _unpack(archive, members, staging)
            description, run_info, metrics = _read_descriptions(staging)
            _check_model_loads(staging)
            record = _record_import(store, staging, description, run_info, metrics)
        except OSError as error:
            raise EduTuneError("store.write_failed", folder=str(store.runs_dir),
                               reason=error.strerror or str(error)) from error
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    logger.info("imported %s as run %s", shown_name, record.run_id)
    return record


def _checked_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, PurePosixPath]]:
    """Check every entry of the archive and return the files with their paths below the top folder."""
    infos = archive.infolist()
    files = [info for info in infos if not info.is_dir()]
    if len(files) > MAX_IMPORT_FILES:
        raise RunImportError("import.too_many_files", count=len(files), maximum=MAX_IMPORT_FILES)
    declared = sum(info.file_size for info in files)
    if declared > MAX_UNPACKED_BYTES:
        raise RunImportError("import.unpacked_too_large", size_mb=f"{declared / 2**20:.0f}",
                             max_mb=MAX_UNPACKED_BYTES // 2**20)
    roots: set[str] = set()
    members = []
    for info in infos:
        path = safe_relative_path(info.filename)
        roots.add(path.parts[0])
        _check_entry_kind(info)
        if not info.is_dir():
            members.append((info, path))
    if len(roots) != 1:
        raise RunImportError("import.one_folder", names=", ".join(sorted(roots)[:5]))
    checked = [(info, PurePosixPath(*path.parts[1:])) for info, path in members]
    for info, relative in checked:
        _check_layout(relative, info.filename)
    return checked


def _check_entry_kind(info: zipfile.ZipInfo) -> None:
    name = clean_display_name(info.filename, 200, fallback="?")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise RunImportError("import.symlink", name=name)
    if info.flag_bits & 0x1:
        raise RunImportError("import.encrypted", name=name)
    ratio = info.file_size / max(info.compress_size, 1)
    if info.file_size >= _RATIO_MIN_BYTES and ratio > MAX_COMPRESSION_RATIO:
        raise RunImportError("import.compression_ratio", name=name, ratio=f"{ratio:.0f}",
                             maximum=MAX_COMPRESSION_RATIO)


def _check_layout(relative: PurePosixPath, original: str) -> None:
    """Accept only the files an export writes; name the first other file in the error."""
    name = clean_display_name(original, 200, fallback="?")
    if any(part.lower().startswith("checkpoint") for part in relative.parts):
        raise RunImportError("import.checkpoint_rejected", name=name)
    suffix = relative.suffix.lower()
    if suffix in _PICKLE_SUFFIXES:
        raise RunImportError("import.pickle_rejected", name=name)
    in_model = len(relative.parts) >= 2 and relative.parts[0] == "model" and suffix in _MODEL_SUFFIXES
    if not in_model and relative.as_posix() not in _TOP_FILES:
        raise RunImportError("import.unexpected_file", name=name, allowed=_ALLOWED)


def _unpack(archive: zipfile.ZipFile, members: list[tuple[zipfile.ZipInfo, PurePosixPath]], staging: Path) -> None:
    """Write the members below ``staging``, counting the bytes really unpacked."""
    staging.mkdir(parents=True)
    written_total = 0
    for info, relative in members:
        target = staging / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if not is_inside(target, staging):
            raise SecurityError("security.unsafe_path", name=clean_display_name(info.filename, 200, fallback="?"))
        written = 0
        try:
            with archive.open(info) as source, open(target, "xb") as sink:
                while chunk := source.read(2**20):
                    written += len(chunk)
                    written_total += len(chunk)
                    if written > info.file_size:
                        raise RunImportError("import.size_mismatch", name=clean_display_name(info.filename, 200))
                    if written_total > MAX_UNPACKED_BYTES:
                        raise RunImportError("import.unpacked_too_large", size_mb=f"{written_total / 2**20:.0f}",
                                             max_mb=MAX_UNPACKED_BYTES // 2**20)
                    sink.write(chunk)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise RunImportError("import.damaged", name=clean_display_name(info.filename, 200),
                                 reason=str(error)[:200]) from error


def _read_json(path: Path, name: str, required: bool) -> dict | None:
    if not path.exists():
        if required:
            raise RunImportError("import.missing_file", name=name)
        return None
    if path.stat().st_size > _MAX_JSON_BYTES:
        raise RunImportError("import.bad_json", name=name, reason=f"larger than {_MAX_JSON_BYTES // 2**20} MB")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RunImportError("import.bad_json", name=name, reason=str(error)[:200]) from error
    if not isinstance(value, dict):
        raise RunImportError("import.bad_json", name=name, reason="not a JSON object")
    return value


def _read_descriptions(staging: Path) -> tuple[dict, dict, dict | None]:
    """Return the model description, the run information and the metrics of an unpacked export."""
    description = _read_json(staging / "model" / "edutune.json", "model/edutune.json", required=True)
    missing = [key for key in ("adapter", "task", "mapping", "config") if key not in description]
    if missing:
        raise RunImportError("import.bad_json", name="model/edutune.json", reason=f"missing {', '.join(missing)}")
    if description["task"] not in _TASKS:
        raise RunImportError("import.bad_json", name="model/edutune.json",
                             reason=f"unknown task {clean_display_name(description['task'], 60)}")
    if not any((staging / "model").rglob("*.safetensors")):
        raise RunImportError("import.no_weights")
    run_info = _read_json(staging / "run.json", "run.json", required=False) or {}
    metrics = _read_json(staging / "metrics.json", "metrics.json", required=False)
    return description, run_info, metrics


def _check_model_loads(staging: Path) -> None:
    from edutune_core.predict import Predictor

    try:
        Predictor(staging)
    except Exception as error:  # noqa: BLE001 - any failure to load means the model is unusable
        logger.warning("imported model does not load: %s: %s", type(error).__name__, error)
        reason = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise RunImportError("import.model_unusable", reason=reason) from error


def _record_import(store: RunStore, staging: Path, description: dict, run_info: dict,
                   metrics: dict | None) -> RunRecord:
    """Record the unpacked export as a new completed run and move its files into the run folder."""
    summary = run_info.get("summary") if isinstance(run_info.get("summary"), dict) else {}
    summary = {"problem": description["mapping"].get("problem"), "labels": description.get("labels"),
               "score_points": description.get("score_points"), **summary}
    model = run_info.get("model") or description["config"].get("model") or "?"
    record = store.create_run(
        name=clean_display_name(run_info.get("name") or description["task"], fallback="imported run"),
        task=description["task"], model=clean_display_name(model, 200, fallback="?"),
        data_name=clean_display_name(run_info.get("data_name") or "-", fallback="-"),
        config={"train": description["config"], "mapping": description["mapping"]}, summary=summary)
    try:
        for child in staging.iterdir():
            child.rename(record.run_dir / child.name)
    except OSError:
        # A half-moved run would look complete in the history, so it is removed instead.
        store.delete_run(record.run_id)
        shutil.rmtree(record.run_dir, ignore_errors=True)
        raise
    if metrics is not None:
        store.set_metrics(record.run_id, metrics)
    store.set_status(record.run_id, COMPLETED)
    store.add_event(record.run_id, "imported",
                    {"source_run_id": clean_display_name(run_info.get("run_id") or "-", 60, fallback="-")})
    return store.get_run(record.run_id)
