"""A table model's exported files contain no ID, comment or name from the training table."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pandas as pd

from conftest import make_gradebook
from edutune_core.config import TrainConfig
from edutune_core.export import export_run
from edutune_core.models import TableEncoder
from edutune_core.runner import create_run, execute_run
from edutune_core.runstore import COMPLETED, RunStore
from edutune_core.tasks import ColumnMapping, unusable_feature_columns

COMMENTS = ["上课认真", "作业按时", "需要加强练习", "字迹工整", "积极发言", "态度端正", "进步明显", "偶尔迟到"]


def gradebook_with_personal_columns(rows: int = 60) -> pd.DataFrame:
    frame = make_gradebook(rows).drop(columns="student_id")
    frame.insert(0, "学号", [f"2024010{index:05d}" for index in range(rows)])
    frame["评语"] = [f"{name}{COMMENTS[index % len(COMMENTS)]}，第{index}次记录"
                   for index, name in enumerate(["张三", "李四", "王五"] * (rows // 3))]
    return frame


def test_export_has_no_ids_or_comments(edutune_home) -> None:
    frame = gradebook_with_personal_columns()
    store = RunStore(edutune_home)
    config = TrainConfig.for_task(False, epochs=1, batch_size=32)
    record = create_run(store, frame, ColumnMapping(target="final", problem="regression"), config,
                        data_name="class.csv")
    record = execute_run(store, record.run_id)
    assert record.status == COMPLETED, record.error

    archive = zipfile.ZipFile(io.BytesIO(export_run(record)))
    contents = "\n".join(archive.read(name).decode("utf-8", errors="replace") for name in archive.namelist())

    for value in frame["学号"]:
        assert value not in contents
    for value in frame["评语"]:
        assert value not in contents
    for fragment in ["张三", "上课认真"]:
        assert fragment not in contents
    description = json.loads(next(archive.read(name) for name in archive.namelist() if name.endswith("edutune.json")))
    assert description["left_out_columns"] == {"学号": "personal_data", "评语": "free_text"}


def test_encoder_leaves_out_name_column() -> None:
    frame = pd.DataFrame({"姓名": ["张伟", "李娜", "张伟", "王芳", "李娜", "王芳"] * 3,
                          "class": ["7A", "7B"] * 9, "hours": np.arange(18, dtype=float)})

    encoder = TableEncoder.fit(frame)

    assert encoder.left_out == {"姓名": "personal_data"}
    assert sorted(encoder.categorical) == ["class"]
    assert "hours" in encoder.numeric


def test_encoder_drops_personal_categories() -> None:
    frame = pd.DataFrame({"note": ["ok", "ok", "call 13812345678", "late", "late", "ok"]})

    encoder = TableEncoder.fit(frame)

    assert encoder.categorical == {"note": ["ok", "late"]}


def test_encoder_round_trip_keeps_left_out() -> None:
    encoder = TableEncoder.fit(gradebook_with_personal_columns(30))

    restored = TableEncoder.from_dict(json.loads(json.dumps(encoder.to_dict())))

    assert restored.left_out == encoder.left_out
    assert TableEncoder.from_dict({"numeric": {}, "categorical": {}}).left_out == {}


def test_unusable_columns_rules() -> None:
    rows = 24
    frame = pd.DataFrame({
        "id_number": np.arange(1000, 1000 + rows),
        "earlier_grade": np.arange(rows) % 12,
        "hours": np.linspace(0, 10, rows),
        "class": ["7A", "7B", "7C"] * (rows // 3),
        "code": [f"S{index:03d}" for index in range(rows)],
    })

    left_out = unusable_feature_columns(frame)

    assert left_out == {"id_number": "identifier", "code": "identifier"}


def test_small_category_column_kept() -> None:
    frame = pd.DataFrame({"class": ["7A", "7B", "7C", "7D"]})

    assert unusable_feature_columns(frame) == {}
