"""A rough estimate of the memory a training job needs, checked before it starts.

The estimate counts fp32 weights, gradients and the two AdamW moment buffers (16 bytes
per trainable parameter, 4 per frozen one) plus the activations kept for the backward
pass of a BERT-style encoder. It reads the model's ``config.json``, so it works for the
bundled model and local folders. For a hub id that is not downloaded yet it returns None.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from edutune_core.config import TrainConfig
from edutune_core.i18n import ModelError
from edutune_core.models import resolve_model_source

# Floats kept per token, per layer and per hidden unit for the backward pass of one
# transformer layer (attention projections, feed-forward, norms): an estimate.
_ACTIVATION_FLOATS_PER_UNIT = 16


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
        import torch

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
    tokens = config.batch_size * config.max_length
    activations = layers * tokens * (hidden * _ACTIVATION_FLOATS_PER_UNIT + heads * config.max_length * 2) * 4
    return MemoryEstimate(needed=weights + activations, available=available_bytes(device_type))
