import json

import numpy as np
import pytest

from conftest import make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.learning_curve import CURVE_FILE, SHARES, learning_curve, training_subset
from edutune_core.runner import create_run, load_run_data
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, ColumnMapping, prepare_data


def test_subset_keeps_class_shares():
    frame = make_gradebook(200)
    frame["final"] = np.where(np.arange(200) < 40, 40, 80)
    data = prepare_data(frame, ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60,
                                             ignore_columns=["student_id"]))
    subset = training_subset(data, 0.25, seed=0)
    assert len(subset) == 50
    assert np.bincount(subset.targets).tolist() == [10, 40]
    assert training_subset(data, 1.0, seed=0) is data
    assert subset.row_index.is_monotonic_increasing


def test_curve_of_a_run_is_cached(tmp_path):
    store = RunStore(tmp_path / "home")
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(120), mapping, TrainConfig.for_task(False, epochs=2),
                        data_name="book.csv")
    curve = learning_curve(record)
    train, validation = load_run_data(record)
    assert [point["share"] for point in curve["points"]] == list(SHARES)
    assert [point["rows"] for point in curve["points"]] == [24, 48, 72, 96]
    assert set(curve["points"][0]["baselines"]) == {"linear", "forest", "floor"}
    assert 0 <= curve["points"][-1]["model"]["accuracy"] <= 1
    assert len(train) == 96
    assert len(validation) == 24

    cached = json.loads((record.run_dir / CURVE_FILE).read_text(encoding="utf-8"))
    cached["points"][0]["rows"] = -1
    (record.run_dir / CURVE_FILE).write_text(json.dumps(cached), encoding="utf-8")
    assert learning_curve(record)["points"][0]["rows"] == -1


def test_stopped_curve_is_not_cached(tmp_path):
    import threading

    store = RunStore(tmp_path / "home")
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(60), mapping, TrainConfig.for_task(False, epochs=1, folds=3),
                        data_name="book.csv")
    stop = threading.Event()
    stop.set()
    assert learning_curve(record, stop)["points"] == []
    assert not (record.run_dir / CURVE_FILE).exists()
