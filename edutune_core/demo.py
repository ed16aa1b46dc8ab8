"""Ready-made demo runs on the bundled samples, sized to train on a laptop CPU in about two minutes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edutune_core.char_model import CHAR_MODEL
from edutune_core.config import TrainConfig
from edutune_core.data import read_table_file
from edutune_core.models import BUNDLED_MODEL
from edutune_core.runner import create_run
from edutune_core.runstore import RunRecord, RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"


@dataclass(frozen=True)
class Demo:
    """One demo: a sample file, how its columns map, and quick settings."""

    file_name: str
    mapping: ColumnMapping
    config: TrainConfig


DEMOS = {
    "essays_en": Demo("essays_en.csv", ColumnMapping(target="score", text_column="essay", problem=REGRESSION),
                      TrainConfig(model=BUNDLED_MODEL, epochs=4, batch_size=8, max_length=128)),
    # The bundled model reads English only; the character model reads Chinese offline.
    "essays_zh": Demo("essays_zh.csv", ColumnMapping(target="得分", text_column="作文", problem=REGRESSION),
                      TrainConfig(model=CHAR_MODEL, epochs=15, batch_size=8, max_length=400)),
    "gradebook_en": Demo("gradebook_en.csv", ColumnMapping(target="final_score", problem=CLASSIFICATION, pass_mark=60,
                                                           ignore_columns=["student_id"]),
                         TrainConfig.for_task(False, epochs=30)),
}


def start_demo(store: RunStore, name: str) -> tuple[RunRecord, dict]:
    """Create the demo's run and return it with the dataset a Data page would have prepared."""
    demo = DEMOS[name]
    frame = read_table_file(SAMPLE_DIR / demo.file_name).frame
    record = create_run(store, frame, demo.mapping, demo.config, data_name=demo.file_name,
                        extra_summary={"demo": name})
    return record, {"frame": frame, "name": demo.file_name, "mapping": demo.mapping}


def example_text(name: str) -> str | None:
    """Return a held-out-looking example for the test box: the first essay of the sample."""
    demo = DEMOS[name]
    if demo.mapping.text_column is None:
        return None
    frame = read_table_file(SAMPLE_DIR / demo.file_name).frame
    return str(frame[demo.mapping.text_column].iloc[-1])


def demo_stage(started: bool, step: int, total_steps: int | None, epochs_done: int, finished: bool) -> str:
    """Name the part of the fine-tuning loop a demo run is in, as a message key."""
    if finished:
        return "demo.stage.done"
    if not started or step == 0:
        return "demo.stage.load"
    if total_steps and step >= total_steps:
        return "demo.stage.evaluate"
    return "demo.stage.train"
