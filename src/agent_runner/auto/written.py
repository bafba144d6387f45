"""The record of what sandboxes wrote on the host, and the view of it the AUTO policy asks.

An entry is a path a sandboxed command created or changed (absolute, with symbolic links
in the workspace's own path resolved, so every session on that directory finds it): a
file, or a directory it created, which stands for everything under it. Each says whether
it holds code (:func:`agent_runner.policy.tools.is_code`; a directory counts as code unless
all of it was seen and none was), and an entry with a ``note`` is one the sandbox *may*
have written: the whole workspace when it was too large to track, or while a process the
sandbox left running may still write. Entries stay until the user accepts them, or until
the path no longer exists.

:class:`Written` holds the entries and answers the questions
:class:`agent_runner.policy.SandboxWritten` asks, for one workspace (:class:`View`).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from agent_runner.policy.tools.project import matches


@dataclass(frozen=True)
class Entry:
    """One sandbox-written path."""

    directory: bool
    """A directory the sandbox created: everything under it counts as written."""
    code: bool
    """It holds code, or may (a directory not seen whole)."""
    note: str = ""
    """Why the sandbox *may* have written it (empty: it did)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SandboxWrite:
    """A sandbox-written path as ``Session.sandbox_writes()`` and ``agent-runner trust``
    list it: relative to the workspace (``.`` for the workspace itself), a directory with a
    trailing ``/``."""

    path: str
    directory: bool
    code: bool
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        """One line of ``agent-runner trust``: ``run.sh<TAB>code``."""
        kind = "code" if self.code else "data"
        return f"{self.path}\t{kind}" + (f" (may have written: {self.note})" if self.note else "")


class Written:
    """The entries, by absolute path, with the lookups the policy needs kept cheap."""

    def __init__(self, entries: Mapping[str, Entry] | None = None) -> None:
        self.entries: dict[str, Entry] = dict(entries or {})
        self._keys: list[str] | None = None
        self._names: dict[str, list[str]] | None = None

    def __bool__(self) -> bool:
        return bool(self.entries)

    def changed(self) -> None:
        """Forget what was derived from the entries (call after changing them)."""
        self._keys = None
        self._names = None

    @property
    def keys(self) -> list[str]:
        if self._keys is None:
            self._keys = sorted(self.entries)
        return self._keys

    def named(self, names: frozenset[str]) -> list[str]:
        """The code entries whose name is one of ``names`` (names or ``*.suffix``), and the
        directories holding code (whatever is in them), in order."""
        if self._names is None:
            index: dict[str, list[str]] = {"/": []}
            for key in self.keys:
                entry = self.entries[key]
                if not entry.code:
                    continue
                if entry.directory:
                    index["/"].append(key)
                    continue
                base = os.path.basename(key)
                index.setdefault(base, []).append(key)
                suffix = os.path.splitext(base)[1]
                if suffix:
                    index.setdefault("*" + suffix, []).append(key)
            self._names = index
        found = set(self._names["/"])
        for name in names:
            found.update(self._names.get(name, ()))
        return sorted(found)

    def covering(self, path: str) -> str | None:
        """The entry that is ``path``, else the nearest one holding it: a directory the
        sandbox created, or a link it made (only those can have something under them)."""
        entries = self.entries
        while path not in entries:
            parent = os.path.dirname(path)
            if parent == path:
                return None
            path = parent
        return path

    def add(self, path: str, entry: Entry) -> bool:
        """Record ``path`` unless an entry holding it already says as much; True if added."""
        holder = self.covering(path)
        if holder is not None and holder != path and (self.entries[holder].code or not entry.code):
            return False
        old = self.entries.get(path)
        if old is not None:
            entry = Entry(entry.directory, entry.code or old.code, entry.note and old.note)
            if entry == old:
                return False
        self.entries[path] = entry
        self.changed()
        return True

    def within(self, directory: str) -> Iterator[str]:
        """The entries strictly under ``directory``, in order."""
        keys = self.keys
        start = directory.rstrip("/") + "/"
        index = bisect.bisect_left(keys, start)
        while index < len(keys) and keys[index].startswith(start):
            yield keys[index]
            index += 1

    def remove(self, path: str) -> list[str]:
        """Drop ``path`` and every entry under it; return what was dropped."""
        dropped = ([path] if path in self.entries else []) + list(self.within(path))
        for key in dropped:
            del self.entries[key]
        self.changed()
        return dropped


class View:
    """What one session's policy decisions ask of the record (the
    :class:`agent_runner.policy.SandboxWritten` protocol), for its workspace."""

    def __init__(self, written: Written, workspace: str, path: str | None) -> None:
        self._written = written
        self._logical = os.path.normpath(workspace)
        self._real = os.path.realpath(workspace)
        self._code: tuple[str | None] | None = None
        self.search_path: Sequence[str] = self._relevant_path(path or "")

    # -- paths as the policy sees them and as the record keeps them ----------------------

    def _to_real(self, path: str) -> str:
        logical = self._logical
        if path == logical:
            return self._real
        if path.startswith(logical.rstrip("/") + "/"):
            return self._real.rstrip("/") + path[len(logical.rstrip("/")) :]
        return path

    def show(self, key: str) -> str:
        """How a reason shows a recorded path: relative to the workspace when inside it, a
        directory with a trailing ``/``."""
        shown = self._relative(key)
        if shown == "the workspace" or not self._written.entries[key].directory:
            return shown
        return shown + "/"

    def _relative(self, path: str) -> str:
        real = self._real.rstrip("/")
        if path == self._real:
            return "the workspace"
        return path[len(real) + 1 :] if path.startswith(real + "/") else path

    def _describe(self, path: str, key: str) -> str:
        entry = self._written.entries[key]
        shown = self.show(key) if key == path else self._relative(path)
        if entry.note:
            where = "" if key == path else f", in {self.show(key)}"
            return f"{shown}{where}, which the sandbox may have written ({entry.note})"
        verb = "created" if entry.directory else "wrote"
        if key == path:
            return f"{shown}, which the sandbox {verb}"
        return f"{shown}, in {self.show(key)}, which the sandbox {verb}"

    # -- the protocol ------------------------------------------------------------------

    def covering(self, path: str) -> str | None:
        real = self._to_real(path)
        key = self._written.covering(real)
        return None if key is None else self._describe(real, key)

    def under(self, directory: str, names: frozenset[str] | None = None) -> str | None:
        real = self._to_real(directory)
        written = self._written
        key = written.covering(real)
        if key is not None and written.entries[key].code:
            return self._describe(real, key)
        prefix = real.rstrip("/") + "/"
        if names is None:
            candidates: Iterable[str] = written.within(real)
        else:
            candidates = (key for key in written.named(names) if key.startswith(prefix))
        for key in candidates:
            entry = written.entries[key]
            if entry.code and (
                entry.directory or names is None or matches(os.path.basename(key), names)
            ):
                return self._describe(key, key)
        return None

    def code(self) -> str | None:
        if self._code is None:
            self._code = (self._first_code(),)
        return self._code[0]

    def _first_code(self) -> str | None:
        """The first code entry, those under ``.git`` last (only git runs them)."""
        written = self._written
        key = written.covering(self._real)
        if key is not None and written.entries[key].code:
            entry = written.entries[key]
            return self.show(key) + (f": {entry.note}" if entry.note else "")
        found = [key for key in written.within(self._real) if written.entries[key].code]
        found.sort(key=lambda key: "/.git/" in f"{key}/")
        return self.show(found[0]) if found else None

    def _relevant_path(self, path: str) -> list[str]:
        """``PATH`` up to the last directory that is relative or has sandbox-written files."""
        directories = path.split(":") if path else []
        last = -1
        for index, directory in enumerate(directories):
            if not directory.startswith("/"):
                last = index
                continue
            real = self._to_real(os.path.normpath(directory))
            if self._written.covering(real) is not None or next(
                iter(self._written.within(real)), None
            ):
                last = index
        return [
            self._to_real(os.path.normpath(d)) if d.startswith("/") else d
            for d in directories[: last + 1]
        ]


def listing(written: Written, workspace: str) -> list[SandboxWrite]:
    """The entries in (or holding) ``workspace``, as the user sees them."""
    real = os.path.realpath(workspace)
    view = View(written, workspace, None)
    keys: Iterable[str] = list(written.within(real))
    holder = written.covering(real)
    if holder is not None:
        keys = [holder, *keys]
    out = []
    for key in keys:
        entry = written.entries[key]
        shown = view.show(key)
        out.append(
            SandboxWrite(
                "." if shown == "the workspace" else shown, entry.directory, entry.code, entry.note
            )
        )
    return out
