"""Uploaded files kept on disk, so a refresh or a restart does not lose them."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

_INDEX = "index.json"
_SELECTION = "selection.json"
MAX_RECENT = 20


@dataclass
class SavedUpload:
    """One saved upload: its original name, where its bytes are and when it came."""

    upload_id: str
    file_name: str
    path: Path
    saved_at: float


class UploadStore:
    """A folder of uploaded files named by content hash, with a small JSON index."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def save(self, data: bytes, file_name: str) -> SavedUpload:
        """Store ``data`` once per content and name; saving the same file again only refreshes its time."""
        upload_id = hashlib.sha256(data + file_name.encode("utf-8")).hexdigest()[:16]
        path = self.folder / f"{upload_id}.bin"
        if not path.exists():
            path.write_bytes(data)
        entries = [entry for entry in self._read_index() if entry["upload_id"] != upload_id]
        entries.insert(0, {"upload_id": upload_id, "file_name": file_name, "saved_at": time.time()})
        self._write_index(entries[:MAX_RECENT])
        return SavedUpload(upload_id, file_name, path, entries[0]["saved_at"])

    def recent(self) -> list[SavedUpload]:
        """Return saved uploads, newest first, skipping any whose file was removed."""
        uploads = []
        for entry in self._read_index():
            path = self.folder / f"{entry['upload_id']}.bin"
            if path.exists():
                uploads.append(SavedUpload(entry["upload_id"], entry["file_name"], path, entry["saved_at"]))
        return uploads

    def save_selection(self, selection: dict) -> None:
        """Store the last data choice (file, loading options, column mapping), replacing the earlier one.

        ``selection`` must be JSON-serialisable. The uploads stay where they are; the
        selection names them by their choice key.
        """
        self._write_json(_SELECTION, selection)

    def last_selection(self) -> dict | None:
        """Return the selection stored by ``save_selection``, or None when there is none or it is unreadable."""
        selection = self._read_json(_SELECTION)
        return selection if isinstance(selection, dict) else None

    def _read_index(self) -> list[dict]:
        entries = self._read_json(_INDEX)
        return entries if isinstance(entries, list) else []

    def _write_index(self, entries: list[dict]) -> None:
        self._write_json(_INDEX, entries)

    def _read_json(self, name: str) -> object:
        path = self.folder / name
        if not path.exists():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None

    def _write_json(self, name: str, value: object) -> None:
        # Written beside the file and renamed over it, so a reader never sees half a file.
        temporary = self.folder / f"{name}.tmp"
        temporary.write_text(json.dumps(value, ensure_ascii=False), encoding="utf-8")
        temporary.replace(self.folder / name)


def user_folder(root: Path | str, user: str | None) -> Path:
    """Return the uploads folder of ``user`` under ``root``, or ``root`` itself for no user.

    The folder is named by a hash of the name, so any name (Chinese characters, a slash)
    makes a safe folder name.
    """
    if user is None:
        return Path(root)
    return Path(root) / "users" / hashlib.sha256(user.encode("utf-8")).hexdigest()[:16]
