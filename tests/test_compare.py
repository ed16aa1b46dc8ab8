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


def test_lr_range_test_records_and_suggests_inside_range(edutune_home):
    import numpy as np

    from edutune_core.lr_finder import suggest_learning_rate

    store = RunStore(edutune_home)
    config = TrainConfig.for_task(False, lr_range_test=True, batch_size=16)
    record = execute_run(store, create_run(store, make_gradebook(1000), ColumnMapping(target="final",
                                                                                      problem=REGRESSION),
                                           config, data_name="g").run_id)
    result = record.summary["lr_range_test"]
    assert record.status == "completed"
    assert len(result["rates"]) >= 20
    assert result["rates"] == sorted(result["rates"])
    assert min(result["rates"]) <= result["suggested_learning_rate"] <= max(result["rates"])
    recorded = [point for point in store.points(record.run_id) if point["name"] == "learning_rate"]
    assert [point["value"] for point in recorded] == pytest.approx(result["rates"])
    assert not (record.run_dir / "model").exists()

    # A loss that falls around 3e-3 and diverges above 3e-2 is lowest near 2e-2, so the
    # suggestion is a tenth of that.
    rates = np.logspace(-6, 0, 60)
    losses = 1 / (1 + np.exp((np.log10(rates) + 2.5) * 4)) + 0.1 + np.where(rates > 3e-2, 50 * (rates - 3e-2), 0)
    assert 1e-3 <= suggest_learning_rate(rates, losses) <= 5e-3

    # A loss that only rises gives the lowest tested rate, never one outside the range.
    assert suggest_learning_rate(rates, np.linspace(1, 5, 60)) == pytest.approx(rates[0])


def test_find_learning_rate_button_on_train_page(edutune_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.switch_page("pages/train.py").run()
    at.button(key="train_find_lr").click().run()
    import time

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not at.get("success"):
        time.sleep(0.5)
        at.run()
    assert not at.exception, at.exception
    assert at.success[0].value.startswith("Suggested learning rate: ")
    at.button(key=f"use_lr_{at.session_state['run_id']}").click().run()
    suggested = RunStore(edutune_home).get_run(at.session_state["run_id"]).summary["lr_range_test"]
    assert at.number_input(key="train_learning_rate").value == pytest.approx(
        float(f"{suggested['suggested_learning_rate']:.1e}"))


def test_sweep_values_and_grid():
    from edutune_core.i18n import ConfigError
    from edutune_core.sweep import parse_values, sweep_configs

    assert parse_values("learning_rate", "1e-3, 1e-2,1e-3") == [1e-3, 1e-2]
    with pytest.raises(ConfigError) as raised:
        parse_values("batch_size", "8, eight")
    assert '"eight" is not a valid value for batch_size' in raised.value.message("en")
    with pytest.raises(ConfigError) as raised:
        parse_values("epochs", "3")
    assert raised.value.key == "sweep.too_few_values"
    configs = sweep_configs(TrainConfig(), {"learning_rate": [1e-4, 1e-3], "epochs": [1, 2, 3]})
    assert len(configs) == 6
    assert configs[-1][1].learning_rate == 1e-3 and configs[-1][1].epochs == 3
    with pytest.raises(ConfigError) as raised:
        sweep_configs(TrainConfig(), {"learning_rate": [1e-4, 5.0]})
    assert raised.value.key == "config.out_of_range"


def test_two_value_sweep_from_train_page_ranks_runs(edutune_home):
    import time

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="adv_folds").set_value(0).run()
    at.number_input(key="train_epochs").set_value(3).run()
    at.selectbox(key="sweep_setting_1").set_value("learning_rate").run()
    at.text_input(key="sweep_values_1").set_value("1e-3, 1e-2").run()
    at.button(key="sweep_start").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Queued 2 runs. Follow them on the Compare page."
    store = RunStore(edutune_home)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and any(record.is_active for record in store.list_runs()):
        time.sleep(0.5)
    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    ranked = at.dataframe[0].value
    assert sorted(ranked["learning_rate"].tolist()) == [1e-3, 1e-2]
    assert ranked["rmse"].is_monotonic_increasing


@pytest.mark.parametrize("lang, demo, expected", [("en", "gradebook_en", "Done: the best model so far is saved."),
                                                  ("zh", "essays_zh", "完成：目前最好的模型已保存。")])
def test_demo_path_trains_and_explains(edutune_home, lang, demo, expected):
    import time

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = lang
    at.run()
    at.radio(key="demo_choice").set_value(demo).run()
    at.button(key="demo_start").click().run()
    assert not at.exception, at.exception
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        time.sleep(1)
        at.run()
        if any(expected in info.value for info in at.info):
            break
    assert any(expected in info.value for info in at.info), [info.value for info in at.info]
    record = RunStore(edutune_home).get_run(at.session_state["run_id"])
    assert record.status == "completed"
    assert record.summary["demo"] == demo


def test_tensorboard_export_is_readable(two_runs, tmp_path):
    import io
    import zipfile

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from edutune_core.compare import tensorboard_zip

    store, records = two_runs
    zipfile.ZipFile(io.BytesIO(tensorboard_zip(store, records))).extractall(tmp_path / "tb")
    for record in records:
        events = EventAccumulator(str(tmp_path / "tb" / record.run_id))
        events.Reload()
        assert {"train/loss", "train/learning_rate", "validation/rmse"} <= set(events.Tags()["scalars"])
        losses = [event.value for event in events.Scalars("train/loss")]
        expected = [point["value"] for point in store.points(record.run_id)
                    if point["split"] == "train" and point["name"] == "loss"]
        assert losses == pytest.approx(expected, rel=1e-6)


def test_labels_rename_tag_and_filter(two_runs):
    from edutune_core.labels import LabelStore, filter_runs

    store, records = two_runs
    labels = LabelStore(store)
    labels.save(records[0].run_id, name="baseline lr", tags=["term 1", " ", "baseline"], note="first try")
    labels.save(records[1].run_id, name="", tags=["term 1"], note="")
    saved = labels.get_all()
    assert saved[records[0].run_id].tags == ["baseline", "term 1"]
    assert saved[records[0].run_id].note == "first try"
    runs = store.list_runs()
    assert {record.name for record in runs} == {"baseline lr", "lr 0.01"}
    assert [record.run_id for record in filter_runs(runs, saved, tags=["baseline"])] == [records[0].run_id]
    assert len(filter_runs(runs, saved, tags=["term 1"], statuses=["completed"])) == 2
    assert filter_runs(runs, saved, models=["no-such-model"]) == []
