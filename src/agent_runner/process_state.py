"""Where a process left its shell, reported on its stderr after a marker, and split off again.

``Session.run`` carries ``cd`` and ``export`` to the next command; a process started with
``Session.start`` keeps them to itself, because it may still be running when the next
command starts. A caller that runs a command as a process and waits for it (the MCP server's
``run_command``, which yields after a while) wants both: when the process ends in time, its
changes should carry over as ``run``'s would. So the command is wrapped: an EXIT trap writes
a random marker, the final ``$PWD`` and the exported variables (NUL-separated, the state
wrapper's format) to the stderr the command started with, and :class:`StateSplitter` takes
them out of the stream before anyone sees them. The wrapper uses built-ins and one forked
subshell (for ``compgen -e``); a command whose text cannot change the shell's state
(``executor.may_change_state``) is not wrapped at all.
"""

from __future__ import annotations

import secrets
import shlex

from agent_runner.backends.base import ShellState, parse_state

_BODY = (
    "builtin exec {__stigmer_err}>&2; "
    "__stigmer_report() { "
    "builtin mapfile -t __stigmer_names < <(builtin compgen -e); "
    '{ builtin printf \'\\001%s\\001%s\\0\' "$__stigmer_marker" "$PWD"; '
    'for __stigmer_name in "${__stigmer_names[@]}"; do '
    'builtin printf \'%s=%s\\0\' "$__stigmer_name" "${!__stigmer_name}"; done; '
    '} >&"$__stigmer_err"; } 2>/dev/null; '
    'trap __stigmer_report EXIT; eval "$__stigmer_command"'
)


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
        return parse_state(bytes(self._report))
