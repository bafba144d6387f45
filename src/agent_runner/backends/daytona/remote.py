"""One Daytona sandbox's toolbox, as the shell and its processes use it.

Every toolbox call goes through :class:`Remote`, so every failure becomes one line: when a
call fails, the sandbox's record is read once more to say *why* (deleted, stopped by
auto-stop, in ``error`` with its ``errorReason``), which is what a user can act on; a
proxy's bare 502 or a websocket's "close code 1006" is not. A call refused because the
sandbox is not started never reached it, so the shell may start it and try again
(:class:`NotStarted`). :class:`Follower` reads a driver run off the log websocket until its
marks (:mod:`.driver`) say both streams ended; :class:`KeepAlive` refreshes the sandbox's
activity while anything runs, since Daytona's auto-stop ignores running processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from agent_runner.backends.daytona.client import REQUEST_TIMEOUT, explain
from agent_runner.backends.daytona.driver import LEFTOVERS, Launch, Marks, script_text
from agent_runner.backends.daytona.lifecycle import state_of
from agent_runner.backends.launcher import signal_argv
from agent_runner.config.sections import DaytonaSettings
from agent_runner.errors import SandboxUnavailable
from agent_runner.results import Stream
from daytona import (
    AsyncSandbox,
    DaytonaBadRequestError,
    DaytonaError,
    DaytonaNotFoundError,
    SessionExecuteRequest,
    SessionExecuteResponse,
)

FOREVER = 10**8
CLOSE_SECONDS = 2.0
"""How long a websocket may take to close politely before it is cut."""
"""An HTTP bound for a call that lasts as long as its command (the SDK's default is 300 s)."""


class NotStarted(SandboxUnavailable):
    """The toolbox refused a call because the sandbox is not started, or the daemon no
    longer knows the session (it restarted): the call never ran, so it may be tried again
    once the sandbox is started and the session made anew."""


class Remote:
    """The toolbox calls of one sandbox, each failure explained."""

    def __init__(self, sandbox: AsyncSandbox, settings: DaytonaSettings) -> None:
        self.sandbox = sandbox
        self.settings = settings

    @property
    def id(self) -> str:
        return str(self.sandbox.id)

    async def gone(self, error: BaseException) -> SandboxUnavailable:
        """Why a toolbox call failed, in one line (one request to read the record)."""
        sandbox = self.sandbox
        try:
            await sandbox.refresh_data(request_timeout=REQUEST_TIMEOUT)
        except DaytonaNotFoundError:
            return SandboxUnavailable(f"the Daytona sandbox {sandbox.id} is gone (deleted)")
        except DaytonaError as lookup:
            return SandboxUnavailable(
                str(explain(lookup, f"look up sandbox {sandbox.id}", self.settings))
            )
        state = state_of(sandbox)
        if state == "error":
            reason = sandbox.error_reason or "no reason given"
            return SandboxUnavailable(f"the Daytona sandbox {sandbox.id} is in error: {reason}")
        if state in ("destroyed", "destroying"):
            return SandboxUnavailable(f"the Daytona sandbox {sandbox.id} is gone ({state})")
        if state in ("stopped", "stopping", "archived", "archiving"):
            return SandboxUnavailable(
                f"the Daytona sandbox {sandbox.id} was {state} (auto-stop after "
                f"{self.settings.auto_stop_interval} min without activity?)"
            )
        return SandboxUnavailable(
            str(explain(error, f"run a command in sandbox {sandbox.id}", self.settings))
        )

    async def _call(self, work: Awaitable[Any]) -> Any:
        try:
            return await work
        except (DaytonaBadRequestError, DaytonaNotFoundError) as error:
            explained = await self.gone(error)
            if any(sign in str(error) for sign in ("Is the Sandbox started", "session not found")):
                raise NotStarted(explained.message) from None
            raise explained from None
        except DaytonaError as error:
            raise await self.gone(error) from None

    async def create_session(self, name: str) -> None:
        await self._call(self.sandbox.process.create_session(name, REQUEST_TIMEOUT))

    async def delete_session(self, name: str) -> None:
        with contextlib.suppress(DaytonaError):
            await self.sandbox.process.delete_session(name, REQUEST_TIMEOUT)

    async def end_leftovers(self, prefix: str) -> int:
        """Kill what earlier shells left running and end their sessions (named
        ``prefix...``): a gone runner's, in a sandbox taken over. Returns how many sessions."""
        process = self.sandbox.process
        await self._call(process.exec(script_text(LEFTOVERS, ""), timeout=int(REQUEST_TIMEOUT)))
        sessions = await self._call(process.list_sessions(REQUEST_TIMEOUT))
        names = [s.session_id for s in sessions if s.session_id.startswith(prefix)]
        await asyncio.gather(*(self.delete_session(name) for name in names))
        return len(names)

    async def execute(
        self, session: str, text: str, *, run_async: bool, timeout: float | None = None
    ) -> SessionExecuteResponse:
        """Start (``run_async``) or run a session command; ``timeout`` bounds the call."""
        request = SessionExecuteRequest(
            command=text, run_async=run_async, suppress_input_echo=run_async or None
        )
        bound = int(timeout) if timeout else (int(REQUEST_TIMEOUT) if run_async else FOREVER)
        process = self.sandbox.process
        response: SessionExecuteResponse = await self._call(
            process.execute_session_command(session, request, timeout=bound)
        )
        return response

    async def follow(
        self,
        session: str,
        command_id: str,
        on_stdout: Callable[[str], Awaitable[None]],
        on_stderr: Callable[[str], Awaitable[None]],
    ) -> None:
        process = self.sandbox.process
        await self._call(
            process.get_session_command_logs_async(session, command_id, on_stdout, on_stderr)
        )

    async def exit_code(self, session: str, command_id: str) -> int | None:
        process = self.sandbox.process
        command = await self._call(
            process.get_session_command(session, command_id, REQUEST_TIMEOUT)
        )
        code = command.exit_code
        return int(code) if code is not None else None

    async def send_input(self, session: str, command_id: str, data: str) -> None:
        process = self.sandbox.process
        await self._call(
            process.send_session_command_input(session, command_id, data, REQUEST_TIMEOUT)
        )

    async def signal(self, launch: Launch, name: str, *, relays: bool = False) -> None:
        """Send ``name`` to the tree of ``launch`` (one ``process.exec``)."""
        command = shlex.join(signal_argv(name, launch.pid_file, relays=relays))
        await self._call(self.sandbox.process.exec(command, timeout=int(REQUEST_TIMEOUT)))

    async def upload(self, local: str, remote: str) -> None:
        await self._call(self.sandbox.fs.upload_file(local, remote))

    async def download(self, remote: str, local: str) -> None:
        await self._call(self.sandbox.fs.download_file(remote, local))


class Follower:
    """A driver run's two streams, read off the log websocket until both are marked ended.

    The callbacks are coroutines the SDK awaits, so pausing them (a slow listener) stops
    the websocket's reading instead of piling output up in the runner. The SDK calls back
    once per websocket message (about a line); what arrives in one burst is handed on as
    one chunk, at the end of the loop's turn, so a backlog is a few large chunks for a
    listener, not thousands of small ones.
    """

    def __init__(
        self,
        launch: Launch,
        feed: Callable[[Stream, bytes], None],
        skip: Callable[[Stream, int], None] | None = None,
    ) -> None:
        self._feed = feed
        self._skip = skip
        self._pending: dict[Stream, list[bytes]] = {Stream.STDOUT: [], Stream.STDERR: []}
        self._flush_scheduled = False
        self.stdout = self._marks(launch, Stream.STDOUT)
        self.stderr = self._marks(launch, Stream.STDERR)
        self.started = asyncio.Event()
        self.done = asyncio.Event()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._task: asyncio.Task[None] | None = None

    def _marks(self, launch: Launch, stream: Stream) -> Marks:
        def collect(data: bytes) -> None:
            self._pending[stream].append(data)
            if not self._flush_scheduled:
                self._flush_scheduled = True
                asyncio.get_running_loop().call_soon(self.flush)

        def dropped(count: int) -> None:
            self.flush()
            if self._skip is not None:
                self._skip(stream, count)

        return Marks(launch.token, collect, dropped)

    def flush(self) -> None:
        """Hand on what arrived so far."""
        self._flush_scheduled = False
        for stream, parts in self._pending.items():
            if parts:
                data = b"".join(parts)
                parts.clear()
                self._feed(stream, data)

    def pause(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def _on_stdout(self, text: str) -> None:
        await self._on(self.stdout, text)

    async def _on_stderr(self, text: str) -> None:
        await self._on(self.stderr, text)

    async def _on(self, marks: Marks, text: str) -> None:
        marks.push(text)
        if self.stdout.started:
            self.started.set()
        if self.stdout.ended and self.stderr.ended:
            self.flush()
            self.done.set()
        else:
            await self._flowing.wait()

    def start(self, remote: Remote, session: str, command_id: str) -> None:
        self._task = asyncio.get_running_loop().create_task(
            remote.follow(session, command_id, self._on_stdout, self._on_stderr)
        )

    async def wait(self) -> bool:
        """``True`` once both streams ended; ``False`` when the log ended without the marks.
        Raises the stream's failure (the sandbox went away)."""
        assert self._task is not None
        waiter = asyncio.ensure_future(self.done.wait())
        try:
            await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self.done.is_set():
            return True
        self._task.result()
        return self.done.is_set()

    async def close(self) -> None:
        """Hang up the websocket (the run has ended, or is abandoned).

        The SDK closes the websocket politely, reading until the server's close frame;
        while a backlog of output is still coming that can take as long as the backlog,
        so a second cancellation cuts the connection instead.
        """
        self._flowing.set()
        task = self._task
        while task is not None and not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_SECONDS)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        self.flush()


class KeepAlive:
    """Refreshes the sandbox's activity every ``interval`` seconds while anything runs."""

    def __init__(self, sandbox: AsyncSandbox, settings: DaytonaSettings) -> None:
        self._sandbox = sandbox
        stop = settings.auto_stop_interval
        default = min(stop * 60 / 4, 60.0) if stop else None
        self.interval = settings.keepalive or default
        self._holders = 0
        self._task: asyncio.Task[None] | None = None
        self.refreshes = 0

    def rebind(self, sandbox: AsyncSandbox) -> None:
        self._sandbox = sandbox

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """While inside, the sandbox is kept from auto-stopping."""
        self._holders += 1
        if self._holders == 1 and self.interval and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._refresh(self.interval))
        try:
            yield
        finally:
            self._holders -= 1
            if self._holders == 0:
                await self.close()

    async def _refresh(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            with contextlib.suppress(DaytonaError):
                await self._sandbox.refresh_activity(request_timeout=REQUEST_TIMEOUT)
                self.refreshes += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
