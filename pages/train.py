"""Train page: pick a model and settings, start a run, watch it live."""

import dataclasses

import streamlit as st

from edutune_core.config import DEFAULT_TABULAR_LEARNING_RATE, DEFAULT_TEXT_LEARNING_RATE, PRESETS, TrainConfig
from edutune_core.i18n import EduTuneError
from edutune_core.memory import estimate_text_training
from edutune_core.models import BUNDLED_MODEL
from edutune_core.optim import pick_device
from edutune_core.runner import create_run
from edutune_core.tasks import TABULAR, task_for
from pages.common.charts import lr_range_figure
from pages.common.advanced import KEYS as ADVANCED_KEYS
from pages.common.advanced import advanced_settings, default_folds, reset_advanced
from pages.common.live import run_panel
from pages.common.models_view import table_warm_start, text_model_choice
from pages.common.sweep_view import sweep_form
from pages.common.ui import (
    config_is_valid,
    data_not_ready,
    dataset,
    keep_widget_state,
    manager,
    option_labels,
    selected_run_id,
    setup_page,
    show_error,
    store,
    t,
    task_name,
)


SETTING_KEYS = ("train_model_source", "train_model_reference", "train_warm_start", "train_preset",
                "train_learning_rate", "train_epochs", "train_batch_size", "train_max_length", "train_seed",
                "train_validation_share", "train_settings_for", "train_settings_data")


def reset_settings(text_task: bool, preset: str) -> None:
    """Fill the setting widgets with the defaults of the task and the preset."""
    defaults = TrainConfig.for_task(text_task)
    values = PRESETS[preset] if text_task else {"epochs": defaults.epochs, "batch_size": defaults.batch_size}
    st.session_state["train_learning_rate"] = DEFAULT_TEXT_LEARNING_RATE if text_task else DEFAULT_TABULAR_LEARNING_RATE
    st.session_state["train_epochs"] = values["epochs"]
    st.session_state["train_batch_size"] = values["batch_size"]
    st.session_state["train_max_length"] = values.get("max_length", defaults.max_length)
    st.session_state["train_seed"] = defaults.seed
    st.session_state["train_validation_share"] = defaults.validation_share
    st.session_state["train_settings_for"] = text_task
    data = dataset() or {}
    reset_advanced(text_task, len(data.get("frame", ())), bool(data.get("suggest_class_weights")))


def apply_preset() -> None:
    """Copy the chosen preset into the epoch, batch size and max length widgets."""
    preset = PRESETS[st.session_state["train_preset"]]
    st.session_state["train_epochs"] = preset["epochs"]
    st.session_state["train_batch_size"] = preset["batch_size"]
    st.session_state["train_max_length"] = preset["max_length"]


def settings_form(text_task: bool) -> TrainConfig:
    # Widgets take their values from the session state only, so a preset can change them.
    if st.session_state.get("train_settings_for") != text_task:
        reset_settings(text_task, st.session_state.get("train_preset", "balanced"))
    data_key = (dataset()["name"], dataset()["mapping"].target)
    if st.session_state.get("train_settings_data") != data_key:
        # New data: propose class weights when the Data page found heavy imbalance, and
        # the fold count that fits the new number of rows.
        st.session_state["adv_class_weights"] = bool(dataset().get("suggest_class_weights"))
        st.session_state["adv_folds"] = default_folds(len(dataset()["frame"]))
        st.session_state["train_settings_data"] = data_key
    data = dataset()
    if text_task:
        model = text_model_choice(data["frame"][data["mapping"].text_column].dropna().astype(str).tolist())
    else:
        model = table_warm_start() or BUNDLED_MODEL
    if text_task:
        st.selectbox(t("train.preset"), list(PRESETS), index=1, key="train_preset", on_change=apply_preset,
                     format_func=option_labels("train.preset", PRESETS), help=t("train.preset_help"))
    # The number fields have no min or max: a browser silently keeps the old value when a
    # typed one is out of range, so every value reaches TrainConfig, whose problems the
    # page lists in the reader's language.
    columns = st.columns(3)
    learning_rate = columns[0].number_input(t("train.learning_rate"), format="%.1e", step=1e-5 if text_task else 1e-4,
                                            key="train_learning_rate", help=t("train.learning_rate_help"))
    epochs = columns[1].number_input(t("train.epochs"), step=1, key="train_epochs", help=t("train.epochs_help"))
    batch_size = columns[2].number_input(t("train.batch_size"), step=1, key="train_batch_size",
                                         help=t("train.batch_size_help"))
    columns = st.columns(3)
    max_length = st.session_state["train_max_length"]
    if text_task:
        max_length = columns[0].number_input(t("train.max_length"), step=1, key="train_max_length",
                                             help=t("train.max_length_help"))
    seed = columns[1].number_input(t("train.seed"), step=1, key="train_seed", help=t("train.seed_help"))
    share = columns[2].slider(t("train.validation_share"), 0.05, 0.5, step=0.05, key="train_validation_share",
                              help=t("train.validation_share_help"))
    advanced = advanced_settings(text_task)
    return TrainConfig.for_task(text_task, model=model.strip(), learning_rate=float(learning_rate), epochs=int(epochs),
                                batch_size=int(batch_size), max_length=int(max_length), seed=int(seed),
                                validation_share=float(share), **advanced)


def memory_note(config: TrainConfig) -> None:
    """Show the estimated memory need, and a warning with smaller settings when it will not fit."""
    try:
        estimate = estimate_text_training(config, pick_device(config.device).type)
    except EduTuneError as error:
        show_error(error)
        return
    if estimate is None or estimate.available is None:
        return
    needed, available = f"{estimate.needed / 2**30:.1f}", f"{estimate.available / 2**30:.1f}"
    if estimate.fits:
        st.caption(t("train.memory_estimate", needed=needed, available=available))
    else:
        st.warning(t("train.memory_warning", needed=needed, available=available,
                     batch_size=max(1, config.batch_size // 2), max_length=max(8, config.max_length // 2)))


def lr_range_result(record) -> None:
    """Show a finished range test and offer its suggestion for the learning-rate box."""
    result = record.summary.get("lr_range_test")
    if not result:
        return
    suggestion = result["suggested_learning_rate"]
    st.plotly_chart(lr_range_figure(result["rates"], result["losses"], suggestion), width="stretch")
    if suggestion is None:
        st.warning(t("lr.no_suggestion"))
        return
    st.success(t("lr.suggested", rate=f"{suggestion:.1e}"))
    st.button(t("lr.use"), key=f"use_lr_{record.run_id}", on_click=use_learning_rate,
              args=(float(f"{suggestion:.1e}"),))


def use_learning_rate(rate: float) -> None:
    # A callback runs before the widgets are drawn, the only time their value may change.
    st.session_state["train_learning_rate"] = rate


def start_run(data: dict, config: TrainConfig) -> None:
    if not config_is_valid(config):
        return
    try:
        # The privacy choices and the profile go into the run's record; they hold counts
        # and column names, never values.
        extra = {key: data[key] for key in ("privacy", "intake", "profile") if data.get(key)}
        record = create_run(store(), data["frame"], data["mapping"], config, data_name=data["name"],
                            extra_summary=extra)
    except EduTuneError as error:
        show_error(error)
        return
    manager().submit(record.run_id)
    st.session_state["run_id"] = record.run_id
    st.rerun()


keep_widget_state(*SETTING_KEYS, *ADVANCED_KEYS)
setup_page("nav.train")
st.title(t("train.title"))
data = dataset()
if data is None:
    failed = data_not_ready()
    if failed:
        st.warning(t("train.data_not_ready", name=failed))
    else:
        st.info(t("train.no_data"))
    st.page_link("pages/data.py", label=t("nav.data"), icon=":material/table_view:")
else:
    task = task_for(data["mapping"])
    st.write(t("train.data_line", name=data["name"], target=data["mapping"].target, task=task_name(task),
               rows=len(data["frame"])))
    with st.container(border=True):
        config = settings_form(task != TABULAR)
        # Invalid settings are listed as soon as they are typed, and no run can start with them.
        valid = config_is_valid(config)
        if task != TABULAR and valid:
            memory_note(config)
        buttons = st.columns([1, 1, 3])
        if buttons[0].button(t("train.start"), type="primary", key="train_start", disabled=not valid):
            start_run(data, config)
        if buttons[1].button(t("lr.find"), key="train_find_lr", help=t("lr.find_help"), disabled=not valid):
            start_run(data, dataclasses.replace(config, lr_range_test=True))
    sweep_form(data, config)

runs = store().list_runs()
run_id = selected_run_id(runs)
if run_id is not None:
    st.subheader(t("train.current_run"))
    run_panel(run_id)
    record = store().get_run(run_id)
    if record.config["train"].get("lr_range_test"):
        lr_range_result(record)
    elif not record.is_active:
        st.page_link("pages/results.py", label=t("train.see_results"), icon=":material/insights:")
