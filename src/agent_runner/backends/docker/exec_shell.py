"""The slow path: one ``docker exec`` per command, for images without ``python3``.

Everything the executor does is redone here with engine calls: the state wrapper keeps
cwd and exported variables in a file that is read back after each command, the command
runs in a session of its own (``setsid -w`` when the image has it) so a timeout or a
cancellation can kill its whole tree, and a background child holding the output open holds
the command only for the engine's grace (2 s) once the exec has ended. A command too long
for one argument travels on the exec's stdin into a file first. It costs tens of
milliseconds per command where the executor costs a few, which is why the backend says so
once.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Mapping
from contextlib import suppress

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    Followed,
    HostKeptState,
    ProcessEvents,
    ProcessRequest,
    ShellState,
)
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.backends.docker.stream import EngineStream
from agent_runner.backends.executor import LONG_COMMAND, bash_arguments
from agent_runner.backends.launcher import GraceKill, signal_argv
from agent_runner.errors import SandboxUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

STATE_FILE = "/tmp/.stigmer-exec-state"
POLL_SECONDS = 0.05
START_SECONDS = 60.0
"""How long an exec may stay unstarted after the engine accepted its start."""
STREAM_END_SECONDS = 5.0
"""How long an ended exec's output may take to arrive. The engine marks an exec ended
before it has copied out all it wrote (under load, long after), then waits up to 2 s for
the copy and cuts the streams a background child still holds: waiting for the stream's end
loses nothing, and a held stream costs the engine's grace, not ours."""
LAUNCH = (
    'pids=$1 state=$2 script=$3; shift 3; [ -z "$state" ] || : >| "$state"; '
    'if [ -n "$script" ]; then cat >| "$script" || exit 126; exec 3< "$script" 0</dev/null; '
    'rm -f "$script"; fi; '
    'record=\'p=$1; shift; builtin echo $$ $PPID >| "$p"; '
    '[ ! -e "$p.kill" ] || kill -"$(cat "$p.kill")" $$; exec "$@"\'; '
    'set -- "$pids" "$@"; '
    'if command -v setsid >/dev/null 2>&1; then exec setsid -w bash -c "$record" bash "$@"; '
    'else eval "$record"; fi'
)
"""Empties the previous command's state file (so a command killed before its trap cannot
hand back stale state), takes a long command's script from stdin into a file on fd 3, then
runs the command as the leader of a new session (when the image has ``setsid``) and records
its pid, which is then also its process group's id, and its parent's (the pid file
:mod:`agent_runner.backends.launcher` signals)."""


Feed = Callable[[Stream, bytes], None]


class _Output:
    """An exec's demultiplexed output, into a collector or a process's events."""

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def stdout_received(self, data: bytes) -> None:
        self._feed(Stream.STDOUT, data)

    def stderr_received(self, data: bytes) -> None:
        self._feed(Stream.STDERR, data)

    def connection_lost(self, error: BaseException | None) -> None:
        if not self.ended.done():
            self.ended.set_result(None)


class _Exec:
    """One exec: its id, its stream, its pid file."""

    def __init__(self, exec_id: str, stream: EngineStream, output: _Output, pids: str) -> None:
        self.exec_id = exec_id
        self.stream = stream
        self.output = output
        self.pids = pids


class ExecShell(HostKeptState):
    """A sandbox whose commands each run through their own exec."""

    _numbers = itertools.count(1)

    def __init__(self, engine: Engine, sandbox: Sandbox, env: Mapping[str, str]) -> None:
        self._engine = engine
        self._sandbox = sandbox
        self._state = ShellState("/workspace", dict(env))
        self._processes: set[ExecProcess] = set()
        self._closed = False

    @property
    def sandbox_id(self) -> str:
        return self._sandbox.container_id[:12]

    @property
    def _user(self) -> str:
        return f"{self._sandbox.uid}:{self._sandbox.gid}"

    async def _launch(
        self,
        command: str,
        env: Mapping[str, str],
        feed: Feed,
        *,
        state_file: str | None,
        stdin: bool,
    ) -> _Exec:
        if self._closed:
            raise SessionClosed("this session's sandbox is closed")
        engine, sandbox = self._engine, self._sandbox
        api = await engine.api()
        number = next(self._numbers)
        pids = f"/tmp/.stigmer-exec-pid-{number}"
        long = len(command) > LONG_COMMAND
        script = f"/tmp/.stigmer-exec-script-{number}" if long else ""
        wrapped = bash_arguments(command, state_file, 3 if long else None, "")
        argv = ["bash", "-c", LAUNCH, "bash", pids, state_file or "", script, "bash", *wrapped]
        created = await engine.call(
            api.exec_create,
            sandbox.container_id,
            argv,
            environment={**self._state.env, **env},
            workdir=self._state.cwd,
            user=self._user,
            stdin=stdin or long,
        )
        exec_id: str = created["Id"]
        output = _Output(feed)
        body = {"Detach": False, "Tty": False}
        stream = await engine.open_stream(f"/exec/{exec_id}/start", body, output)
        if long:
            stream.write(command.encode("utf-8", "surrogateescape"))
            if not stdin:
                stream.close_stdin()
        return _Exec(exec_id, stream, output, pids)

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        launched = await self._launch(
            request.command, request.env, output.feed, state_file=STATE_FILE, stdin=False
        )
        stream = launched.stream
        output.set_flow_control(stream.pause_reading, stream.resume_reading)
        timed_out = False
        try:
            try:
                await asyncio.wait_for(self._until_exited(launched.exec_id), request.timeout)
            except TimeoutError:
                timed_out = True
                await self._signal(launched, "KILL")
                await self._until_exited(launched.exec_id)
            # What the command wrote before it ended is read in full, listener or not.
            output.clear_flow_control()
            stream.resume_reading()
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(launched.output.ended), STREAM_END_SECONDS)
        except asyncio.CancelledError:
            await asyncio.shield(self._signal(launched, "KILL"))
            raise
        finally:
            output.clear_flow_control()
            stream.close()
        code = await self._exit_code(launched.exec_id)
        await self._read_state(request.env)
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True)
        return CommandOutcome(code)

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> ExecProcess:
        """A process is an exec of its own, followed until it ends."""
        launched = await self._launch(
            request.command, request.env, events.output, state_file=None, stdin=request.stdin
        )
        process = ExecProcess(self, launched, events)
        self._processes.add(process)
        process.follow(process.follow_until_ended(request.timeout), self._processes.discard)
        return process

    async def _exit_code(self, exec_id: str) -> int:
        api = await self._engine.api()
        details = await self._engine.call(api.exec_inspect, exec_id)
        return int(details.get("ExitCode") or 0)

    async def _until_exited(self, exec_id: str) -> None:
        """Poll the engine: an exec's end is only an event for the stream, which a
        background child may hold open.

        The engine answers the start before the process runs: until then the exec is
        neither running nor has an exit code, which is not an end (under load that window
        lasts long enough for the next command to overtake this one).
        """
        api = await self._engine.api()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + START_SECONDS
        while True:
            details = await self._engine.call(api.exec_inspect, exec_id)
            if details.get("Running"):
                deadline = math.inf
            elif details.get("ExitCode") is not None:
                return
            elif loop.time() > deadline:
                raise SandboxUnavailable(
                    f"the engine did not start a command's exec within {START_SECONDS:.0f} s"
                )
            await asyncio.sleep(POLL_SECONDS)

    async def _signal(self, launched: _Exec, name: str) -> None:
        api = await self._engine.api()
        argv = signal_argv(name, launched.pids)
        killer = await self._engine.call(
            api.exec_create, self._sandbox.container_id, argv, user=self._user
        )
        await self._engine.call(api.exec_start, killer["Id"])

    async def _read_state(self, overlay: Mapping[str, str]) -> None:
        """Read the state file back (through an exec: the engine cannot archive a tmpfs)."""
        api = await self._engine.api()
        reader = await self._engine.call(
            api.exec_create, self._sandbox.container_id, ["cat", STATE_FILE], user=self._user
        )
        raw, _ = await self._engine.call(api.exec_start, reader["Id"], demux=True)
        self._adopt(raw or b"", overlay)

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await asyncio.gather(*(p.stop() for p in list(self._processes)))
            self._engine.discard(self._sandbox)


class ExecProcess(Followed):
    """A process on the slow path: its exec's output to ``events``, polled for its end."""

    def __init__(self, shell: ExecShell, launched: _Exec, events: ProcessEvents) -> None:
        self._shell = shell
        self._launched = launched
        self._events = events
        self._kill = GraceKill(
            lambda name: shell._signal(launched, name),
            lambda: self._follower is not None and not self._follower.done(),
        )

    async def stop(self) -> None:
        """Stop following (the sandbox is going away, and the process with it)."""
        await self._kill.stop()
        await super().stop()

    async def follow_until_ended(self, timeout: float | None) -> None:
        shell, launched = self._shell, self._launched
        timed_out = False
        try:
            try:
                await asyncio.wait_for(shell._until_exited(launched.exec_id), timeout)
            except TimeoutError:
                timed_out = True
                await shell._signal(launched, "KILL")
                await shell._until_exited(launched.exec_id)
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(launched.output.ended), STREAM_END_SECONDS)
            code = TIMEOUT_EXIT_CODE if timed_out else await shell._exit_code(launched.exec_id)
        except asyncio.CancelledError:
            with suppress(Exception):
                await asyncio.shield(shell._signal(launched, "KILL"))
            raise
        except Exception as error:  # the engine or the container went away
            self._events.failed(SandboxUnavailable(f"the sandbox stopped: {error}"))
            return
        finally:
            launched.stream.close()
        self._events.ended(CommandOutcome(code, timed_out=timed_out))

    async def write(self, data: bytes) -> None:
        self._launched.stream.write(data)
        await self._launched.stream.drain()

    async def close_stdin(self) -> None:
        self._launched.stream.close_stdin()

    async def signal(self, name: str, grace: float | None) -> None:
        await self._kill.signal(name, grace)
