"""Run filters and the editor for run names, tags and notes, used on the Compare page."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from edutune_core.labels import LabelStore, filter_runs
from edutune_core.runstore import RunRecord
from pages.common.ui import status_name, store, t


def run_filters(runs: list[RunRecord]) -> list[RunRecord]:
    """Draw the dataset, model, tag and status filters and return the runs that pass."""
    labels = LabelStore(store()).get_all()
    all_tags = sorted({tag for label in labels.values() for tag in label.tags})
    statuses = sorted({record.status for record in runs})
    status_labels = {status: status_name(status) for status in statuses}
    with st.expander(t("labels.filters")):
        columns = st.columns(4)
        datasets = columns[0].multiselect(t("labels.dataset"), sorted({record.data_name for record in runs}),
                                          key="filter_datasets")
        models = columns[1].multiselect(t("labels.model"), sorted({record.model for record in runs}),
                                        key="filter_models")
        tags = columns[2].multiselect(t("labels.tags"), all_tags, key="filter_tags")
        chosen_statuses = columns[3].multiselect(t("labels.status"), statuses, key="filter_statuses",
                                                 format_func=status_labels.__getitem__)
    return filter_runs(runs, labels, datasets=datasets, models=models, tags=tags, statuses=chosen_statuses)


def label_editor(records: list[RunRecord]) -> None:
    """Let the user rename the chosen runs and set their tags and notes."""
    labels_store = LabelStore(store())
    labels = labels_store.get_all()
    name_column, tags_column, note_column = t("labels.name"), t("labels.tags_comma"), t("labels.note")
    table = pd.DataFrame({
        "run_id": [record.run_id for record in records],
        name_column: [record.name for record in records],
        tags_column: [", ".join(labels[record.run_id].tags) if record.run_id in labels else "" for record in records],
        note_column: [labels[record.run_id].note if record.run_id in labels else "" for record in records],
    })
    with st.expander(t("labels.edit")):
        edited = st.data_editor(table, hide_index=True, disabled=["run_id"], key="labels_editor", width="stretch")
        if st.button(t("labels.save"), key="labels_save"):
            for row in edited.itertuples(index=False):
                labels_store.save(row[0], name=row[1], tags=str(row[2]).split(","), note=str(row[3]))
            st.rerun()
