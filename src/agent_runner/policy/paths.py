"""Where a command's paths land, and whether changing them stays in the workspace.

The workspace is where the command starts unless the caller says otherwise; changes there
and in the temp directories (``/tmp``, ``/var/tmp``, ``/dev/shm``, ``$TMPDIR``,
``tempfile.gettempdir()``) are fine. A path is resolved as the shell would: ``~``,
``$HOME``, ``$TMPDIR``, ``$PWD`` and ``$(pwd)`` are known, brace lists (``{a,b}``) give
several candidates, and relative paths land in every directory the command may be in at
that point (:data:`Cwd`, tracked by the walk through ``cd``/``pushd``/``popd``). A path
known only at run time, or relative to a directory known only at run time, fails closed.
"""

from __future__ import annotations

import os
import re
import tempfile
from functools import lru_cache

from agent_runner.policy.words import DYN, LIT, Source, Word

Cwd = frozenset[str] | None
"""Where relative paths land: the possible directories, or None when unknown."""


def merge(*states: Cwd) -> Cwd:
    """Where relative paths land after one of several branches ran (None if any is unknown)."""
    merged: set[str] = set()
    for state in states:
        if state is None:
            return None
        merged |= state
    return frozenset(merged)


@lru_cache(maxsize=32)
def _roots(workspace: str, tmpdir: str) -> tuple[str, ...]:
    """The workspace and temp directories, also as their real paths (``/tmp`` may be a link)."""
    roots = {workspace, "/tmp", "/var/tmp", "/dev/shm", tmpdir, tempfile.gettempdir()}
    roots |= {os.path.realpath(root) for root in roots}
    return tuple(sorted(os.path.normpath(root) for root in roots))


_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                      "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty"})  # fmt: skip
_VERBS = {
    "changes": ("changes files outside the workspace", "changes a path known only at run time"),
    "writes": ("writes outside the workspace", "writes to a path known only at run time"),
    "mounts": ("mounts a host path outside the workspace", "mounts a path known only at run time"),
}


class Workspace:
    """Where changes are allowed, and the known values that paths are resolved with."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.home = os.path.normpath(os.path.expanduser("~"))
        tmpdir = os.environ.get("TMPDIR", "")
        self.tmpdir = os.path.normpath(tmpdir) if tmpdir.startswith("/") else "/tmp"
        self.roots = _roots(path, self.tmpdir)
        """Where changes are allowed: the workspace and the temp directories."""

    def inside(self, path: str, removed: bool = False) -> bool:
        """Whether changing ``path`` stays in the workspace or a temp directory.

        With ``removed`` the path itself goes away, so the workspace or temp directory
        itself does not count as inside (``rm -rf /tmp``).
        """
        if path in _DEVICES or path.startswith(("/dev/fd/", "/proc/self/fd/")):
            return True
        if removed and path in self.roots:
            return False
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in self.roots)

    def variable(self, name: str, cwd: Cwd) -> str | None:
        """The value of ``$name`` when it is known before the command runs."""
        if name == "HOME":
            return self.home
        if name == "TMPDIR":
            return self.tmpdir
        if name == "PWD" and cwd is not None and len(cwd) == 1:
            return next(iter(cwd))
        return None

    def resolve(self, word: Word, offset: int, cwd: Cwd, stop: str = "") -> list[str] | None:
        """Absolute candidates for the path ``word[offset:]``; None when it is unknown."""
        pieces: list[str] = []
        skip = offset
        tilde = False
        for part in word.parts:
            if part.kind == DYN:
                if skip:
                    return None
                if pieces:
                    pieces.append("\x00")
                    continue
                value = self.variable(part.text, cwd)
                if value is None:
                    return None
                pieces.append(value)
                continue
            text = part.text[skip:]
            skip = max(0, skip - len(part.text))
            if not text:
                continue
            if not pieces and part.kind == LIT and text.startswith("~") and "\\~" not in part.raw:
                tilde = True
            pieces.append(text)
        path = "".join(pieces)
        for char in stop:
            path = path.split(char, 1)[0]
        if tilde:
            head, _, rest = path[1:].partition("/")
            if head not in ("", "+"):
                return None
            base = self.home if head == "" else self.variable("PWD", cwd)
            if base is None:
                return None
            path = f"{base}/{rest}"
        candidates = _braces(path) if "{" in word.unquoted else [path]
        found: list[str] = []
        for candidate in candidates:
            if candidate.startswith("/"):
                found.append(os.path.normpath(candidate))
            elif cwd is None:
                return None
            else:
                found.extend(os.path.normpath(os.path.join(d, candidate)) for d in cwd)
        return found

    def outside_write(
        self,
        source: Source,
        word: Word | None,
        offset: int,
        cwd: Cwd,
        verb: str = "changes",
        stop: str = "",
        removes: bool = False,
    ) -> str | None:
        """What changing ``word[offset:]`` (None: the cwd) does outside the workspace, as the
        end of a reason (``writes outside the workspace (/etc/x)``); None when it stays in.

        ``source`` is where ``word`` was written, for the reason to show it as written.
        """
        if word is None:
            found = None if cwd is None else sorted(cwd)
            shown = "the current directory"
        else:
            found = self.resolve(word, offset, cwd, stop)
            shown = source.between(word.start, word.end)[offset:]
            for char in stop:
                shown = shown.split(char, 1)[0]
            if word.start < 0:
                shown = "words read from its input"
        if found is None:
            return f"{_VERBS[verb][1]} ({shown})"
        # ``rm -rf .`` is refused by rm itself; the written ``.`` never removes the root.
        removes = removes and not re.search(r"(^|/)\./?$", shown)
        outside = [path for path in found if not self.inside(path, removes)]
        if not outside:
            return None
        if shown != outside[0] and not shown.startswith(("/", "~")):
            shown = f"{shown} = {outside[0]}"
        if outside[0] in self.roots:
            return f"removes the workspace or temp directory itself ({shown})"
        return f"{_VERBS[verb][0]} ({shown})"


def _braces(text: str, limit: int = 64) -> list[str]:
    """Expand ``a{b,c}d`` into ``abd acd`` (comma lists only; enough for paths)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", text)
    if match is None:
        return [text]
    results: list[str] = []
    for choice in match.group(1).split(","):
        results.extend(_braces(text[: match.start()] + choice + text[match.end() :], limit))
        if len(results) >= limit:
            break
    return results[:limit]
