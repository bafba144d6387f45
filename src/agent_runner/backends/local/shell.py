"""LOCAL: commands run on the host with ``bash -c``, each in its own process group.

Each shell's commands are started by a command group of the host supervisor
(:mod:`.supervisor`), so everything they start, detached or not, ends when the session
closes, and also when the runner itself is killed. The runner makes each command's pipes and
reads them itself. A command is finished when bash exits; output still arriving from a
background child is drained briefly and then cut, so ``sleep 100 & echo started`` returns at
once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    Followed,
    HostKeptState,
    ProcessEvents,
    ProcessRequest,
    SandboxInfo,
    ShellSpec,
    ShellState,
)
from agent_runner.backends.executor import LONG_COMMAND, bash_arguments, may_change_state
from agent_runner.backends.local.client import CommandGroup, Spawned
from agent_runner.errors import ModeUnavailable, SessionClosed, WorkingDirectoryMissing
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

DRAIN_SECONDS = 0.1
"""How long output is still read after the command exited, for children that hold the pipes."""
SIGNALS = {
    name: getattr(signal, f"SIG{name}")
    for name in ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT")
}
Feed = Callable[[Stream, bytes], None]
SCRIPT_FD_PLACEHOLDER = -1
"""Stands for the script's descriptor in argv until the group knows its number."""


def _bash() -> str:
    bash = _find_bash(os.environ.get("PATH"))
    if bash is None:
        raise ModeUnavailable("bash not found on PATH: LOCAL mode runs commands with bash -c")
    return bash


@functools.lru_cache(maxsize=8)
def _find_bash(path: str | None) -> str | None:
    """Searching PATH costs a stat per entry: once per PATH value is enough."""
    found = shutil.which("bash", path=path)
    return os.path.abspath(found) if found else None


class _PipeReader(asyncio.Protocol):
    """One output pipe into ``feed``; says when the pipe is closed."""

    def __init__(self, stream: Stream, feed: Feed, closed: asyncio.Future[None]) -> None:
        self._stream = stream
        self._feed = feed
        self._closed = closed

    def data_received(self, data: bytes) -> None:
        self._feed(self._stream, data)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


class _PipeWriter(asyncio.Protocol):
    """A process's stdin, with the transport's flow control for ``drain``."""

    def __init__(self) -> None:
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False

    def pause_writing(self) -> None:
        self.writable.clear()

    def resume_writing(self) -> None:
        self.writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.writable.set()


class _Launched:
    """A started command: its group entry and the runner's ends of its pipes."""

    def __init__(
        self,
        spawned: Spawned,
        readers: list[asyncio.ReadTransport],
        drained: list[asyncio.Future[None]],
        stdin: tuple[asyncio.WriteTransport, _PipeWriter] | None,
    ) -> None:
        self.spawned = spawned
        self.readers = readers
        self.drained = drained
        self.stdin = stdin

    def pause(self) -> None:
        for reader in self.readers:
            if not reader.is_closing():
                reader.pause_reading()

    def resume(self) -> None:
        for reader in self.readers:
            if not reader.is_closing():
                reader.resume_reading()

    async def drain(self) -> None:
        """Read what is still coming (listener or not), briefly: a background child may
        hold the pipes open for ever."""
        self.resume()
        with suppress(TimeoutError):
            await asyncio.wait_for(
                asyncio.gather(*map(asyncio.shield, self.drained)), DRAIN_SECONDS
            )

    def close(self) -> None:
        for reader in self.readers:
            reader.close()
        if self.stdin is not None:
            self.stdin[0].close()


class LocalShell(HostKeptState):
    """A host shell for one session (or one command)."""

    sandbox_id = None

    def __init__(self, spec: ShellSpec) -> None:
        cwd = os.path.abspath(spec.cwd or os.getcwd())
        if not os.path.isdir(cwd):
            raise WorkingDirectoryMissing(f"working directory {cwd} does not exist")
        self._bash = _bash()
        self._initial_cwd = cwd
        self._inherits = not spec.persistent and not spec.unset
        """One command with nothing carried over: it gets the host environment as it is."""
        if self._inherits:
            self._state = ShellState(cwd, dict(spec.env))
        else:
            host = {k: v for k, v in os.environ.items() if k not in spec.unset}
            self._state = ShellState(cwd, {**host, **spec.env})
        self._state_dir = tempfile.mkdtemp(prefix="stigmer-shell-") if spec.persistent else None
        self._group: CommandGroup | None = None
        self._processes: set[LocalProcess] = set()
        self._closed = False

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        self._check_open()
        cwd = self._usable_cwd(output.feed)
        env = self._environment(request.env)
        state_file = None
        if self._state_dir is not None and may_change_state(request.command, env):
            state_file = Path(self._state_dir, "state")
            state_file.unlink(missing_ok=True)
        launched = await self._launch(
            request.command, cwd, env, str(state_file) if state_file else None, output.feed
        )
        group, spawned = self._opened_group(), launched.spawned
        output.set_flow_control(launched.pause, launched.resume)
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(spawned.exited), request.timeout)
            except TimeoutError:
                timed_out = True
                group.signal(spawned, signal.SIGKILL)
                await spawned.exited
            # What the command wrote before exiting is read in full, listener or not.
            output.clear_flow_control()
            await launched.drain()
        except BaseException:
            group.signal(spawned, signal.SIGKILL)
            raise
        finally:
            output.clear_flow_control()
            launched.close()
        if state_file is not None:
            self._remember(state_file, request.env)
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True)
        return CommandOutcome(spawned.exited.result())

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> LocalProcess:
        """A process beside the session's commands, in the same group (it dies with it)."""
        self._check_open()
        cwd = self._usable_cwd(events.output)
        env = self._environment(request.env)
        launched = await self._launch(
            request.command, cwd, env, None, events.output, stdin=request.stdin
        )
        process = LocalProcess(self._opened_group(), launched, events)
        self._processes.add(process)
        process.follow(process.follow_until_ended(request.timeout), self._processes.discard)
        return process

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosed("this session is closed; open a new one")

    def _opened_group(self) -> CommandGroup:
        if self._group is None:
            self._group = CommandGroup.open()
        return self._group

    async def _launch(
        self,
        command: str,
        cwd: str,
        env: dict[str, str],
        state_file: str | None,
        feed: Feed,
        *,
        stdin: bool = False,
    ) -> _Launched:
        """Make the command's pipes, have the group start it, and read them here."""
        loop = asyncio.get_running_loop()
        script = None
        if len(command) > LONG_COMMAND:
            script = tempfile.TemporaryFile()  # noqa: SIM115 - closed once handed over
            script.write(command.encode("utf-8", "surrogateescape"))
            script.seek(0)
        arguments = bash_arguments(command, state_file, SCRIPT_FD_PLACEHOLDER if script else None)
        argv = [self._bash, *arguments]
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        in_read, in_write = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), -1)
        theirs = [in_read, out_write, err_write] + ([script.fileno()] if script else [])
        ours = [out_read, err_read] + ([in_write] if stdin else [])
        try:
            script_at = argv.index(str(SCRIPT_FD_PLACEHOLDER)) if script else None
            spawned = await self._opened_group().spawn(argv, cwd, env, theirs, script_at)
        except BaseException:
            for fd in ours:
                os.close(fd)
            raise
        finally:
            for fd in theirs[:3]:
                os.close(fd)
            if script is not None:
                script.close()
        readers: list[asyncio.ReadTransport] = []
        drained: list[asyncio.Future[None]] = []
        for fd, stream in ((out_read, Stream.STDOUT), (err_read, Stream.STDERR)):
            closed = loop.create_future()
            transport, _ = await loop.connect_read_pipe(
                functools.partial(_PipeReader, stream, feed, closed), os.fdopen(fd, "rb", 0)
            )
            readers.append(transport)
            drained.append(closed)
        writer = None
        if stdin:
            transport_w, protocol = await loop.connect_write_pipe(
                _PipeWriter, os.fdopen(in_write, "wb", 0)
            )
            writer = (transport_w, protocol)
        return _Launched(spawned, readers, drained, writer)

    def _environment(self, overlay: Mapping[str, str]) -> dict[str, str]:
        """The command's environment: the session's, or (one-off) the host's as it is."""
        if self._inherits:
            return {**os.environ, **self._state.env, **overlay}
        return {**self._state.env, **overlay}

    def _usable_cwd(self, feed: Feed) -> str:
        """Where the session stands, or where it started if that is gone (said on stderr)."""
        cwd = self._state.cwd
        if os.path.isdir(cwd):
            return cwd
        if not os.path.isdir(self._initial_cwd):
            raise WorkingDirectoryMissing(
                f"the session's working directories {cwd} and {self._initial_cwd} no longer exist"
            )
        note = f"agent-runner: working directory {cwd} no longer exists; "
        feed(Stream.STDERR, f"{note}running in {self._initial_cwd}\n".encode())
        return self._initial_cwd

    def _remember(self, state_file: Path, overlay: Mapping[str, str]) -> None:
        with suppress(FileNotFoundError):
            self._adopt(state_file.read_bytes(), overlay)

    async def close(self) -> None:
        """Kill everything the session started, detached or not, and forget its state."""
        if self._closed:
            return
        self._closed = True
        await asyncio.gather(*(process.stop() for process in list(self._processes)))
        if self._group is not None:
            await self._group.close()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)


class LocalProcess(Followed):
    """A process on the host: its output to ``events``; stdin and signals through the group."""

    def __init__(self, group: CommandGroup, launched: _Launched, events: ProcessEvents) -> None:
        self._group = group
        self._launched = launched
        self._events = events
        self._killer: asyncio.TimerHandle | None = None

    async def follow_until_ended(self, timeout: float | None) -> None:
        spawned = self._launched.spawned
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(spawned.exited), timeout)
            except TimeoutError:
                timed_out = True
                self._group.signal(spawned, signal.SIGKILL)
                await spawned.exited
            await self._launched.drain()
        except SessionClosed as error:
            self._events.failed(error)
            return
        finally:
            self._launched.close()
            if self._killer is not None:
                self._killer.cancel()
        code = TIMEOUT_EXIT_CODE if timed_out else spawned.exited.result()
        self._events.ended(CommandOutcome(code, timed_out=timed_out))

    async def write(self, data: bytes) -> None:
        stdin = self._launched.stdin
        if stdin is None or stdin[1].closed or stdin[0].is_closing():
            raise SessionClosed("this process takes no input (its stdin is closed)")
        stdin[0].write(data)
        await stdin[1].writable.wait()

    async def close_stdin(self) -> None:
        stdin = self._launched.stdin
        if stdin is not None:
            stdin[0].close()

    async def signal(self, name: str, grace: float | None) -> None:
        self._group.signal(self._launched.spawned, SIGNALS[name])
        if grace is not None and name != "KILL":
            self._killer = asyncio.get_running_loop().call_later(
                grace, self._group.signal, self._launched.spawned, signal.SIGKILL
            )


class LocalBackend:
    """Opens host shells; holds nothing itself (the supervisor is the process's)."""

    name = "local"

    async def open_shell(self, spec: ShellSpec) -> LocalShell:
        return LocalShell(spec)

    async def warm(self, cwd: str | None) -> None:
        return None

    async def sandboxes(self) -> list[SandboxInfo]:
        return []

    async def prune(self, *, everything: bool = False) -> list[SandboxInfo]:
        return []

    async def close(self) -> None:
        return None
