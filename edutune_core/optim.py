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


# Maximum tokens in one forward and backward pass of a text model on the CPU. A step's
# batch is split into passes of at most this many tokens, and their gradients are
# summed. On a 2-core CPU, passes of 2,048 tokens trained MiniLM in bf16 about 1.3
# times faster than whole batches of 16 x 256 tokens, because the working set stays in
# the caches. At 16 x 512 they cut the peak memory from 6.2 to 2.8 GiB. A GPU takes
# whole batches.
# NOTE: the size was tuned on one CPU (AMD EPYC, Zen 4); CPUs with other cache sizes may
# prefer another. TrainConfig.tokens_per_pass overrides it.
CPU_TOKENS_PER_PASS = 2048

# Optimizer steps per length group (TrainConfig.group_by_length). An epoch's rows are
# sorted by length inside groups of this many steps' rows, so the essays of one batch
# have similar lengths and little padding. The batches still come in a random order.
LENGTH_GROUP_STEPS = 16


def bf16_is_fast(device: torch.device) -> bool:
    """Check whether ``device`` computes bf16 natively: a CUDA GPU that supports it, or a CPU with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    checks = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(check is not None and check() for check in checks)


def resolve_precision(precision: str, device: torch.device, text_model: bool) -> str:
    """Turn ``"auto"`` into ``"bf16"`` for a pretrained text model on hardware with fast bf16, else ``"fp32"``.

    Other models (the table network, the character model, images on the CPU) are small
    or unmeasured in bf16 and stay in fp32; images on a GPU use bf16.
    """
    if precision != "auto":
        return precision
    if not bf16_is_fast(device):
        return "fp32"
    return "bf16" if text_model or device.type == "cuda" else "fp32"


def tokens_per_pass(setting: int | None, device: torch.device) -> int | None:
    """Token budget of one pass, or None to run whole batches.

    ``setting`` None picks ``CPU_TOKENS_PER_PASS`` on the CPU and whole batches on a GPU;
    0 runs whole batches anywhere.
    """
    if setting is None:
        return CPU_TOKENS_PER_PASS if device.type == "cpu" else None
    return setting or None


def length_grouped_order(rng: np.random.Generator, lengths: np.ndarray, rows_per_step: int) -> np.ndarray:
    """Draw a random epoch order in which each step's rows have similar lengths.

    The rows are shuffled, cut into groups of ``LENGTH_GROUP_STEPS`` steps and sorted by
    length inside each group. Then the steps cut from all groups are shuffled.
    """
    order = rng.permutation(len(lengths))
    group = rows_per_step * LENGTH_GROUP_STEPS
    grouped = [part[np.argsort(-lengths[part], kind="stable")] for part in np.split(order, range(group, len(order), group))]
    order = np.concatenate(grouped) if grouped else order
    steps = np.split(order, range(rows_per_step, len(order), rows_per_step))
    # A short last step stays last, so every other step has the full batch size.
    short = [steps.pop()] if steps and len(steps[-1]) < rows_per_step else []
    steps = [steps[index] for index in rng.permutation(len(steps))] + short
    return np.concatenate(steps) if steps else order


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
