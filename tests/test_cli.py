"""The command line run as a user runs it: a real process, files in and out."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from conftest import ROOT, make_essays, make_gradebook
from edutune_core.export import export_run
from edutune_core.optim import bf16_is_fast
from edutune_core.runstore import RunStore


def run_cli(*args, home: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "EDUTUNE_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "edutune_core", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=environment, timeout=600)


@pytest.fixture
def gradebook_csv(tmp_path) -> Path:
    path = tmp_path / "gradebook.csv"
    make_gradebook().to_csv(path, index=False)
    return path


def test_train_predict_evaluate_table(tmp_path, gradebook_csv):
    run_dir = tmp_path / "run"
    trained = run_cli("train", "--data", gradebook_csv, "--target", "final", "--pass-mark", 60,
                      "--ignore-columns", "student_id", "--epochs", 20, "--output", run_dir, "--json",
                      home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["run_dir"] == str(run_dir.resolve())
    assert result["status"] == "completed"
    assert 0.5 < result["accuracy"] <= 1.0
    assert 0 < result["macro_f1"] <= 1.0
    assert "step" in trained.stderr  # progress goes to standard error

    output = tmp_path / "predicted.csv"
    predicted = run_cli("predict", "--run", run_dir, "--data", gradebook_csv, "--output", output, home=tmp_path / "home")
    assert predicted.returncode == 0, predicted.stderr
    assert output.read_bytes().startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(output, encoding="utf-8-sig")
    assert len(table) == 200
    assert set(table["prediction"]) <= {"pass", "fail"}
    assert table["confidence"].between(0.5, 1).all()

    evaluated = run_cli("evaluate", "--run", run_dir, "--data", gradebook_csv, "--json", home=tmp_path / "home")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert metrics["accuracy"] == pytest.approx((table["prediction"] == (
        make_gradebook()["final"] >= 60).map({True: "pass", False: "fail"})).mean())


def test_train_with_validation_file_reports_its_metrics(tmp_path):
    frame = make_gradebook(240)
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "check.csv", index=False)
    trained = run_cli("train", "--data", tmp_path / "train.csv", "--validation-data", tmp_path / "check.csv",
                      "--target", "final", "--problem", "regression", "--epochs", 5, "--json", home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert set(result) >= {"rmse", "mae", "r2"}
    record = RunStore(tmp_path / "home").get_run(result["run_id"])
    assert record.summary["validation_rows"] == 40
    assert len(pd.read_csv(Path(result["run_dir"]) / "validation_predictions.csv")) == 40


def test_bundled_model_trains_offline(tmp_path):
    """The default text model loads from the installed package with no network."""
    path = tmp_path / "essays.csv"
    make_essays(40).to_csv(path, index=False)
    trained = run_cli("train", "--data", path, "--target", "score", "--text-column", "essay",
                      "--ignore-columns", "essay_id", "--epochs", 1, "--max-length", 24, "--batch-size", 16,
                      "--baselines", "--json", home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert set(result) >= {"qwk", "exact_agreement", "adjacent_agreement", "rmse"}
    assert set(result["baselines"]) == {"tfidf_linear", "floor"}
    assert set(result["baselines"]["tfidf_linear"]) >= {"qwk", "rmse"}
    assert "baseline tfidf_linear: qwk" in trained.stderr
    record = RunStore(tmp_path / "home").get_run(result["run_id"])
    assert record.model == "all-MiniLM-L6-v2"
    assert json.loads((record.run_dir / "model" / "config.json").read_text())["model_type"] == "bert"
    assert record.summary["hardware"]["precision"] == ("bf16" if bf16_is_fast(torch.device("cpu")) else "fp32")
    assert record.summary["hardware"]["tokens_per_pass"] == 2048

    names = zipfile.ZipFile(__import__("io").BytesIO(export_run(record))).namelist()
    top = f"edutune-{record.run_id}"
    for expected in ("model/model.safetensors", "model/config.json", "model/tokenizer.json", "model/edutune.json",
                     "metrics.json", "run.json", "MODEL_CARD.md"):
        assert f"{top}/{expected}" in names
    assert not any(name.endswith(".parquet") for name in names)


def test_speed_settings_reach_the_run(tmp_path):
    path = tmp_path / "essays.csv"
    make_essays(30).to_csv(path, index=False)
    trained = run_cli("train", "--data", path, "--target", "score", "--text-column", "essay", "--epochs", 1,
                      "--max-length", 24, "--precision", "fp32", "--group-by-length", "--pad-to-multiple-of", 1,
                      "--tokens-per-pass", 0, "--json", home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    record = RunStore(tmp_path / "home").get_run(json.loads(trained.stdout.strip().splitlines()[-1])["run_id"])
    assert record.config["train"]["group_by_length"] is True
    assert record.config["train"]["pad_to_multiple_of"] == 1
    assert record.summary["hardware"] == {"device": "cpu", "precision": "fp32", "tokens_per_pass": None}


@pytest.mark.parametrize("args, expected", [
    (["--target", "grade"], 'Column "grade" is not in the file'),
    (["--target", "final", "--tokens-per-pass", "-5"], "The setting tokens_per_pass is -5"),
    (["--target", "final", "--epochs", "0"], "The setting epochs is 0"),
    (["--target", "final", "--problem", "regression", "--pass-mark", "60"], "A pass mark (60.0)"),
])
def test_invalid_input_exits_2_with_one_line(tmp_path, gradebook_csv, args, expected):
    result = run_cli("train", "--data", gradebook_csv, *args, home=tmp_path / "home")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {expected}")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args, expected", [
    (["--target", "final", "--text-column", "essay"], 'Column "essay" is not in the file'),
    (["--target", "final", "--model", "bert-base-chinese"], '--model "bert-base-chinese" applies only to text models'),
    (["--target", "final", "--output", "{file}"], "is a file, but --output needs a folder"),
    (["--target", "final", "--output", "{used_folder}"], "already contains files"),
])
def test_invalid_train_settings_exit_2(tmp_path, gradebook_csv, args, expected):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "metrics.json").write_text("{}")
    places = {"file": gradebook_csv, "used_folder": tmp_path / "used"}
    result = run_cli("train", "--data", gradebook_csv, *[str(arg).format(**places) for arg in args],
                     home=tmp_path / "home")
    last_line = result.stderr.strip().splitlines()[-1]
    assert result.returncode == 2
    assert last_line.startswith("error: ")
    assert expected in last_line
    assert "Traceback" not in result.stderr
    assert (tmp_path / "used" / "metrics.json").read_text() == "{}"


@pytest.mark.parametrize("args", [
    ["train", "--data", "x.csv", "--target", "final", "--learning-rate", "abc"],
    ["train", "--data", "x.csv"],
    ["predict", "--run", "somewhere"],
])
def test_bad_arguments_give_one_line(tmp_path, args):
    result = run_cli(*args, home=tmp_path / "home")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("error: ")
    assert "--help" in result.stderr


def test_predict_output_needs_csv_or_xlsx(tmp_path, gradebook_csv):
    result = run_cli("predict", "--run", tmp_path, "--data", gradebook_csv, "--output", tmp_path / "out.parquet",
                     home=tmp_path / "home")
    assert result.returncode == 2
    assert "must end in .csv, .xlsx" in result.stderr
    assert not (tmp_path / "out.parquet").exists()


def test_evaluate_accepts_a_class_that_all_passed(tmp_path, gradebook_csv):
    """Evaluation needs no second class and no minimum of rows, unlike training."""
    run_dir = tmp_path / "run"
    trained = run_cli("train", "--data", gradebook_csv, "--target", "final", "--pass-mark", 60,
                      "--ignore-columns", "student_id", "--epochs", 3, "--output", run_dir, home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    gradebook = make_gradebook()
    passed = gradebook[gradebook["final"] >= 60].head(5).copy()
    passed.loc[passed.index[0], "final"] = None
    passed.to_csv(tmp_path / "passed.csv", index=False)

    evaluated = run_cli("evaluate", "--run", run_dir, "--data", tmp_path / "passed.csv", "--json",
                        home=tmp_path / "home")
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert sum(sum(row) for row in metrics["metrics"]["confusion_matrix"]) == 4
    assert 0 <= metrics["accuracy"] <= 1

    passed["final"] = None
    passed.to_csv(tmp_path / "unscored.csv", index=False)
    unscored = run_cli("evaluate", "--run", run_dir, "--data", tmp_path / "unscored.csv", home=tmp_path / "home")
    assert unscored.returncode == 2
    assert 'Every row has an empty "final" cell' in unscored.stderr


def test_predict_warns_about_missing_and_foreign_columns(tmp_path, gradebook_csv):
    run_dir = tmp_path / "run"
    trained = run_cli("train", "--data", gradebook_csv, "--target", "final", "--problem", "regression",
                      "--ignore-columns", "student_id", "--epochs", 2, "--output", run_dir, home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    gradebook = make_gradebook()
    numeric = [column for column in gradebook.columns
               if column not in ("final", "student_id") and pd.api.types.is_numeric_dtype(gradebook[column])]

    partial = gradebook.drop(columns=[numeric[0]])
    partial[numeric[1]] = partial[numeric[1]].astype(object)
    partial.loc[partial.index[:2], numeric[1]] = "many"
    partial.to_csv(tmp_path / "partial.csv", index=False)
    predicted = run_cli("predict", "--run", run_dir, "--data", tmp_path / "partial.csv",
                        "--output", tmp_path / "partial_out.csv", home=tmp_path / "home")
    assert predicted.returncode == 0, predicted.stderr
    assert f"warning: The file lacks these columns the model was trained on: {numeric[0]}" in predicted.stderr
    assert f'warning: Column "{numeric[1]}" has 2 cells that are not numbers' in predicted.stderr

    pd.DataFrame({"姓名": ["甲", "乙"], "成绩": [1, 2]}).to_csv(tmp_path / "foreign.csv", index=False)
    foreign = run_cli("predict", "--run", run_dir, "--data", tmp_path / "foreign.csv",
                      "--output", tmp_path / "foreign_out.csv", home=tmp_path / "home")
    assert foreign.returncode == 2
    assert "The file has none of the columns the model was trained on" in foreign.stderr
    assert not (tmp_path / "foreign_out.csv").exists()


def test_validation_file_without_scores_exits_2(tmp_path):
    frame = make_gradebook(60)
    frame.to_csv(tmp_path / "train.csv", index=False)
    unscored = frame.head(5).assign(final=None)
    unscored.to_csv(tmp_path / "check.csv", index=False)
    trained = run_cli("train", "--data", tmp_path / "train.csv", "--validation-data", tmp_path / "check.csv",
                      "--target", "final", "--epochs", 1, home=tmp_path / "home")
    assert trained.returncode == 2
    assert 'Every row has an empty "final" cell' in trained.stderr


def test_chinese_column_names_survive_training_and_export(tmp_path):
    """A gradebook with Chinese headers keeps them in the predictions file and the exported model."""
    source = ROOT / "sample_data" / "gradebook_zh.csv"
    run_dir = tmp_path / "run"
    trained = run_cli("train", "--data", source, "--target", "期末成绩", "--pass-mark", 60, "--epochs", 2,
                      "--output", run_dir, home=tmp_path / "home")
    assert trained.returncode == 0, trained.stderr
    predicted = run_cli("predict", "--run", run_dir, "--data", source, "--output", tmp_path / "预测.csv",
                        home=tmp_path / "home")
    assert predicted.returncode == 0, predicted.stderr
    header = (tmp_path / "预测.csv").read_text(encoding="utf-8-sig").splitlines()[0].split(",")
    assert header[:3] == ["学号", "班级", "性别"]
    assert "prediction" in header

    record = RunStore(tmp_path / "home").list_runs()[0]
    archive = zipfile.ZipFile(__import__("io").BytesIO(export_run(record)))
    description = json.loads(archive.read(f"edutune-{record.run_id}/model/edutune.json"))
    assert description["mapping"]["target"] == "期末成绩"
    table_model = json.loads(archive.read(f"edutune-{record.run_id}/model/table_model.json"))
    assert "缺勤次数" in table_model["encoder"]["numeric"]


def test_missing_file_exits_2(tmp_path):
    result = run_cli("train", "--data", tmp_path / "nothing.csv", "--target", "x", home=tmp_path / "home")
    assert result.returncode == 2
    assert "nothing.csv" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_with_folder_that_is_not_a_run(tmp_path, gradebook_csv):
    result = run_cli("predict", "--run", tmp_path, "--data", gradebook_csv, "--output", tmp_path / "out.csv",
                     home=tmp_path / "home")
    assert result.returncode == 2
    assert "is not an EduTune run folder" in result.stderr


def test_ctrl_c_stops_cleanly_and_resume_finishes(tmp_path):
    import signal
    import time

    from edutune_core.checkpoint import find_checkpoint

    data = tmp_path / "gradebook.csv"
    make_gradebook(400).to_csv(data, index=False)
    home = tmp_path / "home"
    environment = {**os.environ, "EDUTUNE_HOME": str(home)}
    process = subprocess.Popen([sys.executable, "-m", "edutune_core", "train", "--data", str(data), "--target", "final",
                                "--problem", "regression", "--epochs", "40", "--batch-size", "8", "--json"],
                               cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    store = RunStore(home)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        runs = store.list_runs()
        if runs and len(store.points(runs[0].run_id)) > 100:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    stopped = json.loads(stdout.strip().splitlines()[-1])
    assert stopped["status"] == "stopped"
    assert f"resume --run-id {stopped['run_id']}" in stderr
    assert find_checkpoint(Path(stopped["run_dir"])) is not None

    resumed = run_cli("resume", "--run-id", stopped["run_id"], "--json", home=home)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout.strip().splitlines()[-1])["status"] == "completed"
    record = store.get_run(stopped["run_id"])
    steps = [point["step"] for point in store.points(record.run_id) if point["split"] == "train" and point["name"] == "loss"]
    assert steps == list(range(1, record.total_steps + 1))


def test_resume_unknown_run_exits_2(tmp_path):
    result = run_cli("resume", "--run-id", "no-such-run", home=tmp_path / "home")
    assert result.returncode == 2
    assert 'No run has the id "no-such-run"' in result.stderr


# Loading options and column roles: the same loader and mapping as the Data page.

def cli_main(*args, home: Path, monkeypatch) -> int:
    from edutune_core.cli import main

    monkeypatch.setenv("EDUTUNE_HOME", str(home))
    return main([str(arg) for arg in args])


def chinese_gradebook(rows: int = 40) -> pd.DataFrame:
    return make_gradebook(rows).rename(columns={"class": "班级", "final": "成绩"})


def test_encoding_option_reaches_loader(tmp_path, monkeypatch, capsys):
    path = tmp_path / "成绩.csv"
    path.write_bytes(chinese_gradebook().to_csv(index=False).encode("gb18030"))

    failed = cli_main("train", "--data", path, "--target", "成绩", "--encoding", "utf-8",
                      home=tmp_path / "home", monkeypatch=monkeypatch)

    assert failed == 2
    assert "utf-8" in capsys.readouterr().err
    trained = cli_main("train", "--data", path, "--target", "成绩", "--encoding", "gb18030", "--epochs", 1,
                       "--ignore-columns", "student_id", home=tmp_path / "home", monkeypatch=monkeypatch)
    assert trained == 0


def test_sheet_and_header_row_options(tmp_path, monkeypatch, capsys):
    frame = chinese_gradebook()
    path = tmp_path / "book.xlsx"
    with pd.ExcelWriter(path) as writer:
        pd.DataFrame({"说明": ["本册为期末成绩"]}).to_excel(writer, sheet_name="封面", index=False)
        frame.to_excel(writer, sheet_name="期末", index=False, startrow=2)

    missing = cli_main("train", "--data", path, "--target", "成绩", "--sheet", "期中",
                       home=tmp_path / "home", monkeypatch=monkeypatch)
    assert missing == 2
    assert "封面, 期末" in capsys.readouterr().err

    wrong_row = cli_main("train", "--data", path, "--target", "成绩", "--sheet", "期末", "--header-row", 1,
                         home=tmp_path / "home", monkeypatch=monkeypatch)
    assert wrong_row == 2
    assert "成绩" in capsys.readouterr().err

    trained = cli_main("train", "--data", path, "--target", "成绩", "--sheet", "期末", "--header-row", 3,
                       "--epochs", 1, "--ignore-columns", "student_id", "--json",
                       home=tmp_path / "home", monkeypatch=monkeypatch)
    assert trained == 0


def test_header_row_must_be_positive(tmp_path, monkeypatch, gradebook_csv):
    with pytest.raises(SystemExit) as exited:
        cli_main("train", "--data", gradebook_csv, "--target", "final", "--header-row", 0,
                 home=tmp_path / "home", monkeypatch=monkeypatch)

    assert exited.value.code == 2


def test_group_student_and_score_scale_options(tmp_path, monkeypatch):
    frame = make_gradebook(60)
    frame["final"] = (frame["final"] // 20).clip(0, 4)
    frame["gender"] = ["f", "m"] * 30
    path = tmp_path / "grades.csv"
    frame.to_csv(path, index=False)

    code = cli_main("train", "--data", path, "--target", "final", "--problem", "regression", "--epochs", 1,
                    "--group-columns", "class, gender", "--student-column", "student_id",
                    "--score-min", 0, "--score-max", 6, "--score-step", 1, "--output", tmp_path / "run",
                    home=tmp_path / "home", monkeypatch=monkeypatch)

    assert code == 0
    description = json.loads((tmp_path / "run" / "model" / "edutune.json").read_text(encoding="utf-8"))
    mapping = description["mapping"]
    assert mapping["group_columns"] == ["class", "gender"]
    assert mapping["student_column"] == "student_id"
    assert (mapping["score_min"], mapping["score_max"], mapping["score_step"]) == (0.0, 6.0, 1.0)
    assert description["score_points"] == [0, 6]


def test_score_step_choices(tmp_path, monkeypatch, gradebook_csv):
    with pytest.raises(SystemExit) as exited:
        cli_main("train", "--data", gradebook_csv, "--target", "final", "--score-step", 0.25,
                 home=tmp_path / "home", monkeypatch=monkeypatch)

    assert exited.value.code == 2


def test_predict_reads_chosen_sheet(tmp_path, monkeypatch):
    frame = make_gradebook(40)
    train_path = tmp_path / "train.csv"
    frame.to_csv(train_path, index=False)
    assert cli_main("train", "--data", train_path, "--target", "final", "--epochs", 1, "--ignore-columns",
                    "student_id", "--output", tmp_path / "run", home=tmp_path / "home", monkeypatch=monkeypatch) == 0
    book = tmp_path / "new.xlsx"
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"note": ["cover"]}).to_excel(writer, sheet_name="Cover", index=False)
        frame.drop(columns="final").head(5).to_excel(writer, sheet_name="Term 2", index=False)

    code = cli_main("predict", "--run", tmp_path / "run", "--data", book, "--sheet", "Term 2",
                    "--output", tmp_path / "out.csv", home=tmp_path / "home", monkeypatch=monkeypatch)

    assert code == 0
    assert len(pd.read_csv(tmp_path / "out.csv")) == 5
