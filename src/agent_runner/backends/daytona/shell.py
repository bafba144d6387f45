"""How commands run in a Daytona sandbox: session commands under the driver.

One Daytona session per shell runs its commands one at a time; cwd and exported variables
are kept here (:class:`~agent_runner.backends.base.HostKeptState`) and handed to each
command by the driver (:mod:`.driver`). Requests per command:

- nobody listens to the output live: **one**, a synchronous session command, which returns
  stdout and stderr apart, the exit code and the state in its answer (the middle of a long
  output cut in the sandbox already);
- a listener: **two**, the command started asynchronously plus the log websocket, read until
  the driver's end marks (no exit-code poll, no trailing second of silence).

A session command has no timeout of its own and the toolbox no kill: the timeout is ours,
and one more ``process.exec`` kills the tree by its pid file; the partial output is kept,
the exit code is 124. Cancellation kills the same way. While a command or a process runs,
:class:`~.remote.KeepAlive` refreshes the sandbox's activity (auto-stop ignores processes).
A sandbox auto-stopped between commands is started again by the next one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
import tempfile
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent_runner.backends.base import (
    CommandOutcome,
    CommandRequest,
    HostKeptState,
    ProcessEvents,
    ProcessRequest,
    ShellState,
)
from agent_runner.backends.daytona.driver import (
    CHANGES,
    SETUP,
    Launch,
    Marks,
    command_text,
    prelude,
    script_text,
)
from agent_runner.backends.daytona.process import DaytonaProcess
from agent_runner.backends.daytona.remote import Follower, KeepAlive, NotStarted, Remote
from agent_runner.backends.daytona.workspace import unpack
from agent_runner.backends.executor import check_request, may_change_state
from agent_runner.errors import InvalidSetting, ModeUnavailable, SandboxUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import TIMEOUT_EXIT_CODE, Stream

logger = logging.getLogger("agent_runner")
T = TypeVar("T")

DRAIN_SECONDS = 1.0
"""After a kill, how long the rest of the output may take before its relays are killed too."""
KILLED_SECONDS = 60.0
"""How long a killed synchronous command may take to answer."""


SESSION_PREFIX = "stigmer-"
"""The Daytona sessions of our shells (and their processes) are named so."""


def directory_of(token: str) -> str:
    """Where a shell's pid, output and state files live in the sandbox."""
    return f"/tmp/.stigmer/{token}"


@dataclass(frozen=True)
class Options:
    """What the backend decides for a shell."""

    env: Mapping[str, str]
    unset: frozenset[str]
    persistent: bool
    cap: int
    """Bytes kept per stream (head and tail), cut in the sandbox when nobody listens."""
    wake: Callable[[], Awaitable[bool]]
    """Start the sandbox again (it stopped); ``False`` when it cannot be."""
    release: Callable[[DaytonaShell], Awaitable[None]]
    """What closing hands the sandbox back to (deleted, or kept)."""


class DaytonaShell(HostKeptState):
    """A Daytona sandbox's session: commands in order, processes beside them."""

    _numbers = itertools.count(1)

    def __init__(
        self, remote: Remote, options: Options, *, token: str, workspace: str, copied: bool
    ) -> None:
        self.remote = remote
        self.session = f"{SESSION_PREFIX}{token}"
        self.directory = directory_of(token)
        self.workspace = workspace
        self.copied = copied
        self.keepalive = KeepAlive(remote.sandbox, remote.settings)
        self._options = options
        self._state = ShellState(workspace, dict(options.env))
        self._unset = set(options.unset)
        self._processes: set[DaytonaProcess] = set()
        self._running_at_close: list[DaytonaProcess] = []
        self._idle_sessions: list[str] = []
        self._session_numbers = itertools.count(1)
        self.closed = False

    @classmethod
    async def open(cls, remote: Remote, options: Options, archive: str | None) -> DaytonaShell:
        """Start the shell's Daytona session and set the sandbox up (2-3 requests)."""
        token = secrets.token_hex(8)
        session, directory = f"{SESSION_PREFIX}{token}", directory_of(token)
        await remote.create_session(session)
        upload = f"/tmp/.stigmer-upload-{token}.tar" if archive else ""
        if archive:
            await remote.upload(archive, upload)
        answer = await remote.execute(
            session, script_text(SETUP, token, directory, upload), run_async=False
        )
        marks = Marks(token, lambda data: None)
        marks.push(answer.stdout or "")
        if not marks.ended:
            detail = (answer.stderr or answer.stdout or "").strip().splitlines()
            raise SandboxUnavailable(
                f"could not set up Daytona sandbox {remote.id} (exit {answer.exit_code}): "
                + (detail[-1] if detail else "no output; does its image have bash?")
            )
        missing, copied, *where = marks.fields
        if missing.strip(","):
            raise SandboxUnavailable(
                f"the Daytona sandbox {remote.id} lacks {missing.strip(',')}, which the "
                "runner needs (a Debian or Ubuntu based snapshot has them)"
            )
        workspace = " ".join(where)
        return cls(
            remote, options, token=token, workspace=workspace, copied=copied == "1" or bool(archive)
        )

    @property
    def sandbox_id(self) -> str:
        return self.remote.id

    def _check(self, request: CommandRequest | ProcessRequest) -> None:
        if self.closed:
            raise SessionClosed("this session's sandbox is closed")
        problem = check_request(
            {"command": request.command, "env": dict(request.env), "timeout": request.timeout}
        )
        if problem is not None:
            raise InvalidSetting(f"the sandbox refused the command: {problem}")

    def _launch(self) -> Launch:
        return Launch(next(self._numbers), secrets.token_hex(8), self.directory)

    def _prelude(self, overlay: Mapping[str, str]) -> str:
        return prelude(self._state.cwd, {**self._state.env, **overlay}, self._unset)

    async def _awake(self, action: Callable[[], Awaitable[T]]) -> T:
        """``action``, once more after starting the sandbox if it had stopped."""
        try:
            return await action()
        except NotStarted:
            if not await self._options.wake():
                raise
            self._idle_sessions.clear()  # a stop ended every session in it
            await self.remote.create_session(self.session)
            return await action()

    # -- commands -------------------------------------------------------------------

    async def run(self, request: CommandRequest, output: OutputCollector) -> CommandOutcome:
        self._check(request)
        capture = self._options.persistent and may_change_state(
            request.command, {**self._state.env, **request.env}
        )
        launch = self._launch()
        text = command_text(
            launch,
            request.command,
            self._prelude(request.env),
            live=output.listening,
            cap=self._options.cap,
            stdin=False,
            capture=capture,
        )
        async with self.keepalive.hold():
            if output.listening:
                outcome, recorded = await self._streamed(launch, text, request.timeout, output)
            else:
                outcome, recorded = await self._synchronous(launch, text, request.timeout, output)
        if capture and not outcome.timed_out:
            self._take(recorded, request.env)
        return outcome

    async def _synchronous(
        self, launch: Launch, text: str, timeout: float | None, output: OutputCollector
    ) -> tuple[CommandOutcome, bytes]:
        bound = None if timeout is None else timeout + KILLED_SECONDS
        task = asyncio.ensure_future(
            self._awake(
                lambda: self.remote.execute(self.session, text, run_async=False, timeout=bound)
            )
        )
        timed_out = False
        try:
            try:
                answer = await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                timed_out = True
                await self.remote.signal(launch, "KILL")
                answer = await asyncio.wait_for(task, KILLED_SECONDS)
        except TimeoutError:
            raise SandboxUnavailable(
                f"the Daytona sandbox {self.remote.id} did not end a killed command"
            ) from None
        except asyncio.CancelledError:
            task.cancel()
            await asyncio.shield(self._kill_quietly(launch))
            raise
        finally:
            if not task.done():  # the kill itself failed: the call is abandoned
                task.cancel()
        stdout, stderr = (_marks(launch, output, stream) for stream in Stream)
        stdout.push(answer.stdout or "")
        stderr.push(answer.stderr or "")
        code = stdout.exit_code
        if code is None:
            code = answer.exit_code if answer.exit_code is not None else 1
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True), b""
        return CommandOutcome(code), stdout.state

    async def _streamed(
        self, launch: Launch, text: str, timeout: float | None, output: OutputCollector
    ) -> tuple[CommandOutcome, bytes]:
        started = await self._awake(lambda: self.remote.execute(self.session, text, run_async=True))
        follower = Follower(launch, output.feed, output.skipped)
        output.set_flow_control(follower.pause, follower.resume)
        follower.start(self.remote, self.session, started.cmd_id)
        timed_out = False
        try:
            try:
                ended = await asyncio.wait_for(follower.wait(), timeout)
            except TimeoutError:
                timed_out = True
                await self.remote.signal(launch, "KILL")
                output.clear_flow_control()
                follower.resume()
                try:
                    ended = await asyncio.wait_for(follower.wait(), DRAIN_SECONDS)
                except TimeoutError:
                    await self.remote.signal(launch, "KILL", relays=True)
                    ended = True
        except asyncio.CancelledError:
            await asyncio.shield(self._kill_quietly(launch))
            raise
        finally:
            output.clear_flow_control()
            await follower.close()
        if timed_out:
            return CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True), b""
        code = follower.stdout.exit_code if ended else None
        if code is None:
            code = await self.remote.exit_code(self.session, started.cmd_id)
        if code is None:
            raise SandboxUnavailable(
                f"the Daytona sandbox {self.remote.id} ended a command's output before its end"
            )
        return CommandOutcome(code), follower.stdout.state

    async def _kill_quietly(self, launch: Launch) -> None:
        try:
            await self.remote.signal(launch, "KILL", relays=True)
        except SandboxUnavailable as error:
            logger.debug("could not kill a cancelled command: %s", error)

    def _take(self, recorded: bytes, overlay: Mapping[str, str]) -> None:
        """Adopt what the command recorded; remember what it unset, since the driver starts
        from the sandbox's own environment and must unset it again each time."""
        before = set(self._state.env)
        self._adopt(recorded, overlay)
        after = set(self._state.env)
        self._unset = (self._unset | (before - after)) - after

    async def adjust(self, cwd: str | None, changes: Mapping[str, str | None]) -> None:
        await super().adjust(cwd, changes)
        self._unset |= {name for name, value in changes.items() if value is None}
        self._unset -= {name for name, value in changes.items() if value is not None}

    # -- processes --------------------------------------------------------------------

    async def start(self, request: ProcessRequest, events: ProcessEvents) -> DaytonaProcess:
        """A process runs in a Daytona session of its own (sessions run one command at a
        time), reused by a later process once it ended."""
        self._check(request)
        launch = self._launch()
        text = command_text(
            launch,
            request.command,
            self._prelude(request.env),
            live=True,
            cap=self._options.cap,
            stdin=request.stdin,
            capture=False,
        )

        async def launched() -> tuple[str, str]:
            session = await self._process_session()
            started = await self.remote.execute(session, text, run_async=True)
            return session, started.cmd_id

        session, command_id = await self._awake(launched)
        process = DaytonaProcess(self.remote, session, command_id, launch, events)
        self._processes.add(process)
        process.follow(request.timeout, self.keepalive, self._process_ended)
        return process

    async def _process_session(self) -> str:
        if self._idle_sessions:
            return self._idle_sessions.pop()
        name = f"{self.session}-p{next(self._session_numbers)}"
        await self.remote.create_session(name)
        return name

    def _process_ended(self, process: DaytonaProcess, reusable: bool) -> None:
        self._processes.discard(process)
        if reusable and not self.closed:
            self._idle_sessions.append(process.session)

    # -- the workspace ------------------------------------------------------------------

    async def download(self, target: str) -> list[str]:
        """Copy the files commands changed in the workspace copy back into ``target``."""
        if self.closed:
            raise SessionClosed("this session's sandbox is closed")
        if not self.copied:
            raise ModeUnavailable(
                "only a copied workspace can be downloaded (execution.sandbox.workspace copy)"
            )
        token = secrets.token_hex(8)
        remote_tar = f"{self.directory}/changes.tar"
        text = script_text(CHANGES, token, self.workspace, remote_tar)
        answer = await self._awake(lambda: self.remote.execute(self.session, text, run_async=False))
        marks = Marks(token, lambda data: None)
        marks.push(answer.stdout or "")
        if not marks.ended:
            raise SandboxUnavailable(
                f"could not pack the changed files in {self.remote.id}: "
                f"{(answer.stderr or '').strip() or answer.exit_code}"
            )
        handle, local = tempfile.mkstemp(prefix="stigmer-changes-", suffix=".tar")
        os.close(handle)
        try:
            await self.remote.download(remote_tar, local)
            return await asyncio.to_thread(unpack, local, Path(target))
        finally:
            os.unlink(local)

    # -- the end --------------------------------------------------------------------------

    async def close(self) -> None:
        """Stop following the processes and hand the sandbox back (deleted, or kept with
        nothing of this shell left running in it)."""
        if self.closed:
            return
        self.closed = True
        self._running_at_close = list(self._processes)
        await asyncio.gather(*(p.stop() for p in self._running_at_close))
        await self.keepalive.close()
        await self._options.release(self)

    async def end_processes(self) -> None:
        """Kill what this shell started and end its Daytona sessions (a kept sandbox)."""
        processes = self._running_at_close
        await asyncio.gather(
            *(self.remote.signal(p.launch, "KILL", relays=True) for p in processes),
            return_exceptions=True,
        )
        sessions = [self.session, *self._idle_sessions, *(p.session for p in processes)]
        await asyncio.gather(*(self.remote.delete_session(name) for name in sessions))


def _marks(launch: Launch, output: OutputCollector, stream: Stream) -> Marks:
    """The reader of one stream of a synchronous answer, into ``output``."""

    def feed(data: bytes) -> None:
        output.feed(stream, data)

    def skip(dropped: int) -> None:
        output.skipped(stream, dropped)

    return Marks(launch.token, feed, skip)
