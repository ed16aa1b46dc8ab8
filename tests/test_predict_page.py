"""The Predict page with AppTest: confidence, the saved alert threshold and another teacher's shared run."""

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from conftest import ROOT, make_gradebook
from test_app import finished_run, open_app, texts
from edutune_core.config import TrainConfig
from edutune_core.corrections import CORRECTIONS_FILE, retrain_with_corrections
from edutune_core.evaluation import load_validation
from edutune_core.i18n import EduTuneError
from edutune_core.predict import Predictor
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import RunStore
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping
from edutune_core.threshold import ALERT_SUMMARY_KEY, choose_threshold

PASS_FAIL = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])


def upload_csv(at: AppTest, frame: pd.DataFrame, name: str = "new.csv") -> AppTest:
    at.file_uploader(key="predict_file").set_value((name, frame.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.exception, at.exception
    return at


def button_keys(at: AppTest) -> list[str]:
    return [button.key for button in at.button]


def test_single_value_prediction_shows_interval(edutune_home):
    frame = make_gradebook(80)
    frame["final"] = frame["final"] + 0.5
    finished_run(edutune_home, frame, ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"]),
                 TrainConfig.for_task(False, epochs=2))
    for lang, words in (("en", "80% interval"), ("zh", "80% 区间")):
        at = open_app("pages/predict.py", lang=lang)
        at.button(key="predict_one").click().run()
        assert not at.exception, at.exception
        assert words in at.success[0].value
        assert "RMSE" in texts(at)


def test_single_score_prediction_shows_confidence(edutune_home):
    frame = make_gradebook(80)
    frame["level"] = np.clip((frame["final"] - 40) // 10, 1, 4).astype(int)
    finished_run(edutune_home, frame, ColumnMapping(target="level", problem=REGRESSION,
                                                    ignore_columns=["student_id", "final"]),
                 TrainConfig.for_task(False, epochs=2))
    at = open_app("pages/predict.py", lang="zh")
    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    assert "置信度" in at.success[0].value
    assert "教师恰好给出这个分数的概率" in texts(at)


def test_saved_threshold_flags_at_risk(edutune_home):
    record = finished_run(edutune_home, make_gradebook(120), PASS_FAIL, TrainConfig.for_task(False, epochs=2))
    at = open_app("pages/predict.py")
    assert "No alert threshold is saved" in texts(at)

    at = open_app("pages/results.py")
    at.slider(key="results_target_recall").set_value(0.8).run()
    at.button(key="results_save_threshold").click().run()
    assert not at.exception, at.exception
    validation = load_validation(record)
    index = validation.labels.index("fail")
    choice = choose_threshold(validation.target_values() == index, validation.probabilities[:, index], 0.8)
    saved = RunStore(edutune_home).get_run(record.run_id).summary[ALERT_SUMMARY_KEY]
    assert saved == {"label": "fail", "threshold": pytest.approx(choice.threshold), "target_recall": 0.8}
    assert f"at least {choice.threshold:.3f}" in texts(at)

    at = open_app("pages/predict.py")
    assert f"at least **{choice.threshold:.3f}**" in texts(at)
    new_rows = make_gradebook(20, seed=8).drop(columns=["final"])
    at = upload_csv(at, new_rows)
    assert not at.error, [error.value for error in at.error]
    probabilities = Predictor(record.run_dir).predict_frame(new_rows).raw[:, index]
    flagged = probabilities >= saved["threshold"]
    shown = next(frame.value for frame in at.dataframe if "at risk" in frame.value.columns)
    expected = ["yes" if flag else "no" for flag in flagged[shown.index]]
    assert shown["at risk"].tolist() == expected

    at.button(key="predict_one").click().run()
    assert not at.exception, at.exception
    assert "alert threshold" in texts(at)


def test_shared_run_is_read_only_for_others(signed_in_server, edutune_home):
    alice = RunStore(edutune_home).for_user("alice")
    record = execute_run(alice, create_run(alice, make_gradebook(80), PASS_FAIL, TrainConfig.for_task(False, epochs=1),
                                           data_name="g.csv", name="alice book").run_id)
    alice.set_shared(record.run_id, True)
    make_gradebook(3, seed=2).assign(final=[80, 30, 90]).to_csv(record.run_dir / CORRECTIONS_FILE, index=False)
    new_rows = make_gradebook(10, seed=6).drop(columns=["final"])

    owner = upload_csv(signed_in_server("alice", "alice-password", "pages/predict.py"), new_rows)
    assert "predict_save_corrections" in button_keys(owner)
    assert "predict_retrain" in button_keys(owner)

    other = upload_csv(signed_in_server("王老师", "wang-password", "pages/predict.py", lang="zh"), new_rows)
    assert "predict_save_corrections" not in button_keys(other)
    assert "predict_retrain" not in button_keys(other)
    assert "predict_corrections" not in [frame.key for frame in other.dataframe]
    assert "更正" not in other.dataframe[0].value.columns
    assert "预测结果" in other.dataframe[0].value.columns
    assert any("只有 alice 可以为它保存更正" in info.value for info in other.info)
    assert [button.label for button in other.get("download_button")] == ["下载 CSV（可用 Excel 打开）", "下载 XLSX"]

    wang = RunStore(edutune_home).for_user("王老师")
    with pytest.raises(EduTuneError) as refused:
        retrain_with_corrections(wang, wang.get_run(record.run_id))
    assert refused.value.key == "corrections.not_owner"
    assert "alice" in refused.value.message("en")
    assert len(RunStore(edutune_home).list_runs()) == 1


def test_retrain_note_for_cross_validated_run(edutune_home):
    record = finished_run(edutune_home, make_gradebook(60), PASS_FAIL, TrainConfig.for_task(False, epochs=1, folds=3))
    make_gradebook(3, seed=2).assign(final=[80, 30, 90]).to_csv(record.run_dir / CORRECTIONS_FILE, index=False)
    new_rows = make_gradebook(5, seed=6).drop(columns=["final"])
    for lang, words in (("en", "starts from tabular-mlp, as this run did, with 3-fold cross-validation again"),
                        ("zh", "而是像这次训练一样从 tabular-mlp 开始，并再次使用 3 折交叉验证")):
        at = upload_csv(open_app("pages/predict.py", lang=lang), new_rows)
        assert "predict_retrain" in button_keys(at)
        assert words in texts(at)


def test_batch_file_missing_columns_warned(edutune_home):
    frame = make_gradebook(80)
    finished_run(edutune_home, frame, ColumnMapping(target="final", problem=REGRESSION, ignore_columns=["student_id"]),
                 TrainConfig.for_task(False, epochs=2))
    at = upload_csv(open_app("pages/predict.py", lang="zh"), frame.drop(columns=["hours"]))
    assert "文件缺少模型训练时用过的这些列：hours" in [warning.value for warning in at.warning][0]

    at = upload_csv(open_app("pages/predict.py", lang="en"), pd.DataFrame({"name": ["A"], "mark": [3]}))
    assert "The file has none of the columns the model was trained on" in at.error[0].value
