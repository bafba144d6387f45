"""What an AUTO session does around its commands so the host never runs what the sandbox
wrote, and how the user accepts those writes.

Around each sandboxed command, when the sandbox writes the host's workspace (the ``bind``
workspace; ``copy`` and ``none`` never write it), the session takes a snapshot before and
compares after (:mod:`~.snapshot`), and adds what changed to the machine's record
(:mod:`~.store`). A command that may leave processes running (``cmd &``, ``nohup``...)
makes the whole workspace count as written: those processes may write after the
comparison. Before each decision the policy gets a view of the record
(:meth:`Quarantine.policy_view`). LOCAL and SANDBOX sessions have no quarantine and pay
nothing; an AUTO session pays one ``stat`` per decision while the record is empty, and the
two walks only around its sandboxed commands.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable

from agent_runner.auto import snapshot
from agent_runner.auto.store import WriteStore
from agent_runner.auto.written import Entry, SandboxWrite, View, Written, listing
from agent_runner.errors import InvalidSetting

NOTE_LIMIT = 3
"""Sandbox-written paths a command's reason names (the rest are counted)."""
BACKGROUND = "the command left a process running in the sandbox, which may still write"


class Quarantine:
    """One AUTO session's side of the record, for its workspace on the host."""

    def __init__(
        self,
        workspace: str,
        *,
        tracked: bool,
        store: WriteStore | None = None,
        limits: snapshot.Limits | None = None,
    ) -> None:
        self.workspace = os.path.abspath(workspace)
        self.root = os.path.realpath(self.workspace)
        self.tracked = tracked
        """The sandbox writes the host's workspace (``bind``), so its commands are watched."""
        self.store = store if store is not None else WriteStore.default()
        self.limits = limits or snapshot.Limits()
        self._view: tuple[int, str | None, View] | None = None

    # -- deciding ------------------------------------------------------------------------

    def policy_view(self, path: str | None) -> View | None:
        """What the policy needs for the next decision; None while nothing is recorded.

        ``path`` is the host shell's ``PATH`` (command names found through a directory the
        sandbox wrote are checked too).
        """
        written = self.store.current()
        if not written:
            return None
        cached = self._view
        if cached is not None and cached[0] == self.store.version and cached[1] == path:
            return cached[2]
        view = View(written, self.workspace, path)
        self._view = (self.store.version, path, view)
        return view

    # -- around a sandboxed command ------------------------------------------------------

    async def before(self) -> snapshot.Snapshot | None:
        """The workspace before a sandboxed command (None when the sandbox cannot write it)."""
        if not self.tracked:
            return None
        skip = self._skip(self.store.current())
        return await asyncio.to_thread(snapshot.take, self.root, skip, self.limits)

    async def after(self, before: snapshot.Snapshot | None, command: str) -> list[str]:
        """Record what the command wrote; return the notes for its reason."""
        if before is None:
            return []
        from agent_runner.policy import leaves_processes

        skip = self._skip(self.store.current())
        found = await asyncio.to_thread(snapshot.changes, before, self.root, skip, self.limits)
        if found.overflow is not None:
            return self.hold_workspace(found.overflow)
        if leaves_processes(command):
            return self.hold_workspace(BACKGROUND)
        entries = {self._absolute(rel): entry for rel, entry in found.written.items()}
        if not entries:
            return []
        added: list[str] = self.store.update(lambda written: _add(written, entries))
        return [self._note(added, None)] if added else []

    def hold_workspace(self, why: str) -> list[str]:
        """Count all of the workspace as sandbox-written (``why``: for the reason), as when a
        process the sandbox runs may write at any time; return the note for the reason."""
        if not self.tracked:
            return []
        entries = {self.root: Entry(directory=True, code=True, note=why)}
        added: list[str] = self.store.update(lambda written: _add(written, entries))
        return [self._note(added, why)] if added else []

    def _skip(self, written: Written) -> snapshot.Skip:
        """Directories not walked: those recorded as holding code (untrusted already)."""
        root = self.root

        def skip(relative: str) -> bool:
            key = written.covering(f"{root}/{relative}")
            return key is not None and written.entries[key].code

        return skip

    def _absolute(self, relative: str) -> str:
        return os.path.join(self.root, relative)

    def _note(self, added: list[str], whole: str | None) -> str:
        if whole is not None:
            return (
                f"all of the workspace counts as sandbox-written ({whole}): the host runs "
                "none of its code until you accept it (agent-runner trust)"
            )
        view = View(self.store.written, self.workspace, None)
        shown = [view.show(key) for key in added[:NOTE_LIMIT]]
        more = f" and {len(added) - NOTE_LIMIT} more" if len(added) > NOTE_LIMIT else ""
        return (
            f"sandbox-written, not run on the host until accepted (agent-runner trust): "
            f"{', '.join(shown)}{more}"
        )

    # -- the user's say ------------------------------------------------------------------

    def writes(self) -> list[SandboxWrite]:
        """What the sandbox wrote in (or over) the workspace that nobody accepted."""
        return listing(self.store.current(), self.workspace)

    def accept(self, paths: Iterable[str | os.PathLike[str]] | None = None) -> list[str]:
        """Trust what the sandbox wrote at ``paths`` (relative to the workspace, or absolute;
        a directory accepts everything under it) or, with None, everything in the workspace.
        Returns what was accepted, as listed. A path inside a directory the sandbox created
        or a workspace held whole cannot be accepted alone (accept the holder)."""
        targets = [self.workspace] if paths is None else [self._target(p) for p in paths]
        accepted: list[str] = self.store.update(lambda written: self._accept(written, targets))
        return accepted

    def _target(self, path: str | os.PathLike[str]) -> str:
        return os.path.normpath(os.path.join(self.workspace, os.fspath(path)))

    def _accept(self, written: Written, targets: list[str]) -> list[str]:
        view = View(written, self.workspace, None)
        accepted: list[str] = []
        for target in targets:
            real = _real_target(target, self.workspace, self.root)
            holder = written.covering(real)
            if holder is not None and holder != real:
                raise InvalidSetting(
                    f"{_relative(target, self.workspace)} is inside {view.show(holder)}, which "
                    f"the sandbox wrote as a whole: accept {view.show(holder)} instead"
                )
            keys = [*([real] if holder == real else []), *written.within(real)]
            accepted.extend(view.show(key) for key in keys)
            written.remove(real)
        return accepted


def _relative(path: str, workspace: str) -> str:
    return "the workspace" if path == workspace else os.path.relpath(path, workspace)


def _add(written: Written, entries: dict[str, Entry]) -> list[str]:
    return [path for path, entry in sorted(entries.items()) if written.add(path, entry)]


def _real_target(target: str, workspace: str, root: str) -> str:
    """``target`` (a path the user typed, under the workspace's name) as the record keeps it."""
    if target == workspace:
        return root
    prefix = workspace.rstrip("/") + "/"
    if target.startswith(prefix):
        return os.path.join(root, target[len(prefix) :])
    return os.path.realpath(target)
