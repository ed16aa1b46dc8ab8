"""An estimate of the peak memory of a training job, checked before it starts.

On the CPU the estimate is the peak resident memory of a process that trains: the
Python, torch and transformers runtime, fp32 weights, gradients and the two AdamW
moment buffers (16 bytes per trainable parameter, 4 per frozen one), and the
activations one pass keeps for its backward pass. A pass contains at most
``tokens_per_pass`` tokens (see ``edutune_core.optim``), so on the CPU the activations
stop growing with the batch size. On a GPU the runtime stays in main memory and a pass
is the whole batch. The constants were fitted to MiniLM runs on a 2-core CPU in bf16
and fp32 at 256 and 512 tokens; ``python bench/run.py`` prints the estimate beside the
measured peak. It reads the model's ``config.json``, so it works for the bundled model
and local folders; for a hub id that is not downloaded yet it returns None.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from edutune_core import optim
from edutune_core.config import TrainConfig
from edutune_core.i18n import ModelError
from edutune_core.models import resolve_model_source

# Bytes one transformer layer keeps for the backward pass, per token: this many per
# hidden unit (projections, feed-forward, norms) plus this many per attention head and
# token of context (scores, softmax, dropout mask). Measured in bf16, and fp32 keeps more.
_ACTIVATION_BYTES_PER_UNIT = 43
_ACTIVATION_BYTES_PER_HEAD_AND_TOKEN = 13
_FP32_ACTIVATION_FACTOR = 1.15
# Resident memory of the Python, torch and transformers runtime with a tokenizer loaded.
_RUNTIME_BYTES = int(1.5 * 2**30)


@dataclass
class MemoryEstimate:
    """Estimated need and the memory available on the training device, in bytes."""

    needed: int
    available: int | None

    @property
    def fits(self) -> bool:
        # Leave a fifth of the free memory for the program itself and the data.
        return self.available is None or self.needed <= 0.8 * self.available


def available_bytes(device_type: str) -> int | None:
    """Free memory of the GPU, or available physical memory for the CPU."""
    if device_type == "cuda":
        free, _total = torch.cuda.mem_get_info()
        return int(free)
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def estimate_text_training(config: TrainConfig, device_type: str = "cpu") -> MemoryEstimate | None:
    """Estimate the memory of fine-tuning ``config.model``; None when its size is unknown."""
    try:
        source = Path(resolve_model_source(config.model))
    except ModelError:
        return None
    config_path = source / "config.json"
    if not config_path.is_file():
        return None
    model = json.loads(config_path.read_text(encoding="utf-8"))
    hidden = model.get("hidden_size") or model.get("dim") or model.get("d_model")
    layers = model.get("num_hidden_layers") or model.get("n_layers") or model.get("num_layers")
    if not hidden or not layers:
        return None
    heads = model.get("num_attention_heads", 12)
    parameters = model.get("vocab_size", 30000) * hidden + layers * 12 * hidden * hidden
    frozen_share = 0.0 if not config.lora_rank else 0.99
    weights = int(parameters * (4 + 12 * (1 - frozen_share)))
    device = torch.device(device_type)
    budget = optim.tokens_per_pass(config.tokens_per_pass, device)
    rows_per_pass = config.batch_size if budget is None else max(1, min(config.batch_size, budget // config.max_length))
    per_token = layers * (hidden * _ACTIVATION_BYTES_PER_UNIT + heads * config.max_length * _ACTIVATION_BYTES_PER_HEAD_AND_TOKEN)
    if optim.resolve_precision(config.precision, device, text_model=True) == "fp32":
        per_token *= _FP32_ACTIVATION_FACTOR
    activations = int(rows_per_pass * config.max_length * per_token)
    runtime = _RUNTIME_BYTES if device_type == "cpu" else 0
    return MemoryEstimate(needed=runtime + weights + activations, available=available_bytes(device_type))
