"""A session's pod seen from the runner: the executor shell, over a stream that may drop.

The commands themselves are :class:`~agent_runner.backends.executor_shell.ExecutorShell`'s,
as on Docker. What Kubernetes adds is that the stream and the sandbox are two things: an
exec stream can be cut (an idle timeout, a reset connection, a restarted apiserver) while
the pod runs on. So a shell here is an ``ExecutorShell`` per connection: when the
connection is lost, the next call asks whether the pod is still there; if it is, a new
executor is started in it, which takes over the session's cwd and variables from the
record the previous one kept in the pod (see :mod:`.connection`); if not, the session's
sandbox is gone and every call says why (``SandboxUnavailable``).

What ran while a stream dropped is not carried over: the executor stops its commands and
processes when its stream ends, so the command that was running fails with a line saying
so, and the processes end as failed. Nothing is retried: a command may not be idempotent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    ProcessEvents,
    ProcessHandle,
    ProcessRequest,
    ShellState,
)
from agent_runner.backends.executor_shell import ExecutorShell
from agent_runner.backends.kubernetes.connection import Connection
from agent_runner.backends.kubernetes.sandbox import SandboxPod
from agent_runner.errors import AgentRunnerError, SandboxUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import Stream


class PodKeeper(Protocol):
    """What a shell needs from its backend."""

    async def connect(self, pod: SandboxPod, *, heartbeat: bool = True) -> Connection:
        """A new executor in ``pod`` (it adopts the session's recorded state)."""
        ...

    async def gone(self, pod: SandboxPod) -> str | None:
        """Why ``pod`` cannot serve the session any more, or ``None`` while it can."""
        ...

    def release(self, pod: SandboxPod, connection: Connection) -> None:
        """The session is over: close ``connection`` and remove ``pod``, in the background."""
        ...


class _Events:
    """A process's events, with the loss of its stream told the Kubernetes way."""

    def __init__(self, events: ProcessEvents, pod: str) -> None:
        self._events = events
        self._pod = pod

    def output(self, stream: Stream, data: bytes) -> None:
        self._events.output(stream, data)

    def ended(self, outcome: CommandOutcome) -> None:
        self._events.ended(outcome)

    def failed(self, error: AgentRunnerError) -> None:
        if isinstance(error, SandboxUnavailable):
            error = SandboxUnavailable(
                f"lost the exec stream to pod {self._pod} (the pod stopped or the connection "
                "dropped); the process stopped with it"
            )
        self._events.failed(error)


class KubernetesShell:
    """One session's pod; commands go to its executor, reconnecting when the stream drops."""

    def __init__(
        self, keeper: PodKeeper, pod: SandboxPod, connection: Connection, state: ShellState
    ) -> None:
        self._keeper = keeper
        self._pod = pod
        self._connection = connection
        self._dropped = False
        self._inner = self._shell(connection, state)
        self._gone: str | None = None
        self._closed = False
        self._reconnecting = asyncio.Lock()
        self.reconnects = 0
        """How many times the stream was opened again (tests and logs read it)."""

    def _shell(self, connection: Connection, state: ShellState) -> ExecutorShell:
        def give_up() -> None:
            self._dropped = True
            connection.close()

        return ExecutorShell(
            connection.channel, self._pod.name, state, give_up=give_up, release=lambda: None
        )

    @property
    def sandbox_id(self) -> str:
        return self._pod.name

    @property
    def pod(self) -> SandboxPod:
        return self._pod

    @property
    def connection(self) -> Connection:
        return self._connection

    @property
    def state(self) -> ShellState:
        return self._inner.state

    async def _usable(self) -> ExecutorShell:
        if self._closed:
            raise SessionClosed("this session's sandbox is closed")
        async with self._reconnecting:
            if self._gone is not None:
                raise SandboxUnavailable(self._gone)
            if not (self._dropped or self._connection.lost):
                return self._inner
            reason = await self._keeper.gone(self._pod)
            if reason is not None:
                self._gone = f"this session's sandbox is gone: {reason}"
                raise SandboxUnavailable(self._gone)
            state = self._inner.state
            await self._connection.aclose()
            self._connection = await self._keeper.connect(self._pod)
            self._dropped = False
            self._inner = self._shell(self._connection, state)
            self.reconnects += 1
            return self._inner

    async def _explain(self, error: SandboxUnavailable) -> SandboxUnavailable:
        """Say what a failed command met: the pod gone, or only its stream."""
        reason = await self._keeper.gone(self._pod)
        if reason is not None:
            self._gone = f"this session's sandbox is gone: {reason}"
            return SandboxUnavailable(self._gone)
        return SandboxUnavailable(
            f"the exec stream to pod {self._pod.name} dropped while the command ran "
            f"({error}); the command was stopped, and the session's next command reconnects"
        )

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        shell = await self._usable()
        try:
            return await shell.run(request, output)
        except SandboxUnavailable as error:
            raise await self._explain(error) from None

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> ProcessHandle:
        shell = await self._usable()
        try:
            return await shell.start(request, _Events(events, self._pod.name))
        except SandboxUnavailable as error:
            raise await self._explain(error) from None

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        """Safe to send again on a new connection: it sets, it does not add."""
        for attempt in (1, 2):
            shell = await self._usable()
            try:
                await shell.adjust(cwd, changes)
                return
            except EOFError:
                self._dropped = True
                if attempt == 2:
                    raise SandboxUnavailable(
                        f"the exec stream to pod {self._pod.name} keeps dropping"
                    ) from None

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._inner.close()
        self._keeper.release(self._pod, self._connection)
