"""LOCAL: commands run on the host with ``bash -c``, each in its own process group.

The process group is what makes timeouts and cancellation reliable: killing it takes the
command's children with it. A command is finished when bash exits; output still arriving
from a background child is drained briefly and then cut, so ``sleep 100 & echo started``
returns at once. Whatever a session's commands left running is killed when it closes.
"""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

from agent_runner.backends.base import (
    STATE_WRAPPER,
    CommandOutcome,
    CommandRequest,
    HostKeptState,
    SandboxInfo,
    ShellSpec,
    ShellState,
)
from agent_runner.backends.executor import may_change_state
from agent_runner.errors import ModeUnavailable, SessionClosed, WorkingDirectoryMissing
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

DRAIN_SECONDS = 0.1
"""How long output is still read after the command exited, for children that hold the pipes."""

_STREAM_OF_FD = {1: Stream.STDOUT, 2: Stream.STDERR}


class _CommandProtocol(asyncio.SubprocessProtocol):
    """Feeds pipe data to the collector and signals exit and end-of-output separately."""

    def __init__(self, output: OutputCollector) -> None:
        loop = asyncio.get_running_loop()
        self.output = output
        self.exited: asyncio.Future[None] = loop.create_future()
        self.drained: asyncio.Future[None] = loop.create_future()
        self._open_pipes = {1, 2}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        self.output.feed(_STREAM_OF_FD[fd], data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        self._open_pipes.discard(fd)
        if not self._open_pipes and not self.drained.done():
            self.drained.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


def _bash() -> str:
    bash = _find_bash(os.environ.get("PATH"))
    if bash is None:
        raise ModeUnavailable("bash not found on PATH: LOCAL mode runs commands with bash -c")
    return bash


@functools.lru_cache(maxsize=8)
def _find_bash(path: str | None) -> str | None:
    """Searching PATH costs a stat per entry: once per PATH value is enough."""
    return shutil.which("bash", path=path)


def _kill_group(pgid: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


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
        self._groups: set[int] = set()
        self._closed = False

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        if self._closed:
            raise SessionClosed("this session is closed; open a new one")
        cwd = self._usable_cwd(output)
        env = self._environment(request.env)
        argv = [self._bash, "-c", request.command]
        state_file = None
        if self._state_dir is not None and may_change_state(request.command, env or os.environ):
            state_file = Path(self._state_dir, "state")
            state_file.unlink(missing_ok=True)
            argv = [self._bash, "-c", STATE_WRAPPER, "bash", str(state_file), request.command]
        outcome = await self._spawn(argv, cwd, env, request.timeout, output)
        if state_file is not None:
            self._remember(state_file, request.env)
        return outcome

    def _environment(self, overlay: Mapping[str, str]) -> dict[str, str] | None:
        """The command's environment; ``None`` (inherit, no copy) when nothing changes it."""
        if not self._inherits:
            return {**self._state.env, **overlay}
        extra = {**self._state.env, **overlay}
        return {**os.environ, **extra} if extra else None

    def _usable_cwd(self, output: OutputCollector) -> str:
        cwd = self._state.cwd
        if os.path.isdir(cwd):
            return cwd
        if not os.path.isdir(self._initial_cwd):
            raise WorkingDirectoryMissing(
                f"the session's working directories {cwd} and {self._initial_cwd} no longer exist"
            )
        note = f"agent-runner: working directory {cwd} no longer exists; "
        output.feed(Stream.STDERR, f"{note}running in {self._initial_cwd}\n".encode())
        return self._initial_cwd

    def _remember(self, state_file: Path, overlay: Mapping[str, str]) -> None:
        with suppress(FileNotFoundError):
            self._adopt(state_file.read_bytes(), overlay)

    async def _spawn(
        self,
        argv: list[str],
        cwd: str,
        env: Mapping[str, str] | None,
        timeout: float | None,
        output: OutputCollector,
    ) -> CommandOutcome:
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _CommandProtocol(output),
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        pgid = transport.get_pid()
        self._groups.add(pgid)
        output.set_flow_control(
            lambda: _set_reading(transport, False), lambda: _set_reading(transport, True)
        )
        timed_out = False
        try:
            try:
                await asyncio.wait_for(asyncio.shield(protocol.exited), timeout)
            except TimeoutError:
                timed_out = True
                _kill_group(pgid)
                await protocol.exited
            # What the command wrote before exiting is read in full, listener or not.
            output.clear_flow_control()
            _set_reading(transport, True)
            with suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(protocol.drained), DRAIN_SECONDS)
        except BaseException:
            _kill_group(pgid)
            raise
        finally:
            output.clear_flow_control()
            transport.close()
            self._forget_if_gone(pgid)
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True)
        code = transport.get_returncode()
        assert code is not None
        return CommandOutcome(code if code >= 0 else 128 - code)

    def _forget_if_gone(self, pgid: int) -> None:
        """Track only groups with live members, so a recycled id is never killed later."""
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            self._groups.discard(pgid)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for pgid in self._groups:
            _kill_group(pgid)
        self._groups.clear()
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)


def _set_reading(transport: asyncio.SubprocessTransport, reading: bool) -> None:
    for fd in (1, 2):
        pipe = transport.get_pipe_transport(fd)
        if isinstance(pipe, asyncio.ReadTransport) and not pipe.is_closing():
            if reading:
                pipe.resume_reading()
            else:
                pipe.pause_reading()


class LocalBackend:
    """Opens host shells; holds nothing itself."""

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
