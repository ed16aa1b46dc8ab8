"""Training settings: one dataclass with documented defaults, checked before any model loads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from edutune_core.i18n import ConfigError
from edutune_core.models import BUNDLED_MODEL

# Fine-tuning a pretrained transformer needs a small step; a network trained from
# scratch on table columns needs a larger one.
DEFAULT_TEXT_LEARNING_RATE = 1e-4
DEFAULT_TABULAR_LEARNING_RATE = 1e-3


@dataclass
class TrainConfig:
    """Settings of one training run, saved beside its weights.

    Attributes:
        model: Model reference for text tasks (see ``edutune_core.models``); table
            tasks always use the small table network.
        learning_rate: Step size of the AdamW optimizer. None picks the default for
            the task: 1e-4 for text models, 1e-3 for the table network.
        epochs: Passes over the training rows.
        batch_size: Rows per optimizer step.
        max_length: Maximum text length in tokens. Longer texts are cut at the end.
        seed: Seed for the split, the data order and the new weights.
        validation_share: Share of the rows held out for validation when no
            separate validation file is given.
        weight_decay: AdamW weight decay.
        warmup_share: Share of the steps over which the learning rate rises
            linearly from zero before it decays linearly back to zero.
        folds: Number of cross-validation folds; 0 uses one held-out split of
            ``validation_share`` instead.
        class_weights: Weight each class by the inverse of its share of the
            training rows, so rare classes count as much as common ones.
        optimizer: ``"adamw"`` or ``"sgd"`` (with momentum 0.9).
        scheduler: Learning-rate schedule after warm-up: ``"linear"`` or ``"cosine"``
            decay to zero, or ``"constant"``.
        max_grad_norm: Gradients are clipped to this norm; 0 turns clipping off.
        accumulation_steps: Batches whose gradients are summed before each optimizer
            step, so the effective batch size is ``batch_size * accumulation_steps``.
        early_stopping_patience: Epochs without a better validation metric before
            training stops; 0 turns early stopping off.
        freeze_embeddings: Keep the text model's embedding layer fixed.
        freeze_layers: Number of the text model's first transformer layers kept fixed.
        lora_rank: Rank of LoRA adapters (peft) on the attention layers; 0 trains
            the whole model. Only the adapters and the new head are trained.
        precision: ``"auto"`` (bf16 for pretrained text models where the CPU or GPU
            computes bf16 natively, else fp32), ``"fp32"``, ``"bf16"`` (autocast on
            CPU or GPU) or ``"fp16"`` (autocast with loss scaling, CUDA only). Weights
            stay in fp32. Prediction uses the same precision.
        device: ``"auto"`` (CUDA, then Apple MPS, then CPU), ``"cuda"``, ``"mps"`` or
            ``"cpu"``.
        truncation: What happens to texts longer than ``max_length``: ``"head"``
            keeps the beginning, ``"head_tail"`` the beginning and the end, and
            ``"chunks"`` averages the predictions of overlapping windows.
        lr_range_test: Run a learning-rate range test instead of training a model.
        image_size: Side in pixels of the square that images are resized to (32 – 512).
            224 is what the ImageNet weights were trained on; smaller is faster.
        augmentation: Random changes to training images, as the fields of
            ``edutune_core.images.Augmentation``; None uses its defaults.
        group_by_length: Form each text batch from essays of similar length (in a
            random order of batches), so little of a batch is padding. Off by
            default because essay length predicts the score: on ASAP prompt 3 such
            batches lowered QWK after one epoch from 0.66 to 0.34. Without it the
            rows of each step are still sorted by length before they are cut into
            passes, which saves padding and leaves the gradient unchanged.
        pad_to_multiple_of: Text batches are padded to a multiple of this many
            tokens, which keeps the number of distinct batch shapes small.
        tokens_per_pass: Maximum tokens in one forward and backward pass of a text
            model. A larger batch is split into passes whose gradients are summed.
            None picks 2,048 on the CPU and whole batches on a GPU; 0 always runs
            whole batches.
    """

    model: str = BUNDLED_MODEL
    learning_rate: float | None = None
    epochs: int = 5
    batch_size: int = 16
    max_length: int = 256
    seed: int = 42
    validation_share: float = 0.2
    weight_decay: float = 0.01
    warmup_share: float = 0.1
    folds: int = 0
    class_weights: bool = False
    optimizer: str = "adamw"
    scheduler: str = "linear"
    max_grad_norm: float = 1.0
    accumulation_steps: int = 1
    early_stopping_patience: int = 0
    freeze_embeddings: bool = False
    freeze_layers: int = 0
    lora_rank: int = 0
    precision: str = "auto"
    device: str = "auto"
    truncation: str = "head"
    lr_range_test: bool = False
    image_size: int = 224
    augmentation: dict | None = None
    group_by_length: bool = False
    pad_to_multiple_of: int = 8
    tokens_per_pass: int | None = None

    @classmethod
    def for_task(cls, text_task: bool, **settings) -> TrainConfig:
        """Return the defaults for a text or a table task, updated with ``settings``.

        The table network starts from random weights and its epochs are short, so it
        gets more epochs and larger batches than a pretrained text model.
        """
        defaults = {} if text_task else {"epochs": 30, "batch_size": 32}
        return cls(**{**defaults, **settings})

    def effective_learning_rate(self, text_task: bool) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return DEFAULT_TEXT_LEARNING_RATE if text_task else DEFAULT_TABULAR_LEARNING_RATE

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})

    def problems(self) -> list[ConfigError]:
        """Return every invalid setting at once, so a page can list them together."""
        checks = [
            ("learning_rate", self.learning_rate, self.learning_rate is None or 0 < self.learning_rate <= 1, "(0, 1]"),
            ("epochs", self.epochs, _is_int(self.epochs) and 1 <= self.epochs <= 1000, "1 – 1000"),
            ("batch_size", self.batch_size, _is_int(self.batch_size) and 1 <= self.batch_size <= 4096, "1 – 4096"),
            ("max_length", self.max_length, _is_int(self.max_length) and 8 <= self.max_length <= 8192, "8 – 8192"),
            ("seed", self.seed, _is_int(self.seed) and 0 <= self.seed < 2**32, "0 – 4294967295"),
            ("validation_share", self.validation_share, 0.05 <= self.validation_share <= 0.5, "0.05 – 0.5"),
            ("weight_decay", self.weight_decay, 0 <= self.weight_decay <= 1, "0 – 1"),
            ("warmup_share", self.warmup_share, 0 <= self.warmup_share < 1, "0 – 0.99"),
            ("folds", self.folds, _is_int(self.folds) and (self.folds == 0 or 2 <= self.folds <= 20), "0, 2 – 20"),
        ]
        choices = [("optimizer", self.optimizer, OPTIMIZERS), ("scheduler", self.scheduler, SCHEDULERS),
                   ("precision", self.precision, PRECISIONS), ("device", self.device, DEVICES),
                   ("truncation", self.truncation, TRUNCATIONS)]
        checks += [
            ("max_grad_norm", self.max_grad_norm, 0 <= self.max_grad_norm <= 1000, "0 – 1000"),
            ("accumulation_steps", self.accumulation_steps,
             _is_int(self.accumulation_steps) and 1 <= self.accumulation_steps <= 1024, "1 – 1024"),
            ("early_stopping_patience", self.early_stopping_patience,
             _is_int(self.early_stopping_patience) and 0 <= self.early_stopping_patience <= 100, "0 – 100"),
            ("freeze_layers", self.freeze_layers, _is_int(self.freeze_layers) and 0 <= self.freeze_layers <= 100,
             "0 – 100"),
            ("lora_rank", self.lora_rank, _is_int(self.lora_rank) and 0 <= self.lora_rank <= 256, "0 – 256"),
            ("image_size", self.image_size, _is_int(self.image_size) and 32 <= self.image_size <= 512, "32 – 512"),
            ("pad_to_multiple_of", self.pad_to_multiple_of,
             _is_int(self.pad_to_multiple_of) and 1 <= self.pad_to_multiple_of <= 128, "1 – 128"),
            ("tokens_per_pass", self.tokens_per_pass, self.tokens_per_pass is None
             or (_is_int(self.tokens_per_pass) and 0 <= self.tokens_per_pass <= 10**6), "0 – 1000000"),
        ]
        augmentation = self.augmentation or {}
        checks += [
            (f"augmentation.{name}", augmentation[name], 0 <= augmentation[name] <= high, allowed)
            for name, high, allowed in (("rotation", 45, "0 – 45"), ("contrast", 1, "0 – 1"),
                                        ("perspective", 0.5, "0 – 0.5"))
            if name in augmentation
        ]
        if "crop" in augmentation:
            checks.append(("augmentation.crop", augmentation["crop"], 0.5 <= augmentation["crop"] <= 1, "0.5 – 1"))
        problems = [ConfigError("config.out_of_range", setting=name, value=value, allowed=allowed)
                    for name, value, valid, allowed in checks if not valid]
        problems += [ConfigError("config.unknown_choice", setting=name, value=value, allowed=", ".join(allowed))
                     for name, value, allowed in choices if value not in allowed]
        if self.precision == "fp16" and self.device not in ("cuda", "auto"):
            problems.append(ConfigError("config.fp16_needs_cuda", device=self.device))
        return problems

    def validate(self) -> None:
        """Raise the first invalid setting.

        Raises:
            ConfigError: A setting is outside its allowed range.
        """
        problems = self.problems()
        if problems:
            raise problems[0]


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Settings that only a pretrained text model reads, and those only an image model reads.
TEXT_ONLY_SETTINGS = ("max_length", "truncation", "group_by_length", "pad_to_multiple_of", "tokens_per_pass",
                      "lora_rank", "freeze_embeddings", "freeze_layers")
IMAGE_ONLY_SETTINGS = ("image_size", "augmentation")


def settings_for_task(train: dict, task: str) -> dict:
    """Return the stored training settings without those the task's model never reads.

    Model cards and reports show these, so a table network is not described with a
    max length or a text model's name. The run keeps every setting.
    """
    unused = set(IMAGE_ONLY_SETTINGS)
    if task == "image_classification":
        unused = set(TEXT_ONLY_SETTINGS)
    elif task == "tabular":
        unused |= set(TEXT_ONLY_SETTINGS)
    return {name: value for name, value in train.items() if name not in unused}


OPTIMIZERS = ("adamw", "sgd")
SCHEDULERS = ("linear", "cosine", "constant")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cpu", "cuda", "mps")
TRUNCATIONS = ("head", "head_tail", "chunks")


# Presets shown on the Train page, from a fast demo to a slower, more careful run.
PRESETS: dict[str, dict] = {
    "quick": {"epochs": 4, "batch_size": 8, "max_length": 128},
    "balanced": {"epochs": 5, "batch_size": 16, "max_length": 256},
    "best": {"epochs": 10, "batch_size": 16, "max_length": 512},
}
