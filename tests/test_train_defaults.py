"""Default fold count on the Train page: 5-fold below 500 rows for tables and texts, reset when the data changes."""

import pytest

from conftest import make_essays, make_gradebook
from test_app import open_app
from edutune_core.tasks import CLASSIFICATION, REGRESSION, ColumnMapping
from pages.common.advanced import default_folds


def set_dataset(at, frame, mapping, name):
    at.session_state["dataset"] = {"name": name, "frame": frame, "mapping": mapping}
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


BOOK = ColumnMapping(target="final", problem=CLASSIFICATION, pass_mark=60, ignore_columns=["student_id"])
ESSAYS = ColumnMapping(target="score", text_column="essay", problem=REGRESSION)


@pytest.mark.parametrize("rows, folds", [(30, 5), (499, 5), (500, 0), (900, 0)])
def test_default_folds_by_rows(rows, folds):
    assert default_folds(rows) == folds


def test_folds_reset_when_table_changes(edutune_home):
    at = set_dataset(open_app(), make_gradebook(300), BOOK, "small.csv")
    assert at.selectbox(key="adv_folds").value == 5

    at = set_dataset(at, make_gradebook(900), BOOK, "large.csv")
    assert at.selectbox(key="adv_folds").value == 0

    at = set_dataset(at, make_gradebook(120), BOOK, "class 7A.csv")
    assert at.selectbox(key="adv_folds").value == 5


def test_text_task_defaults_to_folds(edutune_home):
    at = set_dataset(open_app(), make_essays(100), ESSAYS, "essays.csv")
    assert at.selectbox(key="adv_folds").value == 5

    at = set_dataset(at, make_essays(600), ESSAYS, "all essays.csv")
    assert at.selectbox(key="adv_folds").value == 0


def test_user_choice_of_no_folds_is_kept(edutune_home):
    at = set_dataset(open_app(), make_gradebook(300), BOOK, "small.csv")
    at.selectbox(key="adv_folds").set_value(0).run()
    at.number_input(key="train_epochs").set_value(7).run()
    assert at.selectbox(key="adv_folds").value == 0
    assert at.selectbox(key="adv_folds").format_func(0) == "-"
