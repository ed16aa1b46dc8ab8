"""A character-level text model trained from scratch, for machines with no pretrained model.

It needs no download and covers any script, Chinese included, because its vocabulary
is the characters of the training texts. It is not pretrained, so it learns only from
the teacher's rows and usually trails a pretrained model; the pages label it so.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from edutune_core.tasks import PreparedData

CHAR_MODEL = "char-cnn"
_PADDING, _UNKNOWN = 0, 1
_MAX_VOCABULARY = 6000


class CharCNN(nn.Module):
    """Character embeddings, two widths of 1-D convolution, max pooling over the text."""

    def __init__(self, vocabulary_size: int, outputs: int, width: int = 96) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocabulary_size, 64, padding_idx=_PADDING)
        self.convolutions = nn.ModuleList(nn.Conv1d(64, width, kernel, padding=kernel // 2) for kernel in (3, 5))
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(2 * width, outputs)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = (input_ids != _PADDING).unsqueeze(1)
        embedded = self.embedding(input_ids).transpose(1, 2)
        pooled = [torch.relu(layer(embedded)).masked_fill(~mask, -1e4).amax(dim=2) for layer in self.convolutions]
        return self.head(self.dropout(torch.cat(pooled, dim=1)))


class CharAdapter:
    """The adapter interface of ``edutune_core.adapters`` for ``CharCNN``."""

    kind = "char"

    def __init__(self, vocabulary: list[str], model: CharCNN, max_length: int, outputs: int) -> None:
        self.vocabulary = vocabulary
        self.index = {character: position for position, character in enumerate(vocabulary)}
        self.model = model
        self.max_length = max_length
        self.outputs = outputs

    @classmethod
    def create(cls, train: PreparedData, outputs: int, max_length: int) -> CharAdapter:
        counts = Counter(character for text in train.texts for character in text)
        vocabulary = ["<pad>", "<unk>"] + [character for character, _ in counts.most_common(_MAX_VOCABULARY)]
        return cls(vocabulary, CharCNN(len(vocabulary), outputs), max_length, outputs)

    @classmethod
    def load(cls, folder: Path, max_length: int) -> CharAdapter:
        saved = json.loads((folder / "char_model.json").read_text(encoding="utf-8"))
        model = CharCNN(len(saved["vocabulary"]), saved["outputs"])
        model.load_state_dict(load_file(folder / "model.safetensors"))
        return cls(saved["vocabulary"], model, max_length, saved["outputs"])

    def encode(self, data: PreparedData) -> list[list[int]]:
        return [[self.index.get(character, _UNKNOWN) for character in text[: self.max_length]] or [_UNKNOWN]
                for text in data.texts]

    def batches(self, encoded: list[list[int]], targets: torch.Tensor | None, order: np.ndarray,
                batch_size: int) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor | None]]:
        for start in range(0, len(order), batch_size):
            positions = order[start:start + batch_size]
            longest = max(len(encoded[i]) for i in positions)
            ids = torch.full((len(positions), longest), _PADDING, dtype=torch.long)
            for row, position in enumerate(positions):
                ids[row, : len(encoded[position])] = torch.as_tensor(encoded[position])
            yield {"input_ids": ids}, None if targets is None else targets[positions]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(inputs["input_ids"])

    def save(self, folder: Path) -> dict:
        folder.mkdir(parents=True, exist_ok=True)
        save_file({name: tensor.contiguous() for name, tensor in self.model.state_dict().items()},
                  folder / "model.safetensors")
        (folder / "char_model.json").write_text(
            json.dumps({"vocabulary": self.vocabulary, "outputs": self.outputs}, ensure_ascii=False), encoding="utf-8")
        return {"max_length": self.max_length}
