"""Building blocks of the training step: device, optimizer, schedule, freezing, LoRA, loss weights."""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import torch

from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError

logger = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    """Resolve ``"auto"`` to CUDA, then Apple MPS, then the CPU.

    Raises:
        ConfigError: The requested device is not present.
    """
    mps_available = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available else "cpu")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": mps_available}
    if not available.get(name, False):
        raise ConfigError("train.device_unavailable", device=name)
    return torch.device(name)


def autocast_context(device: torch.device, precision: str):
    """Return the autocast context of ``precision``; fp32 runs without autocast."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def build_optimizer(parameters, config: TrainConfig, learning_rate: float) -> torch.optim.Optimizer:
    trainable = [parameter for parameter in parameters if parameter.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(trainable, lr=learning_rate, momentum=0.9, weight_decay=config.weight_decay)
    return torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=config.weight_decay)


def schedule_factor(step: int, warmup_steps: int, total_steps: int, kind: str) -> float:
    """Multiplier of the base learning rate at ``step``: linear warm-up, then the decay ``kind``."""
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if kind == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    if kind == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return max(0.0, 1.0 - progress)


def build_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig, total_steps: int):
    warmup_steps = int(total_steps * config.warmup_share)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: schedule_factor(step, warmup_steps, total_steps, config.scheduler))


def class_weight_tensor(targets: np.ndarray, num_classes: int) -> torch.Tensor:
    """Weight each class by ``rows / (classes * rows of the class)``; absent classes get 0."""
    counts = np.bincount(targets, minlength=num_classes).astype(np.float64)
    weights = np.divide(len(targets), num_classes * counts, out=np.zeros_like(counts), where=counts > 0)
    return torch.as_tensor(weights, dtype=torch.float32)


def freeze_text_layers(model, config: TrainConfig) -> None:
    """Fix the embeddings and the first ``config.freeze_layers`` transformer layers.

    Raises:
        ConfigError: The model has no embeddings or encoder layers where BERT-style
            models keep them (``base_model.embeddings``, ``base_model.encoder.layer``).
    """
    if not config.freeze_embeddings and config.freeze_layers == 0:
        return
    base = getattr(model, "base_model", model)
    embeddings = getattr(base, "embeddings", None)
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if embeddings is None or layers is None:
        raise ConfigError("train.freeze_unsupported", model=config.model)
    frozen = [embeddings] if config.freeze_embeddings else []
    frozen += list(layers[: config.freeze_layers])
    for module in frozen:
        for parameter in module.parameters():
            parameter.requires_grad_(False)
    logger.info("froze %s and %d of %d layers", "the embeddings" if config.freeze_embeddings else "no embeddings",
                min(config.freeze_layers, len(layers)), len(layers))


def add_lora(model, config: TrainConfig):
    """Wrap ``model`` with LoRA adapters of rank ``config.lora_rank`` (peft).

    Raises:
        ConfigError: peft cannot find layers to adapt in this model.
    """
    from peft import LoraConfig, TaskType, get_peft_model

    settings = LoraConfig(task_type=TaskType.SEQ_CLS, r=config.lora_rank, lora_alpha=2 * config.lora_rank,
                          lora_dropout=0.1)
    try:
        wrapped = get_peft_model(model, settings)
    except ValueError as error:
        raise ConfigError("train.lora_unsupported", model=config.model, reason=str(error).splitlines()[0]) from error
    trainable = sum(parameter.numel() for parameter in wrapped.parameters() if parameter.requires_grad)
    logger.info("LoRA rank %d: %d trainable parameters", config.lora_rank, trainable)
    return wrapped


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()
