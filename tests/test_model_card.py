"""Model cards and reports describe the model that was trained, with the settings it reads."""

import json

import pytest

from conftest import make_essays, make_gradebook
from edutune_core.config import TrainConfig, settings_for_task
from edutune_core.export import model_card
from edutune_core.models import TABULAR_MODEL
from edutune_core.report import model_report
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping


def test_table_run_card_names_the_table_network(tmp_path):
    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"])
    record = execute_run(store, create_run(store, make_gradebook(60), mapping, TrainConfig.for_task(False, epochs=2),
                                           data_name="book.csv").run_id)
    assert record.config["train"]["model"] == TABULAR_MODEL

    card = model_card(record)
    assert "a small network on the table's columns" in card
    assert "fine-tuned" not in card
    assert "all-MiniLM" not in card
    assert '"max_length"' not in card
    assert '"learning_rate"' in card
    for lang in ("en", "zh"):
        assert '"max_length"' not in model_report(record, lang)


@pytest.mark.parametrize("task, kept, dropped", [
    ("essay_scoring", ["max_length", "lora_rank", "epochs"], ["image_size"]),
    ("tabular", ["epochs", "batch_size"], ["max_length", "lora_rank", "image_size"]),
    ("image_classification", ["image_size", "augmentation", "epochs"], ["max_length", "tokens_per_pass"]),
])
def test_settings_for_task(task, kept, dropped):
    shown = settings_for_task(TrainConfig().to_dict(), task)
    for name in kept:
        assert name in shown, name
    for name in dropped:
        assert name not in shown, name


def test_text_run_card_keeps_text_settings(tmp_path, tiny_text_model):
    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION, ignore_columns=["essay_id"])
    config = TrainConfig.for_task(True, model=str(tiny_text_model), epochs=1, max_length=24)
    record = create_run(store, make_essays(40), mapping, config, data_name="essays.csv")
    card = model_card(record)
    assert "fine-tuned with EduTune from" in card
    assert json.dumps(str(tiny_text_model)) in card
    assert '"max_length": 24' in card
