"""Data page: choose a file, check what was detected, map the columns."""

from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from edutune_core.data import MAX_FILE_BYTES, SUPPORTED_ENCODINGS, LoadedTable, load_table
from edutune_core.i18n import EduTuneError
from edutune_core.tasks import (
    CLASSIFICATION,
    PROBLEMS,
    ColumnMapping,
    is_numeric,
    prepare_data,
    propose_mapping,
    propose_problem,
    task_for,
)
from pages.common.ui import keep_widget_state, option_labels, setup_page, show_error, t, task_name, uploads


SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
WIDGET_PREFIXES = ("encoding_", "separator_", "header_", "sheet_", "text_", "target_", "ignore_", "use_pass_",
                   "pass_", "problem_")
SEPARATORS = {",": ",", ";": ";", "\t": "Tab", "|": "|"}


@st.cache_data(show_spinner=False, max_entries=16)
def read_table(data: bytes, file_name: str, encoding: str | None, separator: str | None,
               sheet: str | None, header_row: int | None) -> LoadedTable:
    return load_table(data, file_name, encoding=encoding, separator=separator, sheet=sheet, header_row=header_row)


def file_choices() -> dict[str, tuple[str, Path]]:
    """Map each choice key to (shown name, path): recent uploads first, then the samples."""
    choices = {f"upload:{item.upload_id}": (item.file_name, item.path) for item in uploads().recent()}
    for path in sorted(SAMPLE_DIR.glob("*.csv")):
        choices[f"sample:{path.name}"] = (t("data.sample_name", name=path.name), path)
    return choices


def choose_file() -> tuple[str, str, bytes] | None:
    uploaded = st.file_uploader(t("data.upload"), type=["csv", "tsv", "txt", "xlsx", "xls"],
                                help=t("data.upload_help", limit=MAX_FILE_BYTES // 2**20))
    if uploaded is not None and st.session_state.get("last_upload") != uploaded.file_id:
        st.session_state["last_upload"] = uploaded.file_id
        saved = uploads().save(uploaded.getvalue(), uploaded.name)
        st.session_state["data_file"] = f"upload:{saved.upload_id}"
    choices = file_choices()
    if not choices:
        return None
    keep_widget_state("data_file")
    if st.session_state.get("data_file") not in choices:
        st.session_state.pop("data_file", None)
    choice = st.selectbox(t("data.file"), list(choices), format_func=lambda key: choices[key][0], key="data_file")
    name, path = choices[choice]
    file_name = path.name if choice.startswith("sample:") else name
    return choice, file_name, path.read_bytes()


def loading_options(choice: str) -> dict:
    """Let the user override what was detected; all default to automatic."""
    automatic = t("data.auto")
    with st.expander(t("data.options")):
        columns = st.columns(4)
        encoding = columns[0].selectbox(t("data.encoding"), [None, *SUPPORTED_ENCODINGS],
                                        format_func=lambda value: value or automatic, key=f"encoding_{choice}")
        separator = columns[1].selectbox(t("data.separator"), [None, *SEPARATORS],
                                         format_func=lambda value: SEPARATORS.get(value) or automatic,
                                         key=f"separator_{choice}")
        header = columns[2].number_input(t("data.header_row"), min_value=1, value=None, step=1,
                                         help=t("data.header_row_help"), key=f"header_{choice}")
        sheet = columns[3].text_input(t("data.sheet"), key=f"sheet_{choice}", help=t("data.sheet_help")) or None
    return {"encoding": encoding, "separator": separator, "sheet": sheet,
            "header_row": None if header is None else int(header) - 1}


def show_detected(table: LoadedTable) -> None:
    cells = st.columns(5)
    cells[0].metric(t("data.format"), table.file_format.upper())
    cells[1].metric(t("data.encoding"), table.encoding or "-")
    cells[2].metric(t("data.separator"), SEPARATORS.get(table.separator, table.separator or "-"))
    cells[3].metric(t("data.rows"), len(table.frame))
    cells[4].metric(t("data.columns"), table.frame.shape[1])
    notes = []
    if table.sheet:
        notes.append(t("data.sheet_used", sheet=table.sheet, sheets=", ".join(table.sheet_names)))
    if table.header_row:
        notes.append(t("data.header_found", row=table.header_row + 1))
    if table.decimal_comma:
        notes.append(t("data.decimal_comma"))
    if table.dropped_empty_rows:
        notes.append(t("data.empty_rows", count=table.dropped_empty_rows))
    for note in notes:
        st.caption(note)
    st.dataframe(table.frame.head(50), width="stretch", height=260)


def default_index(key: str, options: list, proposed: object) -> dict:
    """Propose an option only on first draw; later the widget's own state decides."""
    if key in st.session_state:
        return {}
    return {"index": options.index(proposed) if proposed in options else 0}


def mapping_form(frame: pd.DataFrame, choice: str) -> ColumnMapping:
    proposal = propose_mapping(frame)
    columns = list(frame.columns)
    left, right = st.columns(2)
    text_options = [None, *[column for column in columns if not is_numeric(frame[column])]]
    no_text = t("map.no_text")
    text_column = left.selectbox(
        t("map.text_column"), text_options, key=f"text_{choice}", help=t("map.text_column_help"),
        **default_index(f"text_{choice}", text_options, proposal.text_column),
        format_func=lambda value: no_text if value is None else str(value))
    target_options = [column for column in columns if column != text_column]
    target = right.selectbox(t("map.target"), target_options, key=f"target_{choice}", help=t("map.target_help"),
                             **default_index(f"target_{choice}", target_options, proposal.target))
    ignore = st.multiselect(t("map.ignore"), [column for column in columns if column not in (target, text_column)],
                            key=f"ignore_{choice}", help=t("map.ignore_help"))

    numeric_target = is_numeric(frame[target])
    pass_mark = None
    if numeric_target and st.checkbox(t("map.use_pass_mark"), key=f"use_pass_{choice}", help=t("map.pass_mark_help")):
        middle = float(frame[target].median())
        key = f"pass_{choice}_{target}"
        pass_mark = st.number_input(t("map.pass_mark"), key=key, **({} if key in st.session_state else {"value": middle}))
    if pass_mark is not None:
        problem = CLASSIFICATION
        st.caption(t("map.pass_mark_problem"))
    else:
        proposed = propose_problem(frame[target])
        problem = st.radio(t("map.problem"), PROBLEMS, **default_index(f"problem_{choice}_{target}", PROBLEMS, proposed),
                           horizontal=True,
                           format_func=option_labels("problem", PROBLEMS), key=f"problem_{choice}_{target}",
                           help=t("map.problem_help"))
    return ColumnMapping(target=target, text_column=text_column, ignore_columns=ignore, problem=problem,
                         pass_mark=pass_mark)


def show_summary(frame: pd.DataFrame, mapping: ColumnMapping) -> bool:
    try:
        data = prepare_data(frame, mapping)
    except EduTuneError as error:
        show_error(error)
        return False
    st.success(t("map.ready", task=task_name(task_for(mapping)), rows=len(data)))
    for reason, count in data.dropped_rows.items():
        st.warning(t("map.dropped", count=count, reason=t(reason)))
    if data.labels is not None:
        counts = pd.Series(data.targets).value_counts().sort_index()
        chart = pd.DataFrame({t("map.label"): [data.labels[i] for i in counts.index], t("map.count"): counts.values})
        st.plotly_chart(px.bar(chart, x=t("map.label"), y=t("map.count"), height=250), width="stretch")
    else:
        st.plotly_chart(px.histogram(x=data.targets, nbins=30, height=250, labels={"x": mapping.target}),
                        width="stretch")
    if data.score_points:
        st.caption(t("map.score_points", low=data.score_points[0], high=data.score_points[1]))
    return True


keep_widget_state(*[key for key in st.session_state if str(key).startswith(WIDGET_PREFIXES)])
setup_page("nav.data")
st.title(t("data.title"))
st.write(t("data.intro"))
chosen = choose_file()
if chosen is None:
    st.info(t("data.no_file"))
    st.stop()
choice, file_name, content = chosen
options = loading_options(choice)
try:
    table = read_table(content, file_name, **options)
except EduTuneError as error:
    show_error(error)
    st.stop()
show_detected(table)

st.subheader(t("map.title"))
mapping = mapping_form(table.frame, choice)
if show_summary(table.frame, mapping):
    st.session_state["dataset"] = {"frame": table.frame, "name": file_name, "mapping": mapping}
    st.page_link("pages/train.py", label=t("data.next"), icon="➡️")
