"""A process beside the session's commands, in a Daytona session of its own.

Daytona runs a session's commands one at a time, async ones included, so each process
gets its own session (a finished one is reused by the next process). Its output comes off
the log websocket as it is written; stdin reaches it through the toolbox's
``send_session_command_input`` as base64 lines the driver's relay decodes (the daemon
takes text and ends every input with a newline), and a ``.`` line closes it. Input waits
for the driver's start mark: the daemon refuses input before the command's stdin exists.
Signals, the timeout and the KILL after a grace are each one ``process.exec`` on the pid
file (:mod:`agent_runner.backends.launcher`).
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

from agent_runner.backends.base import CommandOutcome, ProcessEvents
from agent_runner.backends.daytona.driver import Launch
from agent_runner.backends.daytona.remote import Follower, KeepAlive, Remote
from agent_runner.backends.launcher import GraceKill
from agent_runner.errors import SandboxUnavailable, SessionClosed
from agent_runner.results import TIMEOUT_EXIT_CODE

INPUT_CHUNK = 1 << 20
"""Bytes of stdin per request (base64 makes the line a third longer)."""
START_SECONDS = 60.0
"""How long the first input may wait for the driver to have opened the command's stdin."""
DRAIN_SECONDS = 1.0


class DaytonaProcess:
    """Follows one process until it ends; writes, closes and signals it."""

    def __init__(
        self,
        remote: Remote,
        session: str,
        command_id: str,
        launch: Launch,
        events: ProcessEvents,
    ) -> None:
        self.remote = remote
        self.session = session
        self.command_id = command_id
        self.launch = launch
        self._events = events
        self._follower = Follower(launch, events.output)
        self._task: asyncio.Task[None] | None = None
        self._kill = GraceKill(
            lambda name: remote.signal(launch, name),
            lambda: self._task is not None and not self._task.done(),
        )
        self._reusable = False

    def follow(
        self,
        timeout: float | None,
        keepalive: KeepAlive,
        done: Callable[[DaytonaProcess, bool], None],
    ) -> None:
        self._follower.start(self.remote, self.session, self.command_id)
        self._task = asyncio.get_running_loop().create_task(self._follow(timeout, keepalive))
        self._task.add_done_callback(lambda _: done(self, self._reusable))

    async def _follow(self, timeout: float | None, keepalive: KeepAlive) -> None:
        follower = self._follower
        timed_out = False
        try:
            async with keepalive.hold():
                try:
                    ended = await asyncio.wait_for(follower.wait(), timeout)
                except TimeoutError:
                    timed_out = True
                    await self.remote.signal(self.launch, "KILL")
                    try:
                        ended = await asyncio.wait_for(follower.wait(), DRAIN_SECONDS)
                    except TimeoutError:
                        await self.remote.signal(self.launch, "KILL", relays=True)
                        ended = False
                code = follower.stdout.exit_code if ended else None
                if code is None and not timed_out:
                    code = await self.remote.exit_code(self.session, self.command_id)
        except SandboxUnavailable as error:
            self._events.failed(error)
            return
        finally:
            await follower.close()
        self._reusable = ended
        if timed_out:
            self._events.ended(CommandOutcome(TIMEOUT_EXIT_CODE, timed_out=True))
        elif code is None:
            self._events.failed(
                SandboxUnavailable(f"the Daytona sandbox {self.remote.id} lost a process's end")
            )
        else:
            self._events.ended(CommandOutcome(code))

    async def stop(self) -> None:
        """Stop following (the sandbox is going away, and the process with it)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._kill.stop()

    async def _until_started(self) -> None:
        if self._follower.started.is_set():
            return
        waiter = asyncio.ensure_future(self._follower.started.wait())
        others = {waiter, *(t for t in (self._task,) if t is not None)}
        try:
            await asyncio.wait(others, timeout=START_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if not self._follower.started.is_set():
            raise SessionClosed("the process ended before it read its input")

    async def write(self, data: bytes) -> None:
        await self._until_started()
        for start in range(0, len(data), INPUT_CHUNK):
            line = base64.b64encode(data[start : start + INPUT_CHUNK]).decode() + "\n"
            await self.remote.send_input(self.session, self.command_id, line)

    async def close_stdin(self) -> None:
        await self._until_started()
        await self.remote.send_input(self.session, self.command_id, ".\n")

    async def signal(self, name: str, grace: float | None) -> None:
        await self._kill.signal(name, grace)
