"""The Train page's advanced settings: optimizer, schedule, regularisation, freezing, hardware."""

from __future__ import annotations

import streamlit as st

from edutune_core.config import DEVICES, OPTIMIZERS, PRECISIONS, SCHEDULERS, TRUNCATIONS, TrainConfig
from edutune_core.optim import pick_device
from pages.common.ui import option_labels, t

KEYS = ("adv_optimizer", "adv_scheduler", "adv_warmup", "adv_weight_decay", "adv_clip", "adv_accumulation",
        "adv_patience", "adv_class_weights", "adv_freeze_embeddings", "adv_freeze_layers", "adv_lora_rank",
        "adv_precision", "adv_device", "adv_folds", "adv_truncation")


# Below this many rows a table or text task gets k-fold cross-validation by default,
# because one held-out split of a small class gives too unstable an estimate.
CROSS_VALIDATION_ROWS = 500
DEFAULT_FOLDS = 5


def default_folds(rows: int) -> int:
    """Return the default fold count for a table or text task: 5 below 500 rows, else 0 (one held-out split)."""
    return DEFAULT_FOLDS if rows < CROSS_VALIDATION_ROWS else 0


def reset_advanced(text_task: bool, rows: int, suggest_class_weights: bool) -> None:
    """Fill the advanced widgets with the defaults; tables and texts under 500 rows get 5-fold cross-validation."""
    defaults = TrainConfig()
    values = {
        "adv_optimizer": defaults.optimizer, "adv_scheduler": defaults.scheduler,
        "adv_warmup": defaults.warmup_share, "adv_weight_decay": defaults.weight_decay,
        "adv_clip": defaults.max_grad_norm, "adv_accumulation": defaults.accumulation_steps,
        "adv_patience": defaults.early_stopping_patience, "adv_class_weights": suggest_class_weights,
        "adv_freeze_embeddings": False, "adv_freeze_layers": 0, "adv_lora_rank": 0,
        "adv_precision": defaults.precision, "adv_device": defaults.device, "adv_truncation": defaults.truncation,
        # Cross-validation trains one model per fold, which is slow for a text model on a
        # CPU, but small classes need it for honest numbers. "-" still picks one split.
        "adv_folds": default_folds(rows),
    }
    st.session_state.update(values)


def advanced_settings(text_task: bool) -> dict:
    """Draw the advanced settings and return them as ``TrainConfig`` fields."""
    with st.expander(t("adv.title")):
        first = st.columns(3)
        settings = {
            "optimizer": first[0].selectbox(t("adv.optimizer"), OPTIMIZERS, key="adv_optimizer",
                                            help=t("adv.optimizer_help")),
            "scheduler": first[1].selectbox(t("adv.scheduler"), SCHEDULERS, key="adv_scheduler",
                                            format_func=option_labels("adv.scheduler", SCHEDULERS),
                                            help=t("adv.scheduler_help")),
            "warmup_share": first[2].slider(t("adv.warmup"), 0.0, 0.5, step=0.05, key="adv_warmup",
                                            help=t("adv.warmup_help")),
        }
        second = st.columns(3)
        # No min or max, like the fields on the Train page: TrainConfig checks the ranges
        # and the page shows what is wrong, where a browser would silently keep the old value.
        settings["weight_decay"] = second[0].number_input(t("adv.weight_decay"), step=0.01, key="adv_weight_decay",
                                                          help=t("adv.weight_decay_help"))
        settings["max_grad_norm"] = second[1].number_input(t("adv.clip"), step=0.5, key="adv_clip",
                                                           help=t("adv.clip_help"))
        settings["accumulation_steps"] = int(second[2].number_input(t("adv.accumulation"), step=1,
                                                                    key="adv_accumulation",
                                                                    help=t("adv.accumulation_help")))
        third = st.columns(3)
        settings["early_stopping_patience"] = int(third[0].number_input(t("adv.patience"), step=1, key="adv_patience",
                                                                        help=t("adv.patience_help")))
        settings["folds"] = int(third[1].selectbox(t("adv.folds"), [0, 3, 5, 10], key="adv_folds",
                                                   format_func=lambda folds: str(folds) if folds else "-",
                                                   help=t("adv.folds_help")))
        settings["class_weights"] = third[2].checkbox(t("adv.class_weights"), key="adv_class_weights",
                                                      help=t("adv.class_weights_help"))
        if text_task:
            settings.update(_text_model_settings())
        settings.update(_hardware_settings())
    return settings


def _text_model_settings() -> dict:
    truncation = st.selectbox(t("adv.truncation"), TRUNCATIONS, key="adv_truncation",
                              format_func=option_labels("adv.truncation", TRUNCATIONS), help=t("adv.truncation_help"))
    columns = st.columns(3)
    return {
        "truncation": truncation,
        "freeze_embeddings": columns[0].checkbox(t("adv.freeze_embeddings"), key="adv_freeze_embeddings",
                                                 help=t("adv.freeze_embeddings_help")),
        "freeze_layers": int(columns[1].number_input(t("adv.freeze_layers"), step=1, key="adv_freeze_layers",
                                                     help=t("adv.freeze_layers_help"))),
        "lora_rank": int(columns[2].selectbox(t("adv.lora_rank"), [0, 4, 8, 16, 32], key="adv_lora_rank",
                                              format_func=lambda rank: str(rank) if rank else "-",
                                              help=t("adv.lora_rank_help"))),
    }


def _hardware_settings() -> dict:
    columns = st.columns(3)
    device = columns[0].selectbox(t("adv.device"), DEVICES, key="adv_device", help=t("adv.device_help"))
    precision = columns[1].selectbox(t("adv.precision"), PRECISIONS, key="adv_precision", help=t("adv.precision_help"))
    if pick_device("auto").type == "cpu":
        st.caption(t("adv.cpu_only"))
    return {"device": device, "precision": precision}
