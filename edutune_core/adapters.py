"""Model adapters: one interface over a pretrained text model and the table network.

The training loop only needs four things from a model: build batches from prepared data,
run a forward pass, hand out its parameters and save itself. Each adapter provides them
for one kind of input, so the loop in ``edutune_core.training`` is the same for both.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from edutune_core.i18n import ModelError
from edutune_core.models import TableEncoder, TabularNet, TabularShape, load_text_model, transformers_auto_classes
from edutune_core.tasks import PreparedData

Batch = tuple[dict[str, torch.Tensor], torch.Tensor | None]

# Most windows one text is split into; the rest of a very long text is left out.
MAX_CHUNKS = 8


class TextAdapter:
    """A Hugging Face sequence-classification model and its tokenizer.

    Texts longer than ``max_length`` tokens are handled by ``truncation``: ``"head"``
    keeps the beginning, ``"head_tail"`` keeps the first quarter and the end (essays
    often state their conclusion last), and ``"chunks"`` splits the text into
    overlapping windows whose outputs are averaged into one prediction per text.

    Batches are padded to their own longest window, rounded up to a multiple of
    ``pad_to_multiple_of`` (never past ``max_length``). With ``tokens_per_pass`` set,
    ``batches`` splits a batch into consecutive parts of at most that many tokens,
    so one pass keeps fewer activations. The training loop sums their gradients.
    """

    kind = "text"

    def __init__(self, tokenizer, model, max_length: int, truncation: str = "head") -> None:
        self.tokenizer = tokenizer
        self.model = model
        self.max_length = max_length
        self.truncation = truncation
        self.pad_to_multiple_of = 1
        self.tokens_per_pass: int | None = None

    @classmethod
    def create(cls, reference: str, num_outputs: int, problem: str, max_length: int,
               truncation: str = "head") -> TextAdapter:
        tokenizer, model = load_text_model(reference, num_outputs, problem)
        return cls(tokenizer, model, max_length, truncation)

    @classmethod
    def load(cls, folder: Path, max_length: int, truncation: str = "head") -> TextAdapter:
        AutoTokenizer, AutoModelForSequenceClassification = transformers_auto_classes()

        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder)
        return cls(tokenizer, model, max_length, truncation)

    def encode(self, data: PreparedData) -> list[list[list[int]]]:
        """Tokenise every text once into one or more windows of token ids.

        Batches are padded later to their own longest window.
        """
        if self.truncation == "head":
            encoded = self.tokenizer(data.texts, truncation=True, max_length=self.max_length)
            return [[ids] for ids in encoded["input_ids"]]
        pieces = self.tokenizer(data.texts, add_special_tokens=False)["input_ids"]
        return [self._windows(ids) for ids in pieces]

    def _windows(self, ids: list[int]) -> list[list[int]]:
        prefix, suffix = self._special_tokens
        room = self.max_length - len(prefix) - len(suffix)
        if len(ids) <= room:
            windows = [ids]
        elif self.truncation == "head_tail":
            head = room // 4
            windows = [ids[:head] + ids[len(ids) - (room - head):]]
        else:
            stride = max(1, room // 2)
            starts = range(0, max(1, len(ids) - room + stride), stride)
            windows = [ids[start:start + room] for start in starts][:MAX_CHUNKS]
        prefix, suffix = self._special_tokens
        return [prefix + window + suffix for window in windows]

    @functools.cached_property
    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """The ids the tokenizer puts before and after a text, such as [CLS] and [SEP]."""
        content = self.tokenizer("a", add_special_tokens=False)["input_ids"]
        full = self.tokenizer("a")["input_ids"]
        for start in range(len(full) - len(content) + 1):
            if full[start:start + len(content)] == content:
                return full[:start], full[start + len(content):]
        return [], []

    def lengths(self, encoded: list[list[list[int]]]) -> np.ndarray:
        """Tokens of each row, all its windows together."""
        return np.asarray([sum(len(window) for window in windows) for windows in encoded], dtype=np.int64)

    def inference_order(self, encoded: list[list[list[int]]]) -> np.ndarray:
        """Rows from the longest to the shortest, so each prediction batch pads little."""
        return np.argsort(-self.lengths(encoded), kind="stable")

    def batches(self, encoded: list[list[list[int]]], targets: torch.Tensor | None, order: np.ndarray,
                batch_size: int) -> Iterator[Batch]:
        for start in range(0, len(order), batch_size):
            for positions in self._passes(encoded, order[start:start + batch_size]):
                yield self._collate(encoded, positions), None if targets is None else targets[positions]

    def _padded_length(self, longest: int) -> int:
        multiple = self.pad_to_multiple_of
        return max(longest, min(-(-longest // multiple) * multiple, self.max_length))

    def _passes(self, encoded: list[list[list[int]]], positions: np.ndarray) -> Iterator[np.ndarray]:
        """Cut ``positions`` into consecutive parts of at most ``tokens_per_pass`` padded tokens.

        A row is never split, so a part contains at least one row.
        """
        budget = self.tokens_per_pass
        if not budget:
            yield positions
            return
        begin, windows, longest = 0, 0, 0
        for index, position in enumerate(positions):
            rows = encoded[position]
            row_longest = self._padded_length(max(len(window) for window in rows))
            if index > begin and (windows + len(rows)) * max(longest, row_longest) > budget:
                yield positions[begin:index]
                begin, windows, longest = index, 0, 0
            windows += len(rows)
            longest = max(longest, row_longest)
        yield positions[begin:]

    def _collate(self, encoded: list[list[list[int]]], positions: np.ndarray) -> dict[str, torch.Tensor]:
        """Pad the windows of ``positions`` into one batch and record which row owns each window."""
        windows = [window for position in positions for window in encoded[position]]
        owners = [row for row, position in enumerate(positions) for _ in encoded[position]]
        width = self._padded_length(max(len(window) for window in windows))
        input_ids = np.full((len(windows), width), self.tokenizer.pad_token_id or 0, dtype=np.int64)
        attention_mask = np.zeros((len(windows), width), dtype=np.int64)
        left = self.tokenizer.padding_side == "left"
        for row, window in enumerate(windows):
            place = slice(width - len(window), width) if left else slice(0, len(window))
            input_ids[row, place] = window
            attention_mask[row, place] = 1
        return {"input_ids": torch.from_numpy(input_ids), "attention_mask": torch.from_numpy(attention_mask),
                "window_owner": torch.as_tensor(owners)}

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        owners = inputs["window_owner"]
        model_inputs = {name: tensor for name, tensor in inputs.items() if name != "window_owner"}
        logits = self.model(**model_inputs).logits
        rows = int(owners.max()) + 1
        if len(owners) == rows:
            return logits
        # Average the outputs of each text's windows.
        summed = torch.zeros(rows, logits.shape[1], dtype=logits.dtype, device=logits.device)
        summed.index_add_(0, owners, logits)
        counts = torch.bincount(owners, minlength=rows).unsqueeze(1).to(logits.dtype)
        return summed / counts

    def save(self, folder: Path) -> dict:
        self.model.save_pretrained(folder, safe_serialization=True)
        self.tokenizer.save_pretrained(folder)
        return {"max_length": self.max_length, "truncation": self.truncation}


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

    @classmethod
    def warm_start(cls, run_folder: Path, train: PreparedData, num_outputs: int) -> tuple[TableAdapter, dict]:
        """Continue from an earlier table run: its column transform and weights.

        Returns:
            The adapter and a report of the columns that did not match: ``missing``
            (the earlier model used them, this table lacks them; they count as missing
            values) and ``ignored`` (new columns the earlier model cannot use).

        Raises:
            ModelError: The earlier run is not a table model with the same outputs.
        """
        folder = run_folder / "model" if (run_folder / "model").is_dir() else run_folder
        if not (folder / "table_model.json").is_file():
            raise ModelError("model.not_table_run", path=str(run_folder))
        adapter = cls.load(folder)
        if adapter.shape.outputs != num_outputs:
            raise ModelError("model.outputs_differ", path=str(run_folder), before=adapter.shape.outputs,
                             now=num_outputs)
        known = set(adapter.encoder.numeric) | set(adapter.encoder.categorical)
        columns = set(map(str, train.features.columns))
        return adapter, {"missing": sorted(known - columns), "ignored": sorted(columns - known)}

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
        # Column names and reasons only, so the model description lists the columns the model did not use.
        return {"left_out_columns": dict(self.encoder.left_out)}


def load_adapter(kind: str, folder: Path, max_length: int, truncation: str = "head"):
    """Load a saved adapter of ``kind`` (``"text"``, ``"char"`` or ``"tabular"``) from ``folder``."""
    from edutune_core.char_model import CharAdapter
    from edutune_core.images import ImageAdapter

    if kind == ImageAdapter.kind:
        return ImageAdapter.load(folder)
    if kind == TextAdapter.kind:
        return TextAdapter.load(folder, max_length, truncation)
    if kind == CharAdapter.kind:
        return CharAdapter.load(folder, max_length)
    return TableAdapter.load(folder)
