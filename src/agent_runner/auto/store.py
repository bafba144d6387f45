"""The record of sandbox-written paths on disk: one file per machine (per state directory).

What a sandbox wrote stays untrusted beyond the session that saw it: the next session on
the same workspace, another ``agent-runner exec --mode auto`` (a new process each time)
and ``agent-runner trust`` all read the same record. It is one JSON file of absolute
paths, ``.sandbox-writes.json`` in the state directory (``$STIGMER_STATE_DIR``, default
``~/.stigmer/sessions``; a session id cannot start with a dot, so it never collides),
readable by its owner only, replaced atomically, and changed under an exclusive lock
(``fcntl.flock``) so that concurrent runners add to it rather than overwrite each other.
Each process keeps one copy in memory and rereads the file only when it changed (one
``stat`` before each decision), so an acceptance in another terminal applies at once.
Entries whose path no longer exists are dropped when the file is read.

A store that cannot be written (a read-only home) keeps the record in memory for the
process and says so once in the log: the session is as safe, only the record does not
outlive it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from agent_runner.auto.written import Entry, Written
from agent_runner.session_store import STATE_DIR_VARIABLE

FILE_NAME = ".sandbox-writes.json"
_VERSION = 1
_log = logging.getLogger(__name__)
_stores: dict[Path, WriteStore] = {}


def default_directory() -> Path:
    explicit = os.environ.get(STATE_DIR_VARIABLE)
    return Path(explicit).expanduser() if explicit else Path.home() / ".stigmer" / "sessions"


class WriteStore:
    """The machine's record of sandbox-written paths, shared by this process's sessions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = Written()
        self.version = 0
        """Counts changes, so views built on an older record are rebuilt."""
        self._seen: tuple[int, int, int] | None = None
        self._warned = False

    @classmethod
    def default(cls) -> WriteStore:
        """The store in the state directory; one instance per file in this process."""
        path = default_directory() / FILE_NAME
        store = _stores.get(path)
        if store is None:
            store = _stores[path] = cls(path)
        return store

    def current(self) -> Written:
        """The record, reread first if another process changed the file."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            seen = None
        except OSError:
            return self.written
        else:
            seen = (st.st_ino, st.st_size, st.st_mtime_ns)
        if seen != self._seen:
            self._load(seen)
        return self.written

    def update(self, change: Callable[[Written], Any]) -> Any:
        """Apply ``change`` to the freshest record and write it back; returns its result."""
        applied = False
        try:
            with self._locked():
                self._load(self._stat())
                result, applied = change(self.written), True
                self._save()
                return result
        except OSError as error:
            if not self._warned:
                self._warned = True
                _log.warning(
                    "cannot write %s (%s): what the sandbox wrote is tracked in this process only",
                    self.path,
                    error,
                )
            if not applied:
                result = change(self.written)
            self.written.changed()
            self.version += 1
            return result

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path.with_suffix(".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _load(self, seen: tuple[int, int, int] | None) -> None:
        entries: dict[str, Entry] = {}
        if seen is not None:
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                raw = data["written"] if data.get("version") == _VERSION else {}
                entries = {
                    path: Entry(bool(e["directory"]), bool(e["code"]), str(e.get("note", "")))
                    for path, e in raw.items()
                    if os.path.lexists(path)
                }
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                # Unreadable: keep what this process knew rather than trust nothing was written.
                return
        merged = Written(entries)
        if self._seen is None and seen is None:
            merged = self.written  # the file never existed: keep memory-only entries
        self.written = merged
        self._seen = seen
        self.version += 1

    def _save(self) -> None:
        payload = {
            "version": _VERSION,
            "written": {path: e.to_dict() for path, e in sorted(self.written.entries.items())},
        }
        temporary = self.path.with_suffix(f".{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=1)
        os.replace(temporary, self.path)
        self._seen = self._stat()
        self.written.changed()
        self.version += 1
