"""A session's sandbox seen from the runner: commands go to its executor, one at a time.

:class:`~agent_runner.backends.docker.backend.DockerBackend` answers where a sandbox runs
(create, pool, remove); this module answers how a command runs in it: one request on the attached
stream, output frames fed to the collector as they arrive (pausing when the listener is
slow), the exit report, and what to do when the sandbox stops answering.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping

from agent_runner.backends import executor
from agent_runner.backends.base import CommandOutcome, CommandRequest, ShellState
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.errors import SandboxUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import Stream

KILL_GRACE_SECONDS = 2.0
"""How long a killed command may take to report back before its sandbox is given up."""
UNRESPONSIVE_SECONDS = 10.0
"""Slack past a command's timeout before the sandbox counts as hung and is removed."""


class DockerShell:
    """A session's sandbox; commands go to its executor one at a time."""

    def __init__(self, engine: Engine, sandbox: Sandbox) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._broken: str | None = None
        self._closed = False

    @property
    def sandbox_id(self) -> str:
        return self._sandbox.container_id[:12]

    @property
    def state(self) -> ShellState:
        return self._sandbox.state

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        request = {
            "op": "env",
            "set": {k: v for k, v in changes.items() if v is not None},
            "unset": [k for k, v in changes.items() if v is None],
            "cwd": cwd,
        }
        await self._sandbox.channel.send(request)
        self._sandbox.state = self._sandbox.state.adjusted(cwd, changes)

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        if self._closed:
            raise SessionClosed("this session's sandbox is closed")
        if self._broken is not None:
            raise SandboxUnavailable(self._broken)
        channel = self._sandbox.channel
        await channel.send(
            {
                "op": "run",
                "command": request.command,
                "timeout": request.timeout,
                "env": dict(request.env),
            }
        )
        flowing = asyncio.Event()
        flowing.set()
        output.set_flow_control(flowing.clear, flowing.set)
        try:
            return await self._collect(request, output, flowing)
        except asyncio.CancelledError:
            await asyncio.shield(self._interrupt())
            raise
        except EOFError:
            self._give_up("the sandbox stopped unexpectedly (its memory limit, or it was removed)")
            raise SandboxUnavailable(self._broken or "") from None
        finally:
            output.clear_flow_control()

    async def _collect(
        self, request: CommandRequest, output: OutputCollector, flowing: asyncio.Event
    ) -> CommandOutcome:
        channel = self._sandbox.channel
        loop = asyncio.get_running_loop()
        limit = None if request.timeout is None else request.timeout + UNRESPONSIVE_SECONDS
        deadline = None if limit is None else loop.time() + limit
        while True:
            if not flowing.is_set():
                paused_at = loop.time()
                await flowing.wait()
                if deadline is not None:
                    deadline += loop.time() - paused_at
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            try:
                kind, payload = await asyncio.wait_for(channel.read_frame(), remaining)
            except TimeoutError:
                self._give_up("the sandbox stopped responding and was removed")
                raise SandboxUnavailable(self._broken or "") from None
            if kind == executor.STDOUT:
                output.feed(Stream.STDOUT, payload)
            elif kind == executor.STDERR:
                output.feed(Stream.STDERR, payload)
            elif kind == executor.EXITED:
                return self._outcome(payload)

    def _outcome(self, payload: bytes) -> CommandOutcome:
        report = json.loads(payload.decode("utf-8", "surrogateescape"))
        self._sandbox.state = ShellState(report["cwd"], report["env"])
        return CommandOutcome(report["exit_code"], report["timed_out"], report["oom_killed"])

    async def _interrupt(self) -> None:
        """Kill the running command and wait for its report, or give the sandbox up."""
        channel = self._sandbox.channel
        try:
            await channel.send({"op": "kill"})
            async with asyncio.timeout(KILL_GRACE_SECONDS):
                while (await channel.read_frame())[0] != executor.EXITED:
                    pass
        except (TimeoutError, EOFError, OSError):
            self._give_up("the sandbox did not stop a cancelled command and was removed")

    def _give_up(self, reason: str) -> None:
        self._broken = reason
        self._engine.discard(self._sandbox, broken=True)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._broken is None:
            self._engine.discard(self._sandbox)
