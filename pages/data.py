"""Data page: choose a file, check what was detected, protect student privacy, map the
columns and read the data profile."""

import json
import logging
from pathlib import Path

import pandas as pd
import plotly.express as px
import streamlit as st

from edutune_core import intake, privacy
from edutune_core.config import TrainConfig
from edutune_core.data import MAX_FILE_BYTES, SUPPORTED_ENCODINGS, LoadedTable, load_table, sheet_names
from edutune_core.i18n import EduTuneError
from edutune_core.profile import MAX_LENGTHS, DataProfile, build_profile
from edutune_core.tasks import (
    CLASSIFICATION,
    PROBLEMS,
    REGRESSION,
    SCORE_STEPS,
    ColumnMapping,
    PreparedData,
    is_numeric,
    prepare_data,
    propose_mapping,
    propose_problem,
    task_for,
)
from pages.common.ui import (DATA_NOT_READY_KEY, SAMPLE_DIR, forget_widget_state, keep_widget_state, option_labels,
                             setup_page, show_error, t, task_name, uploads)

logger = logging.getLogger(__name__)

WIDGET_PREFIXES = ("encoding_", "separator_", "header_", "sheet_", "text_", "target_", "ignore_", "use_pass_",
                   "pass_", "problem_", "header_rows_", "labels_", "privacy_", "drop_target_", "groups_",
                   "student_", "score_min_", "score_max_", "score_step_")
MAPPING_PREFIXES = ("text_", "target_", "ignore_", "use_pass_", "pass_", "problem_", "groups_", "student_",
                    "score_min_", "score_max_", "score_step_")
SEPARATORS = {",": ",", ";": ";", "\t": "Tab", "|": "|"}
HEADER_ROWS = (None, 1, 2)
NO_LABELS_FILE = ""
NO_TEXT = ""
NO_STUDENT = ""
MARKDOWN_CHARACTERS = set("\\`*_{}[]<>()#+-.!|~$")
RESTORED_KEY = "data_selection_restored"
SAVED_KEY = "data_selection_saved"


@st.cache_data(show_spinner=False, max_entries=16)
def read_table(data: bytes, file_name: str, encoding: str | None, separator: str | None,
               sheet: str | None, header_row: int | None, header_rows: int | None = None) -> LoadedTable:
    return load_table(data, file_name, encoding=encoding, separator=separator, sheet=sheet, header_row=header_row,
                      header_rows=header_rows)


@st.cache_data(show_spinner=False, max_entries=16)
def list_sheets(data: bytes, file_name: str) -> list[str]:
    return sheet_names(data, file_name)


@st.cache_data(show_spinner=False, max_entries=8)
def join_labels(texts: pd.DataFrame, labels: pd.DataFrame, text_id: str, label_id: str, texts_name: str,
                labels_name: str) -> intake.LabelJoin:
    return intake.join_labels(texts, labels, text_id, label_id, texts_name=texts_name, labels_name=labels_name)


@st.cache_data(show_spinner=False, max_entries=8)
def scan_privacy(frame: pd.DataFrame) -> privacy.PrivacyReport:
    return privacy.scan_privacy(frame)


@st.cache_data(show_spinner=False, max_entries=8)
def apply_privacy(frame: pd.DataFrame, report: privacy.PrivacyReport, actions: dict) -> tuple[pd.DataFrame, dict]:
    return privacy.apply_privacy(frame, report, actions)


@st.cache_data(show_spinner=False, max_entries=8)
def check_data(frame: pd.DataFrame, mapping: dict, earlier_drops: dict,
               max_lengths: tuple[int, ...]) -> tuple[PreparedData, DataProfile]:
    prepared = prepare_data(frame, ColumnMapping.from_dict(mapping))
    return prepared, build_profile(frame, prepared.mapping, prepared, earlier_drops=earlier_drops,
                                   max_lengths=max_lengths)


def file_choices() -> dict[str, tuple[str, Path]]:
    """Map each choice key to (shown name, path): recent uploads first, then the samples."""
    choices = {f"upload:{item.upload_id}": (item.file_name, item.path) for item in uploads().recent()}
    for path in sorted(SAMPLE_DIR.glob("*.csv")):
        choices[f"sample:{path.name}"] = (t("data.sample_name", name=path.name), path)
    return choices


def choose_file() -> tuple[str, str, bytes] | None:
    # A fixed key keeps the upload when the language, and with it the label, changes.
    uploaded = st.file_uploader(t("data.upload"), type=["csv", "tsv", "txt", "xlsx", "xls"], key="data_upload",
                                help=t("data.upload_help", limit=MAX_FILE_BYTES // 2**20))
    if uploaded is not None and st.session_state.get("last_upload") != uploaded.file_id:
        st.session_state["last_upload"] = uploaded.file_id
        saved = uploads().save(uploaded.getvalue(), uploaded.name)
        st.session_state["data_file"] = f"upload:{saved.upload_id}"
    choices = file_choices()
    if not choices:
        return None
    keep_widget_state("data_file")
    restore_selection(choices)
    if st.session_state.get("data_file") not in choices:
        forget_widget_state("data_file")
    choice = st.selectbox(t("data.file"), list(choices), format_func=lambda key: choices[key][0], key="data_file")
    name, path = choices[choice]
    file_name = path.name if choice.startswith("sample:") else name
    return choice, file_name, path.read_bytes()


def restore_selection(choices: dict) -> None:
    """Choose the file and fill in the widgets as they were when this user last used the page.

    Runs once per session, so only a new session (a refresh, another browser) restores them.
    """
    if st.session_state.get(RESTORED_KEY):
        return
    st.session_state[RESTORED_KEY] = True
    saved = uploads().last_selection()
    if "data_file" in st.session_state or not saved or saved.get("choice") not in choices:
        return
    for key, value in saved.get("widgets", {}).items():
        st.session_state.setdefault(key, value)
    st.session_state["data_file"] = saved["choice"]


def mark_not_ready(file_name: str) -> None:
    """Record that ``file_name`` is not prepared, so the Train page offers no data."""
    st.session_state.pop("dataset", None)
    st.session_state[DATA_NOT_READY_KEY] = file_name


def remember_selection(choice: str, file_name: str, prepared: dict | None) -> None:
    """Store the chosen file, its widget values and the recipe of its prepared data for the next session.

    ``prepared`` is None while the choice fails to prepare, so a new session offers no data to train on.
    """
    widgets = {key: value for key, value in st.session_state.items()
               if str(key).startswith(WIDGET_PREFIXES) and choice in str(key) and is_json_value(value)}
    selection = {"choice": choice, "name": file_name, "widgets": widgets, "dataset": prepared}
    if st.session_state.get(SAVED_KEY) == selection:
        return
    try:
        uploads().save_selection(json.loads(json.dumps(selection, default=json_scalar)))
    except (OSError, TypeError, ValueError) as error:
        # The page works without it, and only a refresh would lose the mapping.
        logger.warning("failed to store the data selection %r: %s", file_name, error)
        return
    st.session_state[SAVED_KEY] = selection


def is_json_value(value: object) -> bool:
    if isinstance(value, list):
        return all(is_json_value(item) for item in value)
    return value is None or isinstance(value, (str, int, float, bool))


def json_scalar(value: object) -> object:
    """Convert the NumPy numbers of profile summaries for ``json.dumps``."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def loading_options(choice: str) -> dict:
    """Let the user override what was detected. Every option defaults to automatic, and the sheet is picked after loading."""
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
        labels = {value: t(f"intake.header_rows_option.{value or 'auto'}") for value in HEADER_ROWS}
        header_rows = columns[3].selectbox(t("intake.header_rows"), HEADER_ROWS, format_func=labels.__getitem__,
                                           key=f"header_rows_{choice}", help=t("intake.header_rows_help"))
    return {"encoding": encoding, "separator": separator, "sheet": st.session_state.get(f"sheet_{choice}"),
            "header_row": None if header is None else int(header) - 1, "header_rows": header_rows}


def load_chosen(choice: str, file_name: str, content: bytes, options: dict) -> LoadedTable:
    """Load the file, offer the sheet picker of a workbook, and stop the page on an error.

    The picker also shows after a failed load, so the teacher can choose another sheet.
    """
    try:
        table = read_table(content, file_name, **options)
    except EduTuneError as error:
        show_error(error)
        mark_not_ready(file_name)
        sheet_picker(choice, list_sheets(content, file_name), options["sheet"])
        st.stop()
    sheet_picker(choice, table.sheet_names, table.sheet)
    return table


def sheet_picker(choice: str, names: list[str], loaded: str | None) -> None:
    if len(names) > 1:
        key = f"sheet_{choice}"
        index = {}
        if key not in st.session_state:
            index = {"index": names.index(loaded) if loaded in names else 0}
        st.selectbox(t("data.sheet"), names, key=key, help=t("intake.sheet_help"), **index)


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
    if table.header_rows == 2:
        grouped = next((name for name in table.frame.columns if " / " in str(name)), table.frame.columns[0])
        notes.append(t("intake.two_row_header", first=table.header_row + 1, second=table.header_row + 2,
                       example=grouped))
    if table.decimal_comma:
        notes.append(t("data.decimal_comma"))
    if table.dropped_empty_rows:
        notes.append(t("data.empty_rows", count=table.dropped_empty_rows))
    for note in notes:
        st.caption(note)
    for column in table.rounded_id_columns:
        st.warning(t("intake.long_ids_rounded", column=column))
    st.dataframe(table.frame.head(50), width="stretch", height=260)


def labels_section(frame: pd.DataFrame, file_name: str, choice: str) -> tuple[pd.DataFrame, dict | None]:
    """Join an optional labels file on the ID columns the user picks; return the table and the join summary."""
    with st.expander(t("intake.labels_title"), expanded=bool(st.session_state.get(f"labels_file_{choice}"))):
        st.caption(t("intake.labels_intro"))
        uploaded = st.file_uploader(t("intake.labels_upload"), type=["csv", "tsv", "txt", "xlsx", "xls"],
                                    key=f"upload_labels_{choice}",
                                    help=t("data.upload_help", limit=MAX_FILE_BYTES // 2**20))
        if uploaded is not None and st.session_state.get(f"labels_last_{choice}") != uploaded.file_id:
            st.session_state[f"labels_last_{choice}"] = uploaded.file_id
            st.session_state[f"labels_file_{choice}"] = uploads().save(uploaded.getvalue(), uploaded.name).upload_id
        recent = {item.upload_id: item for item in uploads().recent() if f"upload:{item.upload_id}" != choice}
        names = {NO_LABELS_FILE: t("intake.labels_none"), **{key: item.file_name for key, item in recent.items()}}
        if st.session_state.get(f"labels_file_{choice}") not in names:
            forget_widget_state(f"labels_file_{choice}")
        chosen = st.selectbox(t("intake.labels_file"), list(names), format_func=names.__getitem__,
                              key=f"labels_file_{choice}")
        if chosen == NO_LABELS_FILE:
            return frame, None
        labels_name = recent[chosen].file_name
        try:
            labels = read_table(recent[chosen].path.read_bytes(), labels_name, None, None, None, None).frame
        except EduTuneError as error:
            show_error(error)
            mark_not_ready(file_name)
            st.stop()
        joined = join_form(frame, labels, file_name, labels_name, choice)
    return joined.frame, joined.summary() | {"dropped": joined.dropped_rows}


def join_form(frame: pd.DataFrame, labels: pd.DataFrame, file_name: str, labels_name: str,
              choice: str) -> intake.LabelJoin:
    text_proposal, label_proposal = intake.propose_join_columns(frame, labels)
    left, right = st.columns(2)
    text_options, label_options = list(frame.columns), list(labels.columns)
    text_id = left.selectbox(t("intake.text_id", file=file_name), text_options, key=f"labels_text_id_{choice}",
                             help=t("intake.id_help"),
                             **default_index(f"labels_text_id_{choice}", text_options, text_proposal))
    label_id = right.selectbox(t("intake.label_id", file=labels_name), label_options,
                               key=f"labels_label_id_{choice}", help=t("intake.id_help"),
                               **default_index(f"labels_label_id_{choice}", label_options, label_proposal))
    try:
        joined = join_labels(frame, labels, text_id, label_id, file_name, labels_name)
    except EduTuneError as error:
        show_error(error)
        mark_not_ready(file_name)
        st.stop()
    st.success(t("intake.joined", texts_file=file_name, labels_file=labels_name, rows=joined.matched_rows))
    if joined.unmatched_texts:
        st.warning(t("intake.unmatched_texts", count=joined.unmatched_texts, file=file_name,
                     ids=joined.unmatched_text_ids))
    if joined.unmatched_labels:
        st.warning(t("intake.unmatched_labels", count=joined.unmatched_labels, file=labels_name,
                     ids=joined.unmatched_label_ids))
    if joined.repeated_label_rows:
        st.caption(t("intake.repeated_labels", count=joined.repeated_label_rows, file=labels_name))
    if joined.renamed:
        st.caption(t("intake.renamed", columns=", ".join(f"{old} → {new}" for old, new in joined.renamed.items())))
    return joined


def privacy_section(frame: pd.DataFrame, choice: str) -> tuple[pd.DataFrame, dict, dict[str, str]]:
    """Show the personal data found and apply the action chosen for each column.

    Returns the protected table, the summary for the run record and the action of each column.
    """
    st.subheader(t("privacy.title"))
    report = scan_privacy(frame)
    if not report.findings:
        st.caption(t("privacy.none"))
        return frame, privacy.apply_privacy(frame, report, {})[1], {}
    st.warning(t("privacy.found"))
    actions = {}
    action_labels = option_labels("privacy.action", privacy.ACTIONS)
    for finding in report.findings:
        left, right = st.columns([3, 2])
        kinds = ", ".join(t("privacy.kind_count", kind=t(f"privacy.kind.{kind}"), count=count)
                          for kind, count in finding.kinds.items())
        key = "privacy.finding_examples" if finding.examples else "privacy.finding"
        left.markdown(t(key, column=escape_markdown(finding.column), kinds=kinds,
                        examples=escape_markdown(", ".join(finding.examples))))
        actions[finding.column] = right.selectbox(
            t("privacy.action", column=finding.column), privacy.ACTIONS, format_func=action_labels,
            key=f"privacy_{choice}_{finding.column}", label_visibility="collapsed")
    protected, summary = apply_privacy(frame, report, actions)
    counts = {action: sum(1 for chosen in actions.values() if chosen == action) for action in privacy.ACTIONS}
    st.caption(t("privacy.applied", pseudonymised=counts[privacy.PSEUDONYMISE], dropped=counts[privacy.DROP],
                 kept=counts[privacy.KEEP]))
    return protected, summary, actions


def escape_markdown(text: str) -> str:
    """Escape the characters that Streamlit's Markdown would format, such as the * of masked values."""
    return "".join(f"\\{character}" if character in MARKDOWN_CHARACTERS else character for character in str(text))


def default_index(key: str, options: list, proposed: object) -> dict:
    """Propose an option only on first draw; later the widget's own state decides."""
    if key in st.session_state:
        return {}
    return {"index": options.index(proposed) if proposed in options else 0}


def mapping_form(frame: pd.DataFrame, choice: str,
                 allow_decimal_comma: bool) -> tuple[ColumnMapping, pd.DataFrame, dict[str, int]]:
    """Let the user map the columns; return the mapping, the table and the rows dropped on request."""
    forget_mapping_of_other_columns(frame, choice)
    proposal = propose_mapping(frame)
    columns = list(frame.columns)
    left, right = st.columns(2)
    # "" stands for "no text column", because a selectbox shows a None option as empty.
    text_options = [NO_TEXT, *[column for column in columns if not is_numeric(frame[column])]]
    text_labels = {option: str(option) for option in text_options} | {NO_TEXT: t("map.no_text")}
    text_column = left.selectbox(
        t("map.text_column"), text_options, key=f"text_{choice}", help=t("map.text_column_help"),
        **default_index(f"text_{choice}", text_options, proposal.text_column or NO_TEXT),
        format_func=text_labels.__getitem__) or None
    target_options = [column for column in columns if column != text_column]
    target = right.selectbox(t("map.target"), target_options, key=f"target_{choice}", help=t("map.target_help"),
                             **default_index(f"target_{choice}", target_options, proposal.target))
    ignore = st.multiselect(t("map.ignore"), [column for column in columns if column not in (target, text_column)],
                            key=f"ignore_{choice}", help=t("map.ignore_help"))
    groups, student = group_and_student_columns(columns, target, text_column, choice)
    frame, dropped = non_numeric_target(frame, target, choice, allow_decimal_comma)

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
    scale = score_scale(frame[target], target, choice) if problem == REGRESSION and numeric_target else {}
    mapping = ColumnMapping(target=target, text_column=text_column, ignore_columns=ignore, problem=problem,
                            pass_mark=pass_mark, group_columns=groups, student_column=student, **scale)
    return mapping, frame, dropped


def group_and_student_columns(columns: list, target: str, text_column: str | None,
                              choice: str) -> tuple[list[str], str | None]:
    """Let the user pick the group columns (results per group) and the student column (splits by student)."""
    others = [column for column in columns if column not in (target, text_column)]
    left, right = st.columns(2)
    groups = left.multiselect(t("intake.group_columns"), others, key=f"groups_{choice}",
                              help=t("intake.group_columns_help"))
    student_options = [NO_STUDENT, *others]
    student_labels = {option: str(option) for option in student_options} | {NO_STUDENT: t("intake.no_student")}
    student = right.selectbox(t("intake.student_column"), student_options, key=f"student_{choice}",
                              format_func=student_labels.__getitem__, help=t("intake.student_column_help"),
                              **default_index(f"student_{choice}", student_options, NO_STUDENT))
    return list(groups), student or None


def score_scale(values: pd.Series, target: str, choice: str) -> dict:
    """Let the user state the rubric of a score target: lowest and highest score and the step.

    Returns the mapping fields, or an empty dict for values that are not on steps of 0.5.
    """
    present = values.dropna().astype(float)
    if present.empty or not bool(((present * 2) % 1 == 0).all()):
        return {}
    low, high = float(present.min()), float(present.max())
    whole = bool((present % 1 == 0).all())
    st.markdown(f"**{t('intake.score_scale')}**")
    cells = st.columns(3)
    keys = {name: f"score_{name}_{choice}_{target}" for name in ("min", "max", "step")}
    step = cells[2].selectbox(t("intake.score_step"), SCORE_STEPS, key=keys["step"], format_func=lambda value: f"{value:g}",
                              help=t("intake.score_scale_help"),
                              **default_index(keys["step"], list(SCORE_STEPS), 1.0 if whole else 0.5))
    score_min = cells[0].number_input(t("intake.score_min"), step=step, key=keys["min"],
                                      **({} if keys["min"] in st.session_state else {"value": low}))
    score_max = cells[1].number_input(t("intake.score_max"), step=step, key=keys["max"],
                                      **({} if keys["max"] in st.session_state else {"value": high}))
    return {"score_min": float(score_min), "score_max": float(score_max), "score_step": float(step)}


def forget_mapping_of_other_columns(frame: pd.DataFrame, choice: str) -> None:
    """Clear the mapping widgets when a labels file added columns or a privacy choice dropped a
    mapped one, so the target and problem are proposed again for the new table."""
    columns = tuple(map(str, frame.columns))
    known = st.session_state.get(f"mapping_columns_{choice}")
    st.session_state[f"mapping_columns_{choice}"] = columns
    if known is None or known == columns:
        return
    removed = set(known) - set(columns)
    mapped = {st.session_state.get(f"text_{choice}"), st.session_state.get(f"target_{choice}"),
              st.session_state.get(f"student_{choice}"), *st.session_state.get(f"ignore_{choice}", []),
              *st.session_state.get(f"groups_{choice}", [])}
    if not set(columns) - set(known) and not mapped & removed:
        return
    prefixes = tuple(f"{prefix}{choice}" for prefix in MAPPING_PREFIXES)
    forget_widget_state(*[key for key in st.session_state if str(key).startswith(prefixes)])


def forget(key: str) -> None:
    forget_widget_state(key)


def non_numeric_target(frame: pd.DataFrame, target: str, choice: str,
                       allow_decimal_comma: bool) -> tuple[pd.DataFrame, dict[str, int]]:
    """Show the empty and non-numeric cells of a score column and drop their rows when the user ticks the box."""
    found = intake.find_non_numeric_target(frame, target, allow_decimal_comma=allow_decimal_comma)
    if found is None:
        return frame, {}
    if found.non_numeric:
        st.warning(t("intake.non_numeric_found", column=target, count=found.non_numeric, missing=found.missing,
                     values=", ".join(f"“{value}”" for value in found.values)))
    else:
        st.warning(t("intake.missing_target_found", column=target, count=found.missing,
                     rows=", ".join(str(row) for row, _ in found.rows)))
    rows = [(row, value if value.strip() else t("intake.empty_value")) for row, value in found.rows]
    st.dataframe(pd.DataFrame(rows, columns=[t("intake.row"), t("intake.value")]), hide_index=True)
    # Dropping the rows changes the target from text to numbers, so the problem type is proposed again.
    if not st.checkbox(t("intake.non_numeric_drop", count=found.total, column=target),
                       key=f"drop_target_{choice}_{target}", on_change=forget, args=(f"problem_{choice}_{target}",)):
        return frame, {}
    return intake.drop_non_numeric_target(frame, target, allow_decimal_comma=allow_decimal_comma)


def show_summary(frame: pd.DataFrame, mapping: ColumnMapping,
                 earlier_drops: dict[str, int]) -> tuple[PreparedData, DataProfile] | None:
    max_lengths = tuple(sorted({*MAX_LENGTHS, chosen_max_length()}))
    try:
        data, profile = check_data(frame, mapping.to_dict(), earlier_drops, max_lengths)
    except EduTuneError as error:
        show_error(error)
        return None
    st.success(t("map.ready", task=task_name(task_for(mapping)), rows=len(data)))
    if data.labels is not None:
        counts = pd.Series(data.targets).value_counts().sort_index()
        chart = pd.DataFrame({t("map.label"): [data.labels[i] for i in counts.index], t("map.count"): counts.values})
        st.plotly_chart(px.bar(chart, x=t("map.label"), y=t("map.count"), height=250), width="stretch")
    else:
        st.plotly_chart(px.histogram(x=data.targets, nbins=30, height=250,
                                     labels={"x": mapping.target, "count": t("map.count")}), width="stretch")
    if data.score_points:
        st.caption(t("map.score_points", low=f"{data.score_points[0]:g}", high=f"{data.score_points[1]:g}"))
    return data, profile


def chosen_max_length() -> int:
    """Return the max length set on the Train page, or the default before the page was opened or while it is invalid."""
    chosen = st.session_state.get("train_max_length")
    if chosen is None or TrainConfig(max_length=int(chosen)).problems():
        return TrainConfig().max_length
    return int(chosen)


def show_profile(profile: DataProfile) -> None:
    st.subheader(t("profile.title"))
    cells = st.columns(3)
    cells[0].metric(t("profile.rows_source"), profile.source_rows)
    cells[1].metric(t("profile.rows_kept"), profile.kept_rows)
    cells[2].metric(t("profile.rows_dropped"), profile.source_rows - profile.kept_rows)
    for reason, count in profile.dropped.items():
        st.warning(t("map.dropped", count=count, reason=t(reason)))
    if profile.text is not None:
        show_lengths(profile)
    findings = profile.findings(chosen_max_length())
    for finding in findings:
        key = finding.key
        if key == "profile.near_duplicates" and finding.params.get("pairs") == 1:
            # The shared message is written for several pairs.
            key = "data.near_duplicates_one"
        st.warning(t(key, **finding.params))
    if not findings:
        st.caption(t("profile.no_findings"))
    if profile.heavy_imbalance:
        st.info(t("profile.class_weights"))
    st.markdown(f"**{t('profile.missing_title')}**")
    if profile.missing:
        st.dataframe(pd.DataFrame({t("profile.column"): list(profile.missing),
                                   t("profile.missing_count"): list(profile.missing.values())}), hide_index=True)
    else:
        st.caption(t("profile.no_missing"))


def show_lengths(profile: DataProfile) -> None:
    st.markdown(f"**{t('profile.lengths_title')}**")
    left, right = st.columns(2)
    left.plotly_chart(px.histogram(x=profile.text.characters, nbins=40, height=220,
                                   labels={"x": t("profile.characters"), "count": t("map.count")}), width="stretch")
    right.plotly_chart(px.histogram(x=profile.text.tokens, nbins=40, height=220,
                                    labels={"x": t("profile.tokens"), "count": t("map.count")}), width="stretch")
    shares = pd.DataFrame({t("profile.max_length"): list(profile.text.cut_shares),
                           t("profile.cut_share"): [f"{share:.0%}" for share in profile.text.cut_shares.values()]})
    st.dataframe(shares, hide_index=True)
    if profile.text.sampled:
        st.caption(t("profile.tokens_sampled", count=len(profile.text.tokens)))


keep_widget_state(*[key for key in st.session_state if str(key).startswith(WIDGET_PREFIXES)])
setup_page("nav.data")
st.title(t("data.title"))
st.write(t("data.intro"))
chosen = choose_file()
if chosen is None:
    st.info(t("data.no_file"))
    st.stop()
choice, file_name, content = chosen
# The Train page never offers another file's data. The data of this file stays while the
# page runs, because a click can cut the run short (a rerun or a page switch), and that
# must not leave the Train page without the data it had.
if (st.session_state.get("dataset") or {}).get("name") != file_name:
    mark_not_ready(file_name)
recipe = None
finished = False
try:
    options = loading_options(choice)
    table = load_chosen(choice, file_name, content, options)
    show_detected(table)
    frame, join_summary = labels_section(table.frame, file_name, choice)
    frame, privacy_summary, privacy_actions = privacy_section(frame, choice)

    st.subheader(t("map.title"))
    allow_decimal_comma = table.separator != ","
    mapping, frame, target_drops = mapping_form(frame, choice, allow_decimal_comma=allow_decimal_comma)
    earlier_drops = {**(join_summary or {}).get("dropped", {}), **target_drops}
    checked = show_summary(frame, mapping, earlier_drops)
    if checked is not None:
        prepared, profile = checked
        show_profile(profile)
        st.session_state["dataset"] = {
            "frame": frame, "name": file_name, "mapping": mapping, "privacy": privacy_summary,
            "suggest_class_weights": bool(profile.heavy_imbalance),
            "intake": {"labels_join": join_summary, "dropped_before_mapping": earlier_drops},
            "profile": profile.summary(),
        }
        st.session_state.pop(DATA_NOT_READY_KEY, None)
        labels = None
        if join_summary is not None:
            labels = {"upload_id": st.session_state[f"labels_file_{choice}"],
                      "text_id": st.session_state[f"labels_text_id_{choice}"],
                      "label_id": st.session_state[f"labels_label_id_{choice}"]}
        # What a new session needs to build the same table again (see ``dataset`` in pages/common/ui.py).
        source = {"loading": options, "labels": labels, "privacy_actions": privacy_actions,
                  "target": mapping.target, "drop_non_numeric_target": bool(target_drops),
                  "allow_decimal_comma": allow_decimal_comma}
        recipe = {key: value for key, value in st.session_state["dataset"].items() if key != "frame"}
        recipe |= {"mapping": mapping.to_dict(), "source": source}
        st.page_link("pages/train.py", label=t("data.next"), icon="➡️")
    else:
        mark_not_ready(file_name)
    finished = True
finally:
    # A run cut short stores nothing, unless this file is already marked as not prepared
    # (a newly chosen file, or a failure that stopped the page).
    if finished or st.session_state.get(DATA_NOT_READY_KEY) == file_name:
        remember_selection(choice, file_name, recipe)
