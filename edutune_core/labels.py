"""Names, tags and notes that researchers give their runs, and filters over them."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass, field

from edutune_core.runstore import RunRecord, RunStore

_SCHEMA = "CREATE TABLE IF NOT EXISTS run_labels (run_id TEXT PRIMARY KEY, tags_json TEXT NOT NULL, note TEXT NOT NULL)"


@dataclass
class RunLabels:
    """Tags and a free-text note of one run."""

    tags: list[str] = field(default_factory=list)
    note: str = ""


class LabelStore:
    """Run labels kept in the run store's SQLite database, in a table of their own."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        with closing(sqlite3.connect(store.db_path, timeout=30)) as connection, connection:
            connection.execute(_SCHEMA)

    def get_all(self) -> dict[str, RunLabels]:
        with closing(sqlite3.connect(self.store.db_path, timeout=30)) as connection:
            rows = connection.execute("SELECT run_id, tags_json, note FROM run_labels").fetchall()
        return {run_id: RunLabels(json.loads(tags), note) for run_id, tags, note in rows}

    def save(self, run_id: str, *, name: str, tags: list[str], note: str) -> None:
        """Rename a run and replace its tags and note; blank tags are dropped."""
        clean_tags = sorted({tag.strip() for tag in tags if tag.strip()})
        with closing(sqlite3.connect(self.store.db_path, timeout=30)) as connection, connection:
            connection.execute("INSERT INTO run_labels VALUES (?, ?, ?) ON CONFLICT(run_id) DO UPDATE SET "
                               "tags_json = excluded.tags_json, note = excluded.note",
                               (run_id, json.dumps(clean_tags, ensure_ascii=False), note.strip()))
            if name.strip():
                connection.execute("UPDATE runs SET name = ? WHERE run_id = ?", (name.strip(), run_id))


def filter_runs(records: list[RunRecord], labels: dict[str, RunLabels], *, datasets=(), models=(), tags=(),
                statuses=()) -> list[RunRecord]:
    """Keep the runs that match every non-empty filter; a run matches ``tags`` if it has any of them."""
    kept = []
    for record in records:
        run_tags = set(labels.get(record.run_id, RunLabels()).tags)
        if datasets and record.data_name not in datasets:
            continue
        if models and record.model not in models:
            continue
        if statuses and record.status not in statuses:
            continue
        if tags and not run_tags & set(tags):
            continue
        kept.append(record)
    return kept
