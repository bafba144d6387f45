"""What a sandboxed command created or changed in the host's workspace.

Taken on the host, around the command: a snapshot before it (path -> inode, mode, size,
mtime and ctime, with ``os.scandir`` and one ``lstat`` per entry) and a second walk after
it that compares as it goes. A path that is new, or whose identity or any of those values
differs, was written while the command ran. The ctime is what makes this hold against a
hostile sandbox: a command can set a file's mtime back (``touch -d``) and keep its size,
but every write, ``chmod`` or rename sets the ctime to the kernel's clock, which the
container cannot change. That clock is coarse (a tick, a few milliseconds), so a file whose
ctime falls within :data:`HOT_NS` of the first walk could be rewritten in the same tick
without its ctime moving: such a file counts as written. Asking the sandbox instead
(``find -newer`` a marker) would cost less on big trees, but its answer would come from the
side being checked.

The common sandboxed command is an install that writes thousands of files into a new
directory (``node_modules``, ``.venv``). The walk after the command does not descend into
a directory that did not exist before: the directory is recorded whole, and only its first
:attr:`Limits.look_into` entries are read, to tell whether it holds code (when they run
out, it counts as code). Directories already recorded as holding code are not walked
either (whatever is in them is untrusted already), nor ``.git/objects`` (data git
addresses by content; see the threat model in ``docs/sandbox/auto-mode.md``).

Bounded: at most :attr:`Limits.entries` entries and :attr:`Limits.seconds` per walk. A walk
that runs out says so (``overflow``), and the caller fails safe: the whole workspace
counts as sandbox-written until the user accepts it. Measured: ``docs/performance.md``.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from agent_runner.auto.written import Entry
from agent_runner.policy.tools.project import is_code

Stat = tuple[int, int, int, int, int]
"""inode, mode, size, mtime_ns, ctime_ns."""

HOT_NS = 20_000_000
"""Longer than a kernel clock tick (1 to 10 ms): files changed this close before the first
walk may change again unseen."""

Skip = Callable[[str], bool]
"""Whether a directory (relative path) is left out of the walk."""


@dataclass(frozen=True)
class Limits:
    entries: int = 50_000
    """Entries one walk may look at (about 0.2 s a walk here; docs/performance.md)."""
    seconds: float = 2.0
    """Time one walk may take (a slow or network file system)."""
    look_into: int = 256
    """Entries of a directory the command created read to tell whether it holds code."""
    look_into_total: int = 4096
    """The same, for all the directories one command created."""


@dataclass
class Snapshot:
    """The workspace as one walk found it (paths relative to the root)."""

    entries: dict[str, Stat] = field(default_factory=dict)
    overflow: str | None = None
    """Why the walk stopped early (None: it saw everything it meant to)."""
    taken_ns: int = 0
    """The wall clock when the walk started (``time.time_ns``, the clock ctimes are in)."""


@dataclass
class Changes:
    """What a command created or changed: relative path -> entry."""

    written: dict[str, Entry] = field(default_factory=dict)
    overflow: str | None = None


def _stat(st: os.stat_result) -> Stat:
    return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def _skipped(relative: str, skip: Skip) -> bool:
    objects = relative == ".git/objects" or relative.endswith("/.git/objects")
    return objects or skip(relative)


def _overflow(limits: Limits, count: int) -> str:
    if count > limits.entries:
        return f"it has more than {limits.entries} entries, too many to track"
    return f"walking it took more than {limits.seconds:g} s, too long to track"


def take(root: str, skip: Skip, limits: Limits | None = None) -> Snapshot:
    """Walk the workspace before a command."""
    return _walk(root, skip, limits or Limits(), None)[0]


def changes(before: Snapshot, root: str, skip: Skip, limits: Limits | None = None) -> Changes:
    """Walk the workspace after a command and compare with ``before``."""
    limits = limits or Limits()
    if before.overflow is not None:
        return Changes(overflow=before.overflow)
    after, created = _walk(root, skip, limits, before.entries)
    found = Changes(overflow=after.overflow)
    if found.overflow is None:
        budget = [limits.look_into_total]
        old = before.entries
        hot = before.taken_ns - HOT_NS
        for relative, now in after.entries.items():
            if relative in created:
                code = _holds_code(os.path.join(root, relative), relative, limits, budget)
                found.written[relative] = Entry(directory=True, code=code)
            elif not stat.S_ISDIR(now[1]) and (old.get(relative) != now or now[4] >= hot):
                executable = bool(now[1] & 0o111) or stat.S_ISLNK(now[1])
                found.written[relative] = Entry(False, is_code(relative, executable))
    return found


def _walk(
    root: str, skip: Skip, limits: Limits, before: dict[str, Stat] | None
) -> tuple[Snapshot, set[str]]:
    """One walk; with ``before``, directories new since then are recorded, not entered."""
    deadline = time.monotonic() + limits.seconds
    snapshot = Snapshot(taken_ns=time.time_ns())
    entries = snapshot.entries
    created: set[str] = set()
    stack = [""]
    count = 0
    while stack:
        relative = stack.pop()
        try:
            iterator = os.scandir(os.path.join(root, relative) if relative else root)
        except OSError:
            continue  # gone, or not readable by the runner: nothing of it runs here either
        with iterator:
            for item in iterator:
                count += 1
                if count > limits.entries or (count % 512 == 0 and time.monotonic() > deadline):
                    snapshot.overflow = _overflow(limits, count)
                    return snapshot, created
                path = f"{relative}/{item.name}" if relative else item.name
                try:
                    now = _stat(item.stat(follow_symlinks=False))
                except OSError:
                    continue
                entries[path] = now
                if not stat.S_ISDIR(now[1]) or _skipped(path, skip):
                    continue
                if before is not None:
                    old = before.get(path)
                    if old is None or old[0] != now[0] or not stat.S_ISDIR(old[1]):
                        created.add(path)
                        continue
                stack.append(path)
    return snapshot, created


def _holds_code(directory: str, relative: str, limits: Limits, budget: list[int]) -> bool:
    """Whether a directory the command created holds code: True as soon as some is seen, or
    when the look runs out before the directory does."""
    allowance = min(limits.look_into, budget[0])
    stack = [(directory, relative)]
    while stack:
        here, shown = stack.pop()
        try:
            iterator = os.scandir(here)
        except OSError:
            return True
        with iterator:
            for item in iterator:
                allowance -= 1
                budget[0] -= 1
                if allowance < 0:
                    return True
                try:
                    mode = item.stat(follow_symlinks=False).st_mode
                except OSError:
                    return True
                path = f"{shown}/{item.name}"
                if stat.S_ISDIR(mode):
                    stack.append((item.path, path))
                elif stat.S_ISLNK(mode) or is_code(path, bool(mode & 0o111)):
                    return True
    return False
