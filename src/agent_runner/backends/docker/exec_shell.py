"""The slow path: one ``docker exec`` per command, for images without ``python3``.

Everything the executor does is redone here with engine calls: the state wrapper keeps
cwd and exported variables in a file that is read back after each command, the command
runs in a session of its own (``setsid -w`` when the image has it) so a timeout or a
cancellation can kill its whole tree, and a background child holding the output open does
not hold the command once the exec has ended. It costs tens of milliseconds per command
where the executor costs a few, which is why the backend says so once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import suppress

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    HostKeptState,
    ShellState,
)
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.backends.docker.stream import STDOUT, EngineStream
from agent_runner.backends.executor import DRAIN_SECONDS, STATE_WRAPPER
from agent_runner.errors import SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

STATE_FILE = "/tmp/.stigmer-exec-state"
PID_FILE = "/tmp/.stigmer-exec-pid"
POLL_SECONDS = 0.05
LAUNCH = (
    f": >| {STATE_FILE}; "
    f"record='builtin echo $$ $PPID >| {PID_FILE}; exec \"$@\"'; "
    'if command -v setsid >/dev/null 2>&1; then exec setsid -w bash -c "$record" bash "$@"; '
    'else eval "$record"; fi'
)
"""Empties the previous command's state file (so a command killed before its trap cannot
hand back stale state), then runs the command as the leader of a new session (when the
image has ``setsid``) and records its pid, which is then also its process group's id, and
its parent's."""
KILL = (
    f"read -r pid parent < {PID_FILE} || exit 0; "
    'if [ "$parent" -gt 1 ] && [ "$(cat /proc/$parent/comm 2>/dev/null)" = setsid ]; then '
    'kill -KILL "$parent"; fi; '
    'kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"'
)
"""Kills the command's group, and first the ``setsid -w`` that waits for it (so it cannot
complain on the command's stderr)."""


class ExecShell(HostKeptState):
    """A sandbox whose commands each run through their own exec."""

    def __init__(self, engine: Engine, sandbox: Sandbox, env: Mapping[str, str]) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._state = ShellState("/workspace", dict(env))
        self._closed = False

    @property
    def sandbox_id(self) -> str:
        return self._sandbox.container_id[:12]

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        if self._closed:
            raise SessionClosed("this session's sandbox is closed")
        engine, sandbox = self._engine, self._sandbox
        api = await engine.api()
        argv = ["bash", "-c", LAUNCH, "bash", "bash", "-c", STATE_WRAPPER, "bash", STATE_FILE]
        created = await engine.call(
            api.exec_create,
            sandbox.container_id,
            [*argv, request.command],
            environment={**self._state.env, **request.env},
            workdir=self._state.cwd,
            user=f"{sandbox.uid}:{sandbox.gid}",
        )
        exec_id: str = created["Id"]
        stream = await engine.open_stream(f"/exec/{exec_id}/start", {"Detach": False, "Tty": False})
        flowing = asyncio.Event()
        flowing.set()
        output.set_flow_control(flowing.clear, flowing.set)
        pump = asyncio.ensure_future(_pump(stream, output, flowing))
        timed_out = False
        try:
            try:
                await asyncio.wait_for(self._until_exited(exec_id), request.timeout)
            except TimeoutError:
                timed_out = True
                await self._kill()
                await self._until_exited(exec_id)
            # What the command wrote before it ended is read in full, listener or not.
            output.clear_flow_control()
            flowing.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(pump), DRAIN_SECONDS)
        except asyncio.CancelledError:
            await asyncio.shield(self._kill())
            raise
        finally:
            output.clear_flow_control()
            pump.cancel()
            stream.close()
        details = await engine.call(api.exec_inspect, exec_id)
        await self._read_state(request.env)
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True)
        return CommandOutcome(int(details.get("ExitCode") or 0))

    async def _until_exited(self, exec_id: str) -> None:
        """Poll the engine: an exec's end is only an event for the stream, which a
        background child may hold open."""
        api = await self._engine.api()
        while (await self._engine.call(api.exec_inspect, exec_id)).get("Running"):  # noqa: ASYNC110
            await asyncio.sleep(POLL_SECONDS)

    async def _kill(self) -> None:
        api = await self._engine.api()
        sandbox = self._sandbox
        user = f"{sandbox.uid}:{sandbox.gid}"
        killer = await self._engine.call(
            api.exec_create, sandbox.container_id, ["bash", "-c", KILL], user=user
        )
        await self._engine.call(api.exec_start, killer["Id"])

    async def _read_state(self, overlay: Mapping[str, str]) -> None:
        """Read the state file back (through an exec: the engine cannot archive a tmpfs)."""
        api = await self._engine.api()
        sandbox = self._sandbox
        reader = await self._engine.call(
            api.exec_create,
            sandbox.container_id,
            ["cat", STATE_FILE],
            user=f"{sandbox.uid}:{sandbox.gid}",
        )
        raw, _ = await self._engine.call(api.exec_start, reader["Id"], demux=True)
        self._adopt(raw or b"", overlay)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._engine.discard(self._sandbox)


async def _pump(stream: EngineStream, output: OutputCollector, flowing: asyncio.Event) -> None:
    """Copy the exec's demultiplexed output into the collector until the stream ends,
    reading only while the listener keeps up (the engine then holds the command back)."""
    with suppress(EOFError):
        while True:
            await flowing.wait()
            source, data = await stream.receive()
            output.feed(Stream.STDOUT if source == STDOUT else Stream.STDERR, data)
