"""Budgeted search with Optuna: ranges, the driver thread, stop and resume, and the Train page form."""

import time

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.i18n import ConfigError
from edutune_core.jobs import JobManager
from edutune_core.runstore import RunStore
from edutune_core.search import (
    MAX_TRIALS,
    SearchDrivers,
    _load_study,
    check_search,
    create_search,
    parse_space,
    search_info,
)
from edutune_core.sweep import ranked_sweep, sweep_runs
from edutune_core.tasks import REGRESSION, ColumnMapping

SPACE_TEXT = {"learning_rate": "1e-3, 3e-2", "batch_size": "16, 32", "epochs": "1, 3"}
MAPPING = ColumnMapping(target="final", problem=REGRESSION)


def test_parse_space_reads_each_kind():
    space = parse_space({**SPACE_TEXT, "freeze_layers": "0, 2"})
    assert space["learning_rate"] == FloatDistribution(1e-3, 3e-2, log=True)
    assert space["batch_size"] == CategoricalDistribution([16, 32])
    assert space["epochs"] == IntDistribution(1, 3)
    assert space["freeze_layers"] == IntDistribution(0, 2)


def test_parse_space_skips_empty_settings():
    assert list(parse_space({"learning_rate": "1e-4, 1e-2", "epochs": " ", "batch_size": ""})) == ["learning_rate"]


@pytest.mark.parametrize("texts, key", [
    ({"epochs": "5, 2"}, "search.min_above_max"),
    ({"learning_rate": "0, 1e-2"}, "search.not_positive"),
    ({"learning_rate": "-1e-3, 1e-2"}, "search.not_positive"),
    ({"dropout": "0.1, 0.3"}, "search.unknown_setting"),
    ({"epochs": "2"}, "search.bad_range"),
    ({"epochs": "1, 2, 3"}, "search.bad_range"),
    ({"batch_size": "16, big"}, "search.bad_value"),
    ({"learning_rate": "", "epochs": ""}, "search.no_ranges"),
])
def test_bad_ranges_raise_bilingual_errors(texts, key):
    with pytest.raises(ConfigError) as raised:
        parse_space(texts)
    assert raised.value.key == key
    english, chinese = raised.value.message("en"), raised.value.message("zh")
    assert english != key
    assert chinese != english


def test_min_above_max_message_names_values():
    with pytest.raises(ConfigError) as raised:
        parse_space({"epochs": "5, 2"})
    assert "minimum 5" in raised.value.message("en")
    assert "maximum 2" in raised.value.message("en")
    assert "epochs" in raised.value.message("zh")


@pytest.mark.parametrize("budget", [0, -1, MAX_TRIALS + 1, 2.5, True])
def test_bad_budget_is_rejected(budget):
    with pytest.raises(ConfigError) as raised:
        check_search(TrainConfig(), parse_space(SPACE_TEXT), budget)
    assert raised.value.key == "search.bad_budget"


def test_range_end_outside_setting_limits_is_rejected():
    with pytest.raises(ConfigError) as raised:
        check_search(TrainConfig(), parse_space({"learning_rate": "1e-3, 5"}), 3)
    assert raised.value.key == "config.out_of_range"
    with pytest.raises(ConfigError) as raised:
        check_search(TrainConfig(), parse_space({"batch_size": "0, 16"}), 3)
    assert raised.value.key == "config.out_of_range"


@pytest.fixture
def services(edutune_home):
    store = RunStore(edutune_home)
    manager = JobManager(store)
    drivers = SearchDrivers(store, manager)
    yield store, manager, drivers
    drivers.shutdown()
    manager.shutdown()


def new_search(store, budget):
    base = TrainConfig.for_task(False, seed=7)
    return create_search(store, make_gradebook(120), MAPPING, base, parse_space(SPACE_TEXT), budget, data_name="g")


def wait_until(condition, timeout=90.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_search_runs_budget_inside_ranges(services):
    store, _, drivers = services
    search_id = new_search(store, 3)
    assert drivers.start(search_id)
    drivers.join(search_id, timeout=120)
    assert not drivers.is_running(search_id)

    runs = sweep_runs(store.list_runs(), search_id)
    assert len(runs) == 3
    for record in runs:
        values = record.summary["sweep"]["values"]
        settings = record.config["train"]
        assert record.status == "completed"
        assert 1e-3 <= settings["learning_rate"] <= 3e-2
        assert settings["batch_size"] in (16, 32)
        assert 1 <= settings["epochs"] <= 3
        assert settings["seed"] == 7
        assert values == {name: settings[name] for name in ("learning_rate", "batch_size", "epochs")}

    info = search_info(store, search_id)
    assert (info.finished, info.unfinished, info.budget) == (3, 0, 3)
    assert info.metric == "rmse"
    assert not info.maximize
    ranked = ranked_sweep(runs)
    assert ranked["rmse"].is_monotonic_increasing
    assert info.best_value == pytest.approx(ranked["rmse"].iloc[0])
    study = _load_study(store, search_id)
    told = sorted(trial.value for trial in study.trials)
    assert told == pytest.approx(sorted(record.metrics["rmse"] for record in runs))
    assert not drivers.start(search_id), "a search whose budget is used does not start again"


def test_stop_and_resume_after_restart_fills_budget(edutune_home):
    store = RunStore(edutune_home)
    manager = JobManager(store)
    drivers = SearchDrivers(store, manager)
    search_id = new_search(store, 3)
    drivers.start(search_id)
    wait_until(lambda: search_info(store, search_id).finished >= 1
               and len(sweep_runs(store.list_runs(), search_id)) >= 2)
    assert drivers.stop(search_id)
    drivers.join(search_id, timeout=30)
    manager.shutdown()
    assert not drivers.is_running(search_id)
    stopped = search_info(store, search_id)
    assert stopped.finished < 3
    first_runs = {record.run_id: record for record in sweep_runs(store.list_runs(), search_id)}
    finished_before = {record.run_id for record in first_runs.values() if record.status == "completed"}

    # A new process: new store, job manager and drivers over the same folder.
    store = RunStore(edutune_home)
    manager = JobManager(store)
    drivers = SearchDrivers(store, manager)
    try:
        assert drivers.start(search_id)
        drivers.join(search_id, timeout=120)
        runs = sweep_runs(store.list_runs(), search_id)
        assert len(runs) == 3
        assert sorted(record.summary["sweep"]["trial"] for record in runs) == [0, 1, 2]
        assert all(record.status == "completed" for record in runs)
        for run_id in finished_before:
            started = [event for event in store.events(run_id) if event["kind"] == "started"]
            assert len(started) == 1, f"finished run {run_id} was trained again"
        study = _load_study(store, search_id)
        assert [trial.state for trial in study.trials] == [TrialState.COMPLETE] * 3
        assert search_info(store, search_id).done
    finally:
        drivers.shutdown()
        manager.shutdown()


def test_failed_run_counts_against_budget(services, monkeypatch):
    store, _, drivers = services
    from edutune_core.training import TrainingJob

    def broken_setup(self):
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(TrainingJob, "setup", broken_setup)
    search_id = new_search(store, 2)
    drivers.start(search_id)
    drivers.join(search_id, timeout=60)
    study = _load_study(store, search_id)
    assert [trial.state for trial in study.trials] == [TrialState.FAIL] * 2
    assert [record.status for record in sweep_runs(store.list_runs(), search_id)] == ["failed"] * 2


def test_classification_search_maximises(edutune_home):
    store = RunStore(edutune_home)
    frame = make_gradebook(60)
    search_id = create_search(store, frame, ColumnMapping(target="class"), TrainConfig.for_task(False),
                              parse_space({"epochs": "1, 2"}), 2, data_name="g")
    info = search_info(store, search_id)
    assert info.metric == "macro_f1"
    assert info.maximize


def test_unknown_search_raises_key_error(edutune_home):
    with pytest.raises(KeyError):
        search_info(RunStore(edutune_home), "nosuchid")


def test_search_form_on_train_page_starts_search(edutune_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "en"
    at.run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.switch_page("pages/train.py").run()
    at.selectbox(key="adv_folds").set_value(0).run()
    at.radio(key="sweep_mode").set_value("search").run()
    at.text_input(key="search_epochs").set_value("3, 1").run()
    at.button(key="search_start").click().run()
    assert not at.exception, at.exception
    assert "minimum 3 is above the maximum 1" in at.error[0].value

    at.text_input(key="search_epochs").set_value("1, 2").run()
    at.text_input(key="search_learning_rate").set_value("1e-3, 1e-2").run()
    at.number_input(key="search_budget").set_value(5000).run()
    at.button(key="search_start").click().run()
    assert not at.exception, at.exception
    assert "5000" in at.error[0].value
    assert at.number_input(key="search_budget").value == 5000

    at.number_input(key="search_budget").set_value(2).run()
    at.button(key="search_start").click().run()
    assert not at.exception, at.exception
    assert at.success[0].value == "Search started: up to 2 runs. Follow them on the Compare page."
    store = RunStore(edutune_home)
    search_id = at.session_state["compare_sweep"]
    wait_until(lambda: search_info(store, search_id).done, timeout=120)
    runs = sweep_runs(store.list_runs(), search_id)
    assert len(runs) == 2

    at.switch_page("pages/compare.py").run()
    assert not at.exception, at.exception
    ranked = at.dataframe[0].value
    assert len(ranked) == 2
    assert set(ranked.columns) >= {"learning_rate", "epochs", "rmse"}
    assert any("2 of 2 runs finished" in caption.value for caption in at.caption)


def test_search_page_text_in_chinese(edutune_home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state["lang"] = "zh"
    at.run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_file").set_value("sample:gradebook_en.csv").run()
    at.switch_page("pages/train.py").run()
    at.radio(key="sweep_mode").set_value("search").run()
    at.text_input(key="search_learning_rate").set_value("0, 1e-2").run()
    at.button(key="search_start").click().run()
    assert not at.exception, at.exception
    assert "学习率" in at.error[0].value or "learning_rate" in at.error[0].value
    assert "正数" in at.error[0].value


def test_search_runs_belong_to_its_user(services):
    store, _, drivers = services
    search_id = new_search(store.for_user("alice"), 1)
    assert drivers.start(search_id)
    drivers.join(search_id, timeout=120)

    runs = sweep_runs(store.list_runs(), search_id)
    assert [record.owner for record in runs] == ["alice"]
    assert sweep_runs(store.for_user("bob").list_runs(), search_id) == []
    assert len(sweep_runs(store.for_user("alice").list_runs(), search_id)) == 1
