"""The Results page for image runs and the baseline table of cross-validated runs, with AppTest."""

from conftest import make_gradebook
from test_app import finished_run, open_app, texts
from test_images import mixed_modes_zip
from edutune_core.baseline import baseline_kinds, baseline_metrics
from edutune_core.config import TrainConfig
from edutune_core.images import image_mapping, load_class_folders
from edutune_core.runner import load_all_rows
from edutune_core.tasks import CLASSIFICATION, ColumnMapping


def test_image_run_results_without_baselines(edutune_home, tmp_path):
    images = load_class_folders(mixed_modes_zip(), "homework.zip", tmp_path / "images")
    config = TrainConfig.for_task(False, model="mobilenet_v3_small", epochs=1, batch_size=4, image_size=32)
    record = finished_run(edutune_home, images.frame, image_mapping(), config, name="homework")
    assert record.status == "completed", record.error
    assert baseline_kinds(load_all_rows(record)) == ()
    assert baseline_metrics(record)["models"] == {}

    for lang, message in (("en", "No simple baselines for image tasks"), ("zh", "图片任务没有简单基线模型")):
        at = open_app("pages/results.py", lang=lang)
        assert not at.exception, at.exception
        assert not at.error, [error.value for error in at.error]
        assert message in texts(at)


def test_baseline_table_shows_fold_spread(edutune_home):
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = finished_run(edutune_home, make_gradebook(90), mapping, TrainConfig.for_task(False, epochs=1, folds=3))
    baseline = baseline_metrics(record)
    at = open_app("pages/results.py")
    table = next(frame.value for frame in at.dataframe if "model" in frame.value.columns)
    rows = table.set_index("model")
    mean, spread = record.metrics["accuracy"], record.metrics["spread"]["accuracy"]
    assert rows.loc["fine-tuned model", "accuracy"] == f"{mean:.3f} ± {spread:.3f}"
    forest = baseline["models"]["forest"]
    assert rows.loc["random forest", "accuracy"] == f"{forest['accuracy']:.3f} ± {forest['spread']['accuracy']:.3f}"
    assert rows.loc["random forest", "macro-F1"].count(" ± ") == 1


def test_stopped_cross_validation_warns(edutune_home):
    """A run stopped in its first fold shows one fold's numbers with a warning, beside one fold's baselines."""
    import threading

    from edutune_core.runner import create_run, execute_run
    from edutune_core.runstore import RunStore

    store = RunStore(edutune_home)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    record = create_run(store, make_gradebook(100), mapping, TrainConfig.for_task(False, epochs=3, folds=5),
                        data_name="book.csv")
    stop = threading.Event()
    stop.set()
    record = execute_run(store, record.run_id, stop)
    assert record.status == "stopped"
    assert len(record.metrics["folds"]) == 1
    assert len(baseline_metrics(record)["models"]["linear"]["folds"]) == 1

    for lang, words in (("en", "stopped after 1 of 5 folds"), ("zh", "5 折中的 1 折后被停止")):
        at = open_app("pages/results.py", lang=lang)
        assert not at.exception, at.exception
        assert any(words in warning.value for warning in at.warning), [warning.value for warning in at.warning]
