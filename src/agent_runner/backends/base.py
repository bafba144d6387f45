"""The contract every backend keeps, and the pieces they share.

A *backend* answers "where": it opens a :class:`Shell` for a session (a host shell, a
container, a cloud sandbox). A shell answers "how": it runs one command at a time, keeps
the session's working directory and exported variables between commands, streams output
into an :class:`~agent_runner.output.OutputCollector`, and enforces the timeout by killing
the command's whole process tree. Mode choice, policy and result assembly live above this.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from agent_runner.config import Settings
from agent_runner.output import OutputCollector

STATE_WRAPPER = (
    "__stigmer_state=$1 __stigmer_command=$2; shift 2; "
    "__stigmer_save() { "
    "{ builtin printf '%s\\0' \"$PWD\"; "
    "for __stigmer_name in $(builtin compgen -e); do "
    'builtin printf \'%s=%s\\0\' "$__stigmer_name" "${!__stigmer_name}"; done; '
    '} >| "$__stigmer_state" 2>/dev/null; }; '
    'trap __stigmer_save EXIT; eval "$__stigmer_command"'
)
"""Runs a command exactly as ``bash -c`` would, then records where it left the shell.

The command travels as a positional argument and is run by ``eval``, so no quoting is ever
applied to it. The EXIT trap writes the final working directory and the exported
variables (NUL-separated, built-ins only, so it costs no extra process) to the state file
named by the first argument, also when the command calls ``exit``.
"""

VOLATILE_VARIABLES = frozenset({"_", "SHLVL", "OLDPWD"})
"""Variables bash maintains itself; carrying them over would make them drift."""


@dataclass(frozen=True)
class ShellState:
    """Where the previous command left the session."""

    cwd: str
    env: Mapping[str, str]


def parse_state(raw: bytes) -> ShellState | None:
    """Read what :data:`STATE_WRAPPER` wrote; ``None`` when the command never got there."""
    fields = raw.split(b"\0")
    if len(fields) < 2 or fields[-1] != b"":
        return None
    cwd = fields[0].decode("utf-8", errors="surrogateescape")
    env: dict[str, str] = {}
    for item in fields[1:-1]:
        name, _, value = item.decode("utf-8", errors="surrogateescape").partition("=")
        if name and name not in VOLATILE_VARIABLES:
            env[name] = value
    return ShellState(cwd, env)


def carry_over(
    before: Mapping[str, str], overlay: Mapping[str, str], after: Mapping[str, str]
) -> dict[str, str]:
    """The session environment after a command that ran with a per-command ``overlay``.

    Overlay variables apply to that command only, unless the command itself changed them.
    """
    result = dict(after)
    for name, value in overlay.items():
        if result.get(name) != value:
            continue
        if name in before:
            result[name] = before[name]
        else:
            del result[name]
    return result


@dataclass(frozen=True)
class CommandRequest:
    """One command for a shell."""

    command: str
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables for this command only (the session keeps what the command exports)."""


@dataclass(frozen=True)
class CommandOutcome:
    """How a command ended; output went to the collector."""

    exit_code: int
    timed_out: bool = False
    oom_killed: bool = False


@dataclass(frozen=True)
class ShellSpec:
    """What a session asks of its shell."""

    execution_id: str
    settings: Settings
    cwd: str | None = None
    """Initial working directory on the host; default: the runner's."""
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables set for the whole session."""
    unset: frozenset[str] = frozenset()
    """Host variables the session must not see (a resumed session had unset them)."""
    persistent: bool = True
    """Keep cwd and exported variables between commands (a one-off command does not need to)."""


class Shell(Protocol):
    """A session's place to run commands; one command at a time."""

    @property
    def sandbox_id(self) -> str | None: ...

    @property
    def state(self) -> ShellState:
        """Where the last command left the shell (cwd and exported variables)."""
        ...

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome: ...

    async def close(self) -> None: ...


class Backend(Protocol):
    """Opens shells in one kind of place."""

    name: str

    async def open_shell(self, spec: ShellSpec) -> Shell: ...

    async def close(self) -> None:
        """Release what the backend holds beyond single shells (clients, warm pools)."""
        ...
