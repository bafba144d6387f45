"""A custom requirements file, read once on the host and checked before anything starts.

The session reads the file when a command asks for it, so a missing file, a directory or
a file that cannot be a requirements file is one line naming it, and no sandbox is
started for it. The bytes read here are the bytes hashed and the bytes installed: the
file may change afterwards without the layer and its name drifting apart.

Only self-contained files are taken. An include (``-r``, ``-c``), an editable or a local
path would make the installed packages depend on files the layer's hash does not cover,
and the build could not see them anyway; pip itself judges everything else.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from agent_runner.errors import InvalidSetting, RequirementsError
from agent_runner.modes import ExecutionMode

MAX_BYTES = 1024 * 1024
"""A requirements file is a list of packages; anything larger is not one."""

_INCLUDE = re.compile(
    r"^(?:-[rce]|--(?:requirement|constraint|editable)(?:[\s=]|$)|\.{1,2}/|/|file:)"
)


@dataclass(frozen=True)
class Requirements:
    """A requirements file's path and the exact bytes that were read from it."""

    path: Path
    """Absolute, as it was given (symlinks not resolved: that is the name the user knows)."""
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Requirements:
        """Read and check ``path``; every refusal is a :class:`RequirementsError` naming it."""
        given = Path(os.fspath(path)).expanduser()
        where = Path(os.path.abspath(given))
        if not where.exists():
            raise RequirementsError(f"requirements file {where} does not exist")
        if where.is_dir():
            raise RequirementsError(f"requirements file {where} is a directory, not a file")
        try:
            size = where.stat().st_size
            if size > MAX_BYTES:
                raise RequirementsError(
                    f"requirements file {where} is {size / 1e6:.1f} MB: a requirements file "
                    f"lists packages, one per line, in at most {MAX_BYTES // 1024} KiB"
                )
            content = where.read_bytes()
        except OSError as error:
            reason = error.strerror or type(error).__name__
            raise RequirementsError(
                f"requirements file {where} cannot be read ({reason})"
            ) from None
        _check_text(where, content)
        return cls(where, content)


def _check_text(where: Path, content: bytes) -> None:
    """Refuse what cannot be a requirements file pip takes, with the line that shows it."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise RequirementsError(
            f"requirements file {where} is not a text file: a requirements file lists "
            "packages, one per line (pip's format)"
        )
    listed = False
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if _INCLUDE.match(line):
            raise RequirementsError(
                f"requirements file {where} line {number} ({line!r}) refers to another file "
                "or a local path: only self-contained requirements files can be installed "
                "into a sandbox image (copy the included packages into it)"
            )
        listed = listed or not line.startswith("-")
    if not listed:
        raise RequirementsError(
            f"requirements file {where} lists no packages (only comments, blank lines or options)"
        )


def for_command(
    requirements: str | os.PathLike[str] | None, mode: ExecutionMode, session_mode: ExecutionMode
) -> Requirements | None:
    """What a command run in ``mode`` (in a session of ``session_mode``) needs installed."""
    if requirements is None:
        return None
    if mode is ExecutionMode.LOCAL:
        if session_mode is ExecutionMode.LOCAL:
            raise InvalidSetting(
                f"custom requirements ({os.fspath(requirements)}) are installed into a sandbox "
                "image, and this session runs in local mode: use sandbox or auto mode"
            )
        return None  # AUTO, and a user rule kept the command on the host: it has what it has
    return Requirements.read(requirements)


def keeps_one_image(session: str, opened: Requirements | None, wanted: Requirements) -> None:
    """A session's sandbox keeps the image it started on: other requirements are an error."""
    if opened is not None and opened.sha256 == wanted.sha256:
        return
    started = (
        "without custom requirements"
        if opened is None
        else f"on the image for {opened.path}"
        + (" (the file has changed since)" if opened.path == wanted.path else "")
    )
    raise RequirementsError(
        f"session {session!r} started its sandbox {started}, so it cannot take {wanted.path} "
        "now: a session keeps one image for its life; use a new session for these requirements"
    )
