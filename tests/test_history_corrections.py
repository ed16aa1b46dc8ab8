"""The History page lists which training labels of a run came from teachers' corrections."""

import pandas as pd

from conftest import make_essays, make_gradebook
from test_app import open_app, texts
from edutune_core.config import TrainConfig
from edutune_core.corrections import CORRECTIONS_FILE, corrected_training_rows, retrain_with_corrections
from edutune_core.runner import TRAIN_SNAPSHOT, create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping


def retrained_gradebook(home):
    store = RunStore(home)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    parent = execute_run(store, create_run(store, make_gradebook(60), mapping, TrainConfig.for_task(False, epochs=1),
                                           data_name="book.csv", name="term 1").run_id)
    corrected = make_gradebook(3, seed=9).assign(final=[80, 30, 90], student_id=["N0", "N1", "N2"],
                                                 corrected_from=["fail", "pass", "fail"])
    corrected.to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)
    return parent, retrain_with_corrections(store, parent)


def test_history_lists_corrected_rows(edutune_home):
    parent, child = retrained_gradebook(edutune_home)
    for lang, line in (("en", "3 of the 51 training rows came from teachers' corrections (3 added in this run, "
                               "from run \"term 1\")"),
                       ("zh", "51 行训练数据中有 3 行来自教师的更正（本次训练新增 3 行，来自训练“term 1”）")):
        at = open_app("pages/history.py", lang=lang)
        at.selectbox(key="history_run").set_value(child.run_id).run()
        assert not at.exception, at.exception
        assert line in texts(at)
        table = at.dataframe[-1].value
        assert table.iloc[:, 1].tolist() == ["N0", "N1", "N2"]
        assert table.iloc[:, 2].tolist() == [80, 30, 90]
        assert table.iloc[:, 3].tolist() == ["fail", "pass", "fail"]
        assert "hours" not in table.columns
    assert "history.corrections_warm_start" not in texts(at)
    assert "这次训练从训练“term 1”微调后的模型继续。" in texts(at)


def test_history_without_corrections(edutune_home):
    parent, _ = retrained_gradebook(edutune_home)
    at = open_app("pages/history.py")
    at.selectbox(key="history_run").set_value(parent.run_id).run()
    assert not at.exception, at.exception
    assert "Labels from corrections" not in texts(at)
    assert corrected_training_rows(parent) is None


def test_corrected_rows_leave_text_out(tmp_path):
    store = RunStore(tmp_path)
    mapping = ColumnMapping(target="score", text_column="essay", problem=REGRESSION, ignore_columns=["essay_id"])
    config = TrainConfig.for_task(True, model="char-cnn", epochs=1)
    parent = create_run(store, make_essays(80), mapping, config, data_name="essays.csv")
    corrected = make_essays(2, seed=3).assign(essay_id=["X1", "X2"], score=[4, 1])
    corrected.to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)
    child = retrain_with_corrections(store, parent)
    rows = corrected_training_rows(child)
    assert list(rows.columns) == ["row", "essay_id", "score"]
    assert rows["essay_id"].tolist() == ["X1", "X2"]
    assert rows["score"].tolist() == [4, 1]
    snapshot = pd.read_parquet(child.run_dir / TRAIN_SNAPSHOT)
    assert snapshot["essay_id"].iloc[rows["row"] - 1].tolist() == ["X1", "X2"]


def test_history_snapshot_deleted(edutune_home):
    _, child = retrained_gradebook(edutune_home)
    (child.run_dir / "train_data.parquet").unlink()
    at = open_app("pages/history.py", lang="zh")
    at.selectbox(key="history_run").set_value(child.run_id).run()
    assert not at.exception, at.exception
    assert "这次训练的数据快照已被删除，因此无法列出更正过的行。" in texts(at)


def test_history_names_fresh_start(edutune_home):
    store = RunStore(edutune_home)
    mapping = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
    config = TrainConfig.for_task(False, epochs=1, folds=3)
    parent = execute_run(store, create_run(store, make_gradebook(60), mapping, config, data_name="book.csv",
                                           name="term 2").run_id)
    make_gradebook(2, seed=9).assign(final=[80, 30]).to_csv(parent.run_dir / CORRECTIONS_FILE, index=False)
    child = retrain_with_corrections(store, parent)
    at = open_app("pages/history.py")
    at.selectbox(key="history_run").set_value(child.run_id).run()
    assert not at.exception, at.exception
    assert "This run started from tabular-mlp, not from the weights of run \"term 2\"" in texts(at)
    assert "2 of the 62 training rows came from teachers' corrections" in texts(at)
