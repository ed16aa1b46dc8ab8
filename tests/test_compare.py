import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from edutune_core.compare import aligned_curves, metrics_table, points_csv, settings_table
from edutune_core.config import TrainConfig
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import REGRESSION, ColumnMapping


@pytest.fixture
def two_runs(edutune_home):
    store = RunStore(edutune_home)
    records = []
    for rate in (1e-3, 1e-2):
        config = TrainConfig.for_task(False, epochs=3, learning_rate=rate)
        record = create_run(store, make_gradebook(), ColumnMapping(target="final", problem=REGRESSION), config,
                            data_name="g", name=f"lr {rate:g}")
        records.append(execute_run(store, record.run_id))
    return store, records


def test_overlay_aligns_both_runs(two_runs):
    store, records = two_runs
    by_step = aligned_curves(store, records, "train", "loss", "step")
    assert set(by_step["run"]) == {"lr 0.001", "lr 0.01"}
    assert by_step.groupby("run")["x"].apply(list).tolist() == [list(range(1, 16))] * 2
    by_epoch = aligned_curves(store, records, "validation", "rmse", "epoch")
    assert by_epoch.groupby("run")["x"].apply(list).tolist() == [[1.0, 2.0, 3.0]] * 2
    seconds = aligned_curves(store, records, "train", "loss", "seconds")
    assert seconds.groupby("run")["x"].min().tolist() == [0.0, 0.0]


def test_smoothing_keeps_first_point_and_flattens(two_runs):
    store, records = two_runs
    raw = aligned_curves(store, records[:1], "train", "loss", "step")["value"]
    smooth = aligned_curves(store, records[:1], "train", "loss", "step", smoothing=0.9)["value"]
    assert smooth.iloc[0] == pytest.approx(raw.iloc[0])
    assert smooth.diff().abs().sum() < raw.diff().abs().sum()


def test_settings_diff_names_learning_rate(two_runs):
    _, records = two_runs
    table, differing = settings_table(records)
    assert differing == ["train.learning_rate"]
    assert "train.epochs" in table.index


def test_metrics_ranked_best_first(two_runs):
    _, records = two_runs
    ranked = metrics_table(records)
    assert ranked["rmse"].is_monotonic_increasing
    assert ranked.loc[0, "primary"] == "rmse"


def test_points_csv_has_every_point(two_runs):
    store, records = two_runs
    table = pd.read_csv(pd.io.common.BytesIO(points_csv(store, records)), encoding="utf-8-sig")
    assert len(table) == sum(len(store.points(record.run_id)) for record in records)
    assert set(table["run"]) == {"lr 0.001", "lr 0.01"}


def test_compare_page_renders_in_chinese(two_runs):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "zh"
    at.run()
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "比较训练"
    assert len(at.multiselect(key="compare_runs").value) == 2
