"""The contract every backend keeps, and the pieces they share.

A *backend* answers "where": it opens a :class:`Shell` for a session (a host shell, a
container, a cloud sandbox). A shell answers "how": it runs one command at a time, keeps
the session's working directory and exported variables between commands, streams output
into an :class:`~agent_runner.output.OutputCollector`, and enforces the timeout by killing
the command's whole process tree. Mode choice, policy and result assembly live above this.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from agent_runner.backends import executor
from agent_runner.backends.executor import VOLATILE_VARIABLES, carry_over
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import AgentRunnerError
from agent_runner.output import OutputCollector
from agent_runner.requirements import Requirements
from agent_runner.results import Stream

__all__ = ["VOLATILE_VARIABLES", "carry_over"]


@dataclass(frozen=True)
class ShellState:
    """Where the previous command left the session."""

    cwd: str
    env: Mapping[str, str]

    def adjusted(self, cwd: str | None, changes: Mapping[str, str | None]) -> ShellState:
        env = {**self.env, **{k: v for k, v in changes.items() if v is not None}}
        for name in (k for k, v in changes.items() if v is None):
            env.pop(name, None)
        return ShellState(cwd or self.cwd, env)


def parse_state(raw: bytes) -> ShellState | None:
    """Read what the state wrapper (``executor.STATE_BODY``) wrote; ``None`` when the
    command never got there."""
    state = executor.parse_state(raw)
    return ShellState(*state) if state is not None else None


class HostKeptState:
    """For shells whose cwd and variables are kept on the runner's side between commands."""

    _state: ShellState

    @property
    def state(self) -> ShellState:
        return self._state

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        self._state = self._state.adjusted(cwd, changes)

    def _adopt(self, recorded: bytes, overlay: Mapping[str, str]) -> None:
        """Take over what the state wrapper recorded; keep the old state when the command
        never got that far (killed, or ``exec``-ed into something else)."""
        state = parse_state(recorded)
        if state is not None:
            self._state = ShellState(state.cwd, carry_over(self._state.env, overlay, state.env))


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
class ProcessRequest:
    """A process to start beside the session's commands."""

    command: str
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    """Variables for this process only, on top of the session's."""
    stdin: bool = False
    """Give it a stdin to write to (else it reads an empty one)."""


class ProcessEvents(Protocol):
    """What a shell tells about a process it started (:class:`agent_runner.Process` listens)."""

    def output(self, stream: Stream, data: bytes) -> None: ...

    def ended(self, outcome: CommandOutcome) -> None:
        """It exited (or was killed, or timed out); nothing more comes."""
        ...

    def failed(self, error: AgentRunnerError) -> None:
        """It can no longer be followed (the sandbox is gone); nothing more comes."""
        ...


class ProcessHandle(Protocol):
    """A started process, as its shell controls it."""

    async def write(self, data: bytes) -> None: ...

    async def close_stdin(self) -> None: ...

    async def signal(self, name: str, grace: float | None) -> None:
        """Send ``name`` (``TERM``, ``KILL``, ``INT``, ...) to its whole process tree; with
        ``grace``, KILL follows that many seconds later if any of it is left."""
        ...


class Followed:
    """A process a shell follows with a task of its own until it ends (its exec, its
    group's report), and stops following when the shell closes (the sandbox, or the
    group, takes the process down)."""

    _follower: asyncio.Task[None] | None = None

    def follow(self, work: Coroutine[Any, Any, None], done: Callable[[Any], None]) -> None:
        self._follower = asyncio.get_running_loop().create_task(work)
        self._follower.add_done_callback(lambda _: done(self))

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            await asyncio.gather(self._follower, return_exceptions=True)


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
    requirements: Requirements | None = None
    """Custom requirements the sandbox must have installed. Only a backend whose class sets
    ``supports_requirements = True`` is handed any; the session refuses them for others."""


class Shell(Protocol):
    """A session's place to run commands; one command at a time."""

    @property
    def sandbox_id(self) -> str | None: ...

    @property
    def state(self) -> ShellState:
        """Where the last command left the shell (cwd and exported variables)."""
        ...

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome: ...

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> ProcessHandle:
        """Start a process beside the session's commands: it starts where the session
        stands, and what it changes (``cd``, ``export``) stays its own."""
        ...

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        """Move to ``cwd`` (when given) and set (or, for ``None``, unset) variables: what a
        command in the session's other shell changed (AUTO mode)."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class DownloadsChanges(Protocol):
    """A shell whose sandbox holds a copy of the workspace that can be brought back."""

    async def download(self, target: str) -> list[str]:
        """Copy the files commands changed into ``target``; their paths relative to it."""
        ...


@dataclass(frozen=True)
class SandboxInfo:
    """One of our sandboxes, as ``agent-runner sandbox ls`` shows it, whatever the backend."""

    sandbox_id: str
    name: str
    execution_id: str
    state: str
    image: str
    created_at: str
    owner: Owner

    @property
    def orphaned(self) -> bool:
        return not self.owner.is_alive()


class Backend(Protocol):
    """Opens shells in one kind of place."""

    name: str

    async def open_shell(self, spec: ShellSpec) -> Shell: ...

    async def warm(self, cwd: str | None) -> None:
        """Get ready for sessions in ``cwd`` ahead of time (a warm pool); may do nothing."""
        ...

    async def sandboxes(self) -> list[SandboxInfo]:
        """The sandboxes of ours this backend can see (any runner's, not only this one's)."""
        ...

    async def prune(self, *, everything: bool = False) -> list[SandboxInfo]:
        """Remove the orphaned sandboxes (with ``everything``, all of ours); return them."""
        ...

    async def close(self) -> None:
        """Release what the backend holds beyond single shells (clients, warm pools)."""
        ...
