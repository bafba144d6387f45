"""Where a process left its shell, reported on its stderr after a marker, and split off again.

``Session.run`` carries ``cd`` and ``export`` to the next command; a process started with
``Session.start`` keeps them to itself, because it may still be running when the next
command starts. A caller that runs a command as a process and waits for it (the MCP server's
``run_command``, which yields after a while) wants both: when the process ends in time, its
changes should carry over as ``run``'s would. So the command is wrapped: an EXIT trap writes
a random marker, the final ``$PWD`` and the exported variables (a line each, escaped) to
the stderr the command started with, and :class:`StateSplitter` takes
them out of the stream before anyone sees them. The wrapper uses built-ins and one forked
subshell (for ``compgen -e``); a command whose text cannot change the shell's state
(``executor.may_change_state``) is not wrapped at all.
"""

from __future__ import annotations

import re
import secrets
import shlex

from agent_runner.backends.base import ShellState
from agent_runner.backends.executor import VOLATILE_VARIABLES

_BODY = (
    r"builtin exec {__stigmer_err}>&2; "
    r"__stigmer_escape() { __stigmer_value=${1//\\/\\\\}; "
    r"__stigmer_value=${__stigmer_value//$'\n'/\\n}; "
    r"__stigmer_value=${__stigmer_value//$'\r'/\\r}; }; "
    r"__stigmer_report() { "
    r"builtin mapfile -t __stigmer_names < <(builtin compgen -e); "
    r'{ __stigmer_escape "$PWD"; '
    r"""builtin printf '\001%s\001%s\n' "$__stigmer_marker" "$__stigmer_value"; """
    r'for __stigmer_name in "${__stigmer_names[@]}"; do '
    r'__stigmer_escape "${!__stigmer_name}"; '
    r"""builtin printf '%s=%s\n' "$__stigmer_name" "$__stigmer_value"; done; """
    r"builtin printf '\001\n'; "
    r'} >&"$__stigmer_err"; } 2>/dev/null; '
    r'trap __stigmer_report EXIT; eval "$__stigmer_command"'
)
"""The report is text, one line per entry with ``\\``, newline and carriage return escaped,
and ends with a line of its own: some backends carry stderr a line at a time as text
(Daytona's daemon drops NUL bytes), so the executor's NUL-separated format would not
survive them."""
_ESCAPED = re.compile(rb"\\(.)", re.S)
_UNESCAPED = {b"n": b"\n", b"r": b"\r"}


def new_marker() -> str:
    """A word no command prints by chance (it travels between two SOH bytes)."""
    return "stigmer-state-" + secrets.token_hex(8)


def wrap(command: str, marker: str) -> str:
    """``command`` as ``bash -c`` runs it, reporting its final state after ``marker``."""
    return f"__stigmer_command={shlex.quote(command)}; __stigmer_marker={marker}; " + _BODY


class StateSplitter:
    """Splits a stderr stream into what the command wrote and the report after the marker.

    Bytes that might begin the marker are held back until the next chunk (or the end) shows
    they do not.
    """

    def __init__(self, marker: str) -> None:
        self.marker = b"\x01" + marker.encode("ascii") + b"\x01"
        self._held = b""
        self._report: bytearray | None = None

    def feed(self, data: bytes) -> bytes:
        """The part of ``data`` that is the command's own output."""
        if self._report is not None:
            self._report += data
            return b""
        data = self._held + data
        self._held = b""
        found = data.find(self.marker)
        if found >= 0:
            self._report = bytearray(data[found + len(self.marker) :])
            return data[:found]
        tail = data[-(len(self.marker) - 1) :]
        start = tail.find(b"\x01")
        while start >= 0:
            if self.marker.startswith(tail[start:]):
                cut = len(data) - len(tail) + start
                self._held = data[cut:]
                return data[:cut]
            start = tail.find(b"\x01", start + 1)
        return data

    def flush(self) -> bytes:
        """What was held back, once the stream has ended without completing the marker."""
        held, self._held = self._held, b""
        return held

    @property
    def state(self) -> ShellState | None:
        """Where the command left its shell, if it got to report it."""
        if self._report is None:
            return None
        return parse_report(bytes(self._report))


def parse_report(report: bytes) -> ShellState | None:
    """Read what the wrapper's EXIT trap wrote after the marker; ``None`` unless it got to
    the end."""
    lines = report.split(b"\n")
    end = next((i for i, line in enumerate(lines) if i > 0 and line == b"\x01"), None)
    if end is None:
        return None
    cwd, *entries = (_unescape(line) for line in lines[:end])
    env: dict[str, str] = {}
    for entry in entries:
        name, _, value = entry.partition("=")
        if name and name not in VOLATILE_VARIABLES:
            env[name] = value
    return ShellState(cwd, env)


def _unescape(line: bytes) -> str:
    plain = _ESCAPED.sub(lambda m: _UNESCAPED.get(m.group(1), m.group(1)), line)
    return plain.decode("utf-8", "surrogateescape")
