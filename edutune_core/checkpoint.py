"""Training checkpoints: everything a stopped or interrupted job needs to continue exactly.

A checkpoint folder contains the current and the best weights (safetensors), the optimizer
and schedule states, every random-number state and the position in the epoch's data
order. It is written to a temporary folder and renamed into place, so a crash during the
write leaves the previous checkpoint intact.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from edutune_core.i18n import EduTuneError

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoint"


def _contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu().contiguous() for name, tensor in state.items()}


def write_checkpoint(run_dir: Path, *, model_state: dict, best_state: dict | None, optimizer, scheduler,
                     data_order: np.random.Generator, progress: dict) -> Path:
    """Write a checkpoint for ``run_dir`` atomically and return its folder.

    Raises:
        EduTuneError: ``store.write_failed`` when a file cannot be written (a full disk,
            a read-only folder). The partial folder is removed first, so that the space
            it took is free again for recording the failure.
    """
    temporary = run_dir / f"{CHECKPOINT_DIR}.tmp"
    try:
        return _write_checkpoint(run_dir, temporary, model_state=model_state, best_state=best_state,
                                 optimizer=optimizer, scheduler=scheduler, data_order=data_order, progress=progress)
    except (OSError, RuntimeError, SafetensorError) as error:
        # torch.save reports a failed write as a RuntimeError, safetensors as a SafetensorError.
        reason = _write_failure_reason(error, run_dir)
        shutil.rmtree(temporary, ignore_errors=True)
        logger.error("writing the checkpoint of %s failed: %s", run_dir, reason)
        raise EduTuneError("store.write_failed", folder=str(run_dir), reason=reason) from error


# Below this many free bytes, a failed write is reported as a full disk.
_FULL_DISK_BYTES = 2**20


def _write_failure_reason(error: Exception, folder: Path) -> str:
    """Return the system's reason for a failed write, naming a full disk that torch's message hides."""
    if getattr(error, "strerror", None):
        return error.strerror
    try:
        full = shutil.disk_usage(folder).free < _FULL_DISK_BYTES
    except OSError:
        full = False
    return os.strerror(errno.ENOSPC) if full else str(error)[:300]


def _write_checkpoint(run_dir: Path, temporary: Path, *, model_state: dict, best_state: dict | None, optimizer,
                      scheduler, data_order: np.random.Generator, progress: dict) -> Path:
    final = run_dir / CHECKPOINT_DIR
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)

    save_file(_contiguous(model_state), temporary / "model.safetensors")
    if best_state is not None:
        save_file(_contiguous(best_state), temporary / "best.safetensors")
    torch.save({
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "numpy_rng": np.random.get_state(),
        "python_rng": random.getstate(),
        "data_order": data_order.bit_generator.state,
    }, temporary / "training_state.pt")
    (temporary / "progress.json").write_text(json.dumps(progress), encoding="utf-8")

    # Swap the folders so that a complete checkpoint exists at every moment.
    previous = run_dir / f"{CHECKPOINT_DIR}.old"
    shutil.rmtree(previous, ignore_errors=True)
    if final.exists():
        final.rename(previous)
    temporary.rename(final)
    shutil.rmtree(previous, ignore_errors=True)
    logger.info("checkpoint written at step %s", progress.get("step"))
    return final


def find_checkpoint(run_dir: Path) -> Path | None:
    """Return the newest complete checkpoint folder, also after a crash between two renames."""
    for name in (CHECKPOINT_DIR, f"{CHECKPOINT_DIR}.old"):
        folder = run_dir / name
        if (folder / "progress.json").exists() and (folder / "training_state.pt").exists():
            return folder
    return None


def read_checkpoint(folder: Path) -> tuple[dict, dict | None, dict, dict]:
    """Return the model state, the best state (or None), the training state and the progress."""
    model_state = load_file(folder / "model.safetensors")
    best_path = folder / "best.safetensors"
    best_state = load_file(best_path) if best_path.exists() else None
    # The file was written by this program. weights_only stays off because it contains
    # NumPy and Python random states, which are not tensors.
    training_state = torch.load(folder / "training_state.pt", weights_only=False)
    progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
    return model_state, best_state, training_state, progress


def restore_random_states(training_state: dict) -> None:
    torch.set_rng_state(training_state["torch_rng"])
    if training_state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(training_state["cuda_rng"])
    np.random.set_state(training_state["numpy_rng"])
    random.setstate(training_state["python_rng"])
