"""A session's sandbox seen from the runner: its executor, over a channel.

Backend-neutral: Docker, Kubernetes or any backend whose sandbox runs the executor hands
this shell an :class:`~agent_runner.backends.channel.ExecutorChannel` and says what to do
when the sandbox must be given up. The session's commands go one at a time (their cwd and
exports are kept); processes run beside them. Output frames are fed to the collector as
they arrive; a slow listener pauses that command alone (``pause``/``resume`` requests).
A cancelled command is killed and its report awaited, so the sandbox stays usable; a
sandbox that stops answering is given up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from agent_runner.backends import executor
from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    ProcessEvents,
    ProcessRequest,
    ShellState,
)
from agent_runner.backends.channel import ExecutorChannel
from agent_runner.errors import AgentRunnerError, InvalidSetting, SandboxUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import Stream

KILL_GRACE_SECONDS = 60.0
"""How long a cancelled command may take to report back before its sandbox is given up:
its output already on the way (pipes, the engine, a slow network) comes first."""
UNRESPONSIVE_SECONDS = 10.0
"""Slack past a command's timeout before the sandbox counts as hung and is given up."""
LOST = "the sandbox stopped unexpectedly (its memory limit, or it was removed)"
_STREAMS = {executor.STDOUT: Stream.STDOUT, executor.STDERR: Stream.STDERR}


def state_at_start(
    channel: ExecutorChannel, fallback_cwd: str, changes: Mapping[str, str | None]
) -> ShellState:
    """Where a new sandbox's shell stands: the executor's own cwd and environment (from its
    hello: the image's variables are the sandbox's, not something a command set), with the
    ``changes`` the backend sent it since (the session's variables)."""
    hello = channel.hello or {}
    start = ShellState(str(hello.get("cwd") or fallback_cwd), dict(hello.get("env") or {}))
    return start.adjusted(None, changes)


def run_request(
    number: int,
    command: str,
    timeout: float | None,
    env: Mapping[str, str],
    *,
    process: bool = False,
    stdin: bool = False,
) -> dict[str, Any]:
    """The executor's ``run``: a session command (its state kept), or a process beside it."""
    return {
        "op": "run",
        "id": number,
        "command": command,
        "timeout": timeout,
        "env": dict(env),
        "session": not process,
        "stdin": stdin,
    }


def outcome_of(report: dict[str, Any]) -> CommandOutcome:
    return CommandOutcome(
        int(report["exit_code"]), bool(report["timed_out"]), bool(report["oom_killed"])
    )


class _Waiter:
    """A session command's frames: output to the collector, the report to a future."""

    def __init__(self, collector: OutputCollector) -> None:
        self.collector: OutputCollector | None = collector
        self.done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    def output(self, kind: bytes, data: bytes) -> None:
        if self.collector is not None:  # none once the command was cancelled
            self.collector.feed(_STREAMS[kind], data)

    def finished(self, report: dict[str, Any]) -> None:
        if not self.done.done():
            self.done.set_result(report)

    def refused(self, message: str) -> None:
        if not self.done.done():
            self.done.set_exception(InvalidSetting(f"the sandbox refused the command: {message}"))

    def lost(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)


class ExecutorShell:
    """A session's sandbox; its commands go to the executor on ``channel``."""

    def __init__(
        self,
        channel: ExecutorChannel,
        sandbox_id: str,
        state: ShellState,
        *,
        give_up: Callable[[], None],
        release: Callable[[], None],
    ) -> None:
        self._channel = channel
        self._sandbox_id = sandbox_id
        self._state = state
        self._give_up_sandbox = give_up
        self._release = release
        self._broken: str | None = None
        self._closed = False
        self._interrupted: asyncio.Task[None] | None = None
        """A cancelled command whose end is still to be heard (the next request waits)."""

    @property
    def sandbox_id(self) -> str:
        return self._sandbox_id

    @property
    def state(self) -> ShellState:
        return self._state

    def _check_usable(self) -> None:
        if self._closed:
            raise SessionClosed("this session's sandbox is closed")
        if self._broken is not None:
            raise SandboxUnavailable(self._broken)

    async def _ready(self) -> None:
        """Usable, and done with a cancelled command (which must not be mistaken for the
        next one, nor run beside it)."""
        self._check_usable()
        if self._interrupted is not None:
            await asyncio.shield(self._interrupted)
            self._interrupted = None
            self._check_usable()

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        await self._ready()
        request = {
            "op": "env",
            "set": {k: v for k, v in changes.items() if v is not None},
            "unset": [k for k, v in changes.items() if v is None],
            "cwd": cwd,
        }
        await self._channel.send(request)
        self._state = self._state.adjusted(cwd, changes)

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        await self._ready()
        channel = self._channel
        number = channel.new_id()
        waiter = _Waiter(output)
        channel.register(number, waiter)
        loop = asyncio.get_running_loop()
        paused_for = 0.0
        paused_at: float | None = None

        def pause() -> None:
            nonlocal paused_at
            paused_at = loop.time()
            channel.post({"op": "pause", "id": number})

        def resume() -> None:
            nonlocal paused_at, paused_for
            if paused_at is not None:
                paused_for += loop.time() - paused_at
                paused_at = None
            channel.post({"op": "resume", "id": number})

        output.set_flow_control(pause, resume)
        try:
            await channel.send(run_request(number, request.command, request.timeout, request.env))
            limit = None if request.timeout is None else request.timeout + UNRESPONSIVE_SECONDS
            while True:
                try:
                    report = await asyncio.wait_for(asyncio.shield(waiter.done), limit)
                    break
                except TimeoutError:
                    held = paused_for + (loop.time() - paused_at if paused_at is not None else 0)
                    if limit is not None and held > 0:
                        limit, paused_for = held, 0.0  # the listener held it back: wait on
                        continue
                    self._give_up("the sandbox stopped responding and was given up")
                    raise SandboxUnavailable(self._broken or "") from None
        except asyncio.CancelledError:
            self._interrupt(number, waiter)
            raise
        except EOFError:
            channel.forget(number)
            self._give_up(LOST)
            raise SandboxUnavailable(self._broken or "") from None
        except BaseException:
            channel.forget(number)
            raise
        finally:
            output.clear_flow_control()
        channel.forget(number)
        self._state = ShellState(report["cwd"], report["env"])
        return outcome_of(report)

    def _interrupt(self, number: int, waiter: _Waiter) -> None:
        """Kill the cancelled command now (the caller's cancellation is not held up), drop
        what it still writes, and hear its end in the background; the next request waits
        for that, and a sandbox that never reports it is given up."""
        waiter.collector = None
        self._channel.post({"op": "kill", "id": number, "signal": "KILL", "drop_output": True})
        self._interrupted = asyncio.ensure_future(self._settle(number, waiter))

    async def _settle(self, number: int, waiter: _Waiter) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(waiter.done), KILL_GRACE_SECONDS)
        except (TimeoutError, EOFError, OSError):
            self._give_up("the sandbox did not stop a cancelled command and was given up")
        except AgentRunnerError:
            pass  # refused: it had already finished
        finally:
            self._channel.forget(number)

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> ExecutorProcess:
        """Start a process beside the session's commands (its ``cd`` does not leak)."""
        await self._ready()
        channel = self._channel
        number = channel.new_id()
        process = ExecutorProcess(channel, number, events)
        channel.register(number, process)
        try:
            await channel.send(
                run_request(
                    number,
                    request.command,
                    request.timeout,
                    request.env,
                    process=True,
                    stdin=request.stdin,
                )
            )
        except EOFError:
            channel.forget(number)
            self._give_up(LOST)
            raise SandboxUnavailable(self._broken or "") from None
        return process

    def _give_up(self, reason: str) -> None:
        if self._broken is None:
            self._broken = reason
            self._give_up_sandbox()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._interrupted is not None:
            self._interrupted.cancel()  # the sandbox goes, and the command with it
            await asyncio.gather(self._interrupted, return_exceptions=True)
        if self._broken is None:
            self._release()


class ExecutorProcess:
    """A process on the executor: its frames go to ``events``; stdin and signals go back."""

    def __init__(self, channel: ExecutorChannel, number: int, events: ProcessEvents) -> None:
        self._channel = channel
        self._number = number
        self._events = events

    def output(self, kind: bytes, data: bytes) -> None:
        self._events.output(_STREAMS[kind], data)

    def finished(self, report: dict[str, Any]) -> None:
        self._events.ended(outcome_of(report))

    def refused(self, message: str) -> None:
        self._events.failed(InvalidSetting(f"the sandbox refused the process: {message}"))

    def lost(self, error: BaseException) -> None:
        self._events.failed(SandboxUnavailable(LOST))

    async def write(self, data: bytes) -> None:
        await self._send({"op": "stdin", "id": self._number, "size": len(data)}, data)

    async def close_stdin(self) -> None:
        await self._send({"op": "close_stdin", "id": self._number})

    async def signal(self, name: str, grace: float | None) -> None:
        await self._send({"op": "kill", "id": self._number, "signal": name, "grace": grace})

    async def _send(self, request: dict[str, Any], body: bytes = b"") -> None:
        try:
            await self._channel.send(request, body)
        except EOFError:
            raise SandboxUnavailable(LOST) from None
