"""Model adapters: one interface over a pretrained text model and the table network.

The training loop only needs four things from a model: build batches from prepared data,
run a forward pass, hand out its parameters and save itself. Each adapter provides them
for one kind of input, so the loop in ``edutune_core.training`` is the same for both.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from edutune_core.models import TableEncoder, TabularNet, TabularShape, load_text_model
from edutune_core.tasks import PreparedData

Batch = tuple[dict[str, torch.Tensor], torch.Tensor | None]


class TextAdapter:
    """A Hugging Face sequence-classification model and its tokenizer."""

    kind = "text"

    def __init__(self, tokenizer, model, max_length: int) -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_length = max_length

    @classmethod
    def create(cls, reference: str, num_outputs: int, problem: str, max_length: int) -> TextAdapter:
        tokenizer, model = load_text_model(reference, num_outputs, problem)
        return cls(tokenizer, model, max_length)

    @classmethod
    def load(cls, folder: Path, max_length: int) -> TextAdapter:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        return cls(tokenizer, model, max_length)

    def encode(self, data: PreparedData) -> list[list[int]]:
        """Tokenise every text once; batches are padded later to their own longest text."""
        encoded = self.tokenizer(data.texts, truncation=True, max_length=self.max_length)
        return encoded["input_ids"]

    def batches(self, encoded: list[list[int]], targets: torch.Tensor | None, order: np.ndarray,
                batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            features = [{"input_ids": encoded[i]} for i in positions]
            inputs = self.tokenizer.pad(features, return_tensors="pt")
            yield dict(inputs), None if targets is None else targets[positions]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**inputs).logits

    def save(self, folder: Path) -> dict:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        return {"max_length": self.max_length}


class TableAdapter:
    """The table network with the encoder that turns columns into numbers."""

    kind = "tabular"

    def __init__(self, encoder: TableEncoder, model: TabularNet, shape: TabularShape) -> None:
        self.encoder = encoder
        self.model = model
        self.shape = shape

    @classmethod
    def create(cls, train: PreparedData, num_outputs: int) -> TableAdapter:
        encoder = TableEncoder.fit(train.features)
        shape = TabularShape(inputs=encoder.width, outputs=num_outputs)
        return cls(encoder, TabularNet(shape), shape)

    @classmethod
    def load(cls, folder: Path) -> TableAdapter:
        saved = json.loads((folder / "table_model.json").read_text(encoding="utf-8"))
        shape = TabularShape(**{**saved["shape"], "hidden": tuple(saved["shape"]["hidden"])})
        model = TabularNet(shape)
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return cls(TableEncoder.from_dict(saved["encoder"]), model, shape)

    def encode(self, data: PreparedData) -> torch.Tensor:
        return torch.from_numpy(self.encoder.transform(data.features))

    def batches(self, encoded: torch.Tensor, targets: torch.Tensor | None, order: np.ndarray,
                batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(order), batch_size):
            positions = torch.from_numpy(order[start:start + batch_size])
            yield {"inputs": encoded[positions]}, None if targets is None else targets[positions]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(inputs["inputs"])

    def save(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        state = {name: tensor.contiguous() for name, tensor in self.model.state_dict().items()}
        save_file(state, folder / "model.safetensors")
        shape = {"inputs": self.shape.inputs, "outputs": self.shape.outputs,
                 "hidden": list(self.shape.hidden), "dropout": self.shape.dropout}
        (folder / "table_model.json").write_text(
            json.dumps({"shape": shape, "encoder": self.encoder.to_dict()}, ensure_ascii=False, indent=2),
            encoding="utf-8")
        return {}


def load_adapter(kind: str, folder: Path, max_length: int) -> TextAdapter | TableAdapter:
    """Load a saved adapter of ``kind`` (``"text"`` or ``"tabular"``) from ``folder``."""
    if kind == TextAdapter.kind:
        return TextAdapter.load(folder, max_length)
    return TableAdapter.load(folder)
