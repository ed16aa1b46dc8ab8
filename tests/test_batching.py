"""Length-grouped batches, padding to a multiple, passes under a token budget, precision choice, sorted prediction."""

import numpy as np
import pytest
import torch

from conftest import make_essays
from edutune_core import optim
from edutune_core.adapters import TextAdapter
from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError
from edutune_core.tasks import REGRESSION, ColumnMapping, prepare_data
from edutune_core.training import TrainingJob, compute_loss, fit_to_device, predict_outputs

MAPPING = ColumnMapping(target="score", text_column="essay", problem=REGRESSION)


def varied_essays(rows: int):
    """Essays from one sentence to about twenty, so their token counts differ widely."""
    frame = make_essays(rows)
    repeats = np.random.default_rng(3).integers(1, 20, rows)
    frame["essay"] = [" ".join([text] * count) for text, count in zip(frame["essay"], repeats)]
    return frame


def padded_share(lengths: np.ndarray, order: np.ndarray, rows_per_step: int) -> float:
    steps = [lengths[order[start:start + rows_per_step]] for start in range(0, len(order), rows_per_step)]
    return sum(int(step.max()) * len(step) for step in steps) / lengths.sum() - 1


def test_length_grouped_order_pads_little():
    lengths = np.random.default_rng(0).integers(20, 400, 1035)
    grouped = optim.length_grouped_order(np.random.default_rng(1), lengths, 16)
    assert sorted(grouped.tolist()) == list(range(1035))
    random_order = np.random.default_rng(1).permutation(1035)
    assert padded_share(lengths, grouped, 16) < 0.15 < 0.5 < padded_share(lengths, random_order, 16)
    # Batches come in a random order, not from the longest to the shortest.
    firsts = [lengths[grouped[start]] for start in range(0, 1024, 16)]
    assert firsts != sorted(firsts, reverse=True)
    # The short last step (1035 = 64 x 16 + 11) stays last, and other epochs differ.
    assert len(set(grouped[-11:].tolist()) & set(grouped[:-11].tolist())) == 0
    assert not np.array_equal(grouped, optim.length_grouped_order(np.random.default_rng(2), lengths, 16))
    assert np.array_equal(grouped, optim.length_grouped_order(np.random.default_rng(1), lengths, 16))


def test_length_grouped_order_handles_tiny_tables():
    for rows in (0, 1, 5, 16):
        order = optim.length_grouped_order(np.random.default_rng(0), np.arange(rows) + 1, 16)
        assert sorted(order.tolist()) == list(range(rows))


@pytest.fixture
def adapter(tiny_text_model):
    return TextAdapter.load(tiny_text_model, max_length=60)


def test_passes_stay_under_the_token_budget(adapter):
    encoded = adapter.encode(prepare_data(varied_essays(40), MAPPING))
    adapter.pad_to_multiple_of, adapter.tokens_per_pass = 8, 200
    order = adapter.inference_order(encoded)
    parts = [inputs for inputs, _ in adapter.batches(encoded, None, order, 16)]
    widths = [part["input_ids"].shape[1] for part in parts]
    assert all(width % 8 == 0 or width == 60 for width in widths)
    assert all(width <= 60 for width in widths)
    assert all(part["input_ids"].numel() <= 200 or len(part["input_ids"]) == 1 for part in parts)
    assert sum(len(part["input_ids"]) for part in parts) == 40
    assert len(parts) > 40 // 16 + 1  # the budget did split batches
    adapter.tokens_per_pass = None
    assert [len(inputs["input_ids"]) for inputs, _ in adapter.batches(encoded, None, order, 16)] == [16, 16, 8]


def test_padding_keeps_each_text_and_masks_the_rest(adapter):
    encoded = adapter.encode(prepare_data(varied_essays(12), MAPPING))[:6]
    adapter.pad_to_multiple_of = 8
    inputs, _ = next(adapter.batches(encoded, None, np.arange(6), 6))
    for row, windows in enumerate(encoded):
        length = len(windows[0])
        assert inputs["input_ids"][row, :length].tolist() == windows[0]
        assert inputs["attention_mask"][row].sum() == length
        assert (inputs["input_ids"][row, length:] == adapter.tokenizer.pad_token_id).all()


def test_split_passes_keep_the_gradient(tiny_text_model):
    data = prepare_data(varied_essays(16), MAPPING)
    gradients = []
    for budget in (0, 150):
        config = TrainConfig(model=str(tiny_text_model), batch_size=16, max_length=60, precision="fp32",
                             tokens_per_pass=budget, seed=5)
        job = TrainingJob(data, data, config, sink=_NullSink())
        job.setup()
        job.adapter.model.eval()  # no dropout, so both runs compute the same function
        passes = list(job.adapter.batches(job.train_inputs, job.train_targets, np.arange(16), 16))
        assert (len(passes) == 1) == (budget == 0)
        for inputs, targets in passes:
            loss = compute_loss(REGRESSION, job.adapter.forward(inputs).float(), targets)
            (loss * len(targets) / 16).backward()
        gradients.append(torch.cat([p.grad.flatten() for p in job.adapter.model.parameters() if p.grad is not None]))
    assert torch.allclose(gradients[0], gradients[1], atol=1e-5, rtol=1e-4)


def test_sorted_prediction_returns_rows_in_their_own_order(adapter):
    data = prepare_data(varied_essays(30), MAPPING)
    encoded = adapter.encode(data)
    adapter.tokens_per_pass = 300
    assert not np.array_equal(adapter.inference_order(encoded), np.arange(30))
    _, together = predict_outputs(adapter, encoded, REGRESSION, (0.0, 1.0), 8)
    one_by_one = [predict_outputs(adapter, [windows], REGRESSION, (0.0, 1.0), 1)[1][0] for windows in encoded]
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_auto_precision_choice(adapter):
    cpu = torch.device("cpu")
    fast = optim.bf16_is_fast(cpu)
    assert optim.resolve_precision("auto", cpu, text_model=True) == ("bf16" if fast else "fp32")
    assert optim.resolve_precision("auto", cpu, text_model=False) == "fp32"
    assert optim.resolve_precision("fp32", cpu, text_model=True) == "fp32"
    assert optim.resolve_precision("bf16", cpu, text_model=False) == "bf16"
    assert optim.resolve_precision("auto", torch.device("mps"), text_model=True) == "fp32"
    precision = fit_to_device(adapter, TrainConfig(pad_to_multiple_of=16), cpu)
    assert precision == ("bf16" if fast else "fp32")
    assert (adapter.pad_to_multiple_of, adapter.tokens_per_pass) == (16, optim.CPU_TOKENS_PER_PASS)


def test_pass_settings_are_checked():
    assert optim.tokens_per_pass(0, torch.device("cpu")) is None
    assert optim.tokens_per_pass(None, torch.device("cuda")) is None
    assert optim.tokens_per_pass(512, torch.device("cuda")) == 512
    for settings in ({"pad_to_multiple_of": 0}, {"tokens_per_pass": -1}, {"tokens_per_pass": 2.5},
                     {"precision": "bf32"}):
        with pytest.raises(ConfigError):
            TrainConfig(**settings).validate()
    TrainConfig(tokens_per_pass=0, pad_to_multiple_of=1, precision="auto").validate()


class _NullSink:
    def start(self, total_steps):
        pass

    def log_train(self, step, epoch, values):
        pass

    def log_validation(self, step, epoch, values):
        pass

    def log_event(self, kind, detail):
        pass


def test_memory_estimate_counts_one_pass_on_the_cpu():
    from edutune_core.memory import estimate_text_training

    passes = estimate_text_training(TrainConfig(batch_size=16, max_length=512), "cpu")
    whole = estimate_text_training(TrainConfig(batch_size=16, max_length=512, tokens_per_pass=0), "cpu")
    larger_batch = estimate_text_training(TrainConfig(batch_size=64, max_length=512), "cpu")
    fp32 = estimate_text_training(TrainConfig(batch_size=16, max_length=512, tokens_per_pass=0, precision="fp32"),
                                  "cpu")
    assert passes.needed < whole.needed < fp32.needed or not optim.bf16_is_fast(torch.device("cpu"))
    assert passes.needed < whole.needed / 2
    assert larger_batch.needed == passes.needed


def test_step_rows_run_longest_first(tiny_text_model):
    data = prepare_data(varied_essays(32), MAPPING)
    config = TrainConfig(model=str(tiny_text_model), batch_size=16, max_length=60, tokens_per_pass=200, seed=1)
    job = TrainingJob(data, data, config, sink=_NullSink())
    job.setup()
    seen = []
    batches = job.adapter.batches

    def recording_batches(encoded, targets, order, batch_size):
        seen.append(job.train_lengths[order])
        return batches(encoded, targets, order, batch_size)

    job.adapter.batches = recording_batches
    job._optimizer_step(np.arange(16))
    assert len(seen[0]) == 16
    assert list(seen[0]) == sorted(seen[0], reverse=True)


def test_epoch_order_is_random_by_default(tiny_text_model):
    data = prepare_data(varied_essays(32), MAPPING)
    orders = {}
    for grouped in (False, True):
        job = TrainingJob(data, data, TrainConfig(model=str(tiny_text_model), batch_size=8, max_length=128, seed=4,
                                                  group_by_length=grouped), sink=_NullSink())
        job.setup()
        orders[grouped] = job._epoch_order()
    assert np.array_equal(orders[False], np.random.default_rng(4).permutation(32))
    assert padded_share(job.train_lengths, orders[True], 8) < padded_share(job.train_lengths, orders[False], 8)
