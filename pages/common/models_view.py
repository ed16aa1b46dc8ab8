"""The Train page's model picker: sources, the catalog, the language check and warm starts."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from edutune_core.catalog import catalog_rows, check_language
from edutune_core.char_model import CHAR_MODEL
from edutune_core.models import BUNDLED_MODEL
from edutune_core.runstore import COMPLETED, STOPPED
from edutune_core.tasks import TABULAR
from pages.common.ui import option_labels, store, t

MODEL_SOURCES = ("bundled", "char", "hub", "folder")


@st.cache_data(show_spinner=False, max_entries=32)
def cached_language_check(reference: str, texts: tuple[str, ...]):
    return check_language(reference, list(texts))


def text_model_choice(texts: list[str]) -> str:
    """Draw the text-model picker and return the model reference."""
    source = st.radio(t("train.model_source"), MODEL_SOURCES, horizontal=True, key="train_model_source",
                      format_func=option_labels("train.model_source", MODEL_SOURCES))
    if source == "bundled":
        st.caption(t("train.bundled_help"))
        reference = BUNDLED_MODEL
    elif source == "char":
        st.caption(t("models.char_help"))
        reference = CHAR_MODEL
    else:
        reference = st.text_input(t(f"train.model_reference.{source}"), key="train_model_reference",
                                  help=t(f"train.model_reference_help.{source}")).strip()
    catalog_table(texts)
    if reference and reference != CHAR_MODEL:
        language_note(reference, texts)
    return reference


def catalog_table(texts: list[str]) -> None:
    from edutune_core.catalog import text_language

    rows = catalog_rows(text_language(texts))
    availability = option_labels("models.available", ("bundled", "local_folder", "cached", "download"))
    table = pd.DataFrame({
        t("models.model"): [row["model_id"] for row in rows],
        t("models.languages"): [", ".join(row["languages"]) for row in rows],
        t("models.size"): [f"{row['parameters'] / 1e6:.0f}M" for row in rows],
        t("models.licence"): [row["licence"] for row in rows],
        t("models.availability"): [availability(row["availability"]) for row in rows],
        t("models.speed"): [f"~{row['essays_per_second']:.1f}" for row in rows],
        t("models.note"): [t(row["note_key"]) for row in rows],
    })
    with st.expander(t("models.catalog")):
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(t("models.speed_note"))


def language_note(reference: str, texts: list[str]) -> None:
    check = cached_language_check(reference, tuple(texts[:200]))
    if check is None or check.covered:
        return
    st.warning(t("models.language_warning", model=reference, share=f"{check.unknown_share:.0%}",
                 language=t(f"models.language.{check.language}"),
                 recommended=", ".join(check.recommended) or "-"))


def table_warm_start() -> str | None:
    """Offer to continue from an earlier table run; return its folder or None."""
    earlier = [record for record in store().list_runs()
               if record.task == TABULAR and record.status in (COMPLETED, STOPPED)
               and (record.run_dir / "model" / "table_model.json").exists()]
    if not earlier:
        return None
    labels = {None: t("models.no_warm_start"), **{str(record.run_dir): record.name for record in earlier}}
    choice = st.selectbox(t("models.warm_start"), list(labels), format_func=labels.__getitem__,
                          key="train_warm_start", help=t("models.warm_start_help"))
    return choice
