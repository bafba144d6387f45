"""Processes that outlive one call: started, polled, fed stdin, killed.

An agent's client cuts a tool call off after a minute or so, but ``pytest``, a dev server or
``npm install`` run longer: :meth:`Session.start <agent_runner.Session.start>` returns a
:class:`Process` at once, beside the session's one-at-a-time commands. Its output is kept
per stream in a bounded buffer that can be *paged*: the first half of the budget keeps the
head, a ring keeps the tail, and byte cursors stay valid for ever; what fell out of the
ring between two reads is reported as ``dropped``, never silently skipped.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from enum import StrEnum

from agent_runner.backends.base import CommandOutcome, ProcessHandle, ShellState
from agent_runner.errors import AgentRunnerError, InvalidSetting, SessionClosed
from agent_runner.modes import ExecutionMode
from agent_runner.output import Page, PagedBuffer
from agent_runner.process_state import StateSplitter
from agent_runner.results import OutputChunk, Stream

SIGNALS = ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT")
KILLED_EXIT_CODE = 128 + 9
"""What a shell reports for a process killed by SIGKILL (when its session closed)."""


class ProcessStatus(StrEnum):
    RUNNING = "running"
    EXITED = "exited"
    """It ended by itself (``exit_code`` says how)."""
    KILLED = "killed"
    """It ended after :meth:`Process.kill`, or when its session closed."""
    TIMED_OUT = "timed_out"
    FAILED = "failed"
    """It can no longer be followed: its sandbox went away (``error`` says why)."""


class Process:
    """A command running beside a session's commands (``Session.start`` makes them)."""

    def __init__(
        self,
        command: str,
        *,
        mode: ExecutionMode,
        backend: str,
        reason: str | None,
        buffer_limit: int,
        on_output: Callable[[OutputChunk], None] | None = None,
        touched: Callable[[], None] | None = None,
        report: StateSplitter | None = None,
    ) -> None:
        self.id = f"p-{uuid.uuid4().hex[:10]}"
        self.command = command
        self.mode = mode
        self.backend = backend
        self.reason = reason
        """Why AUTO ran it where it runs (``None`` outside AUTO)."""
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.status = ProcessStatus.RUNNING
        self.exit_code: int | None = None
        self.error: str | None = None
        self.stdin_open = False
        self._buffers = {stream: PagedBuffer(buffer_limit) for stream in Stream}
        self._on_output = on_output
        self._touched = touched or (lambda: None)
        self._handle: ProcessHandle | None = None
        self._ended = asyncio.Event()
        self._killed = False
        self._report = report
        self.started_in: ShellState | None = None
        """Where its session's shell stood when it started (set with ``keep_state``)."""

    def attach(self, handle: ProcessHandle, *, stdin: bool) -> None:
        """The backend started it: this is how to reach it."""
        self._handle = handle
        self.stdin_open = stdin

    # -- what the backend reports (ProcessEvents) ------------------------------------

    def output(self, stream: Stream, data: bytes) -> None:
        if stream is Stream.STDERR and self._report is not None:
            data = self._report.feed(data)
            if not data:
                return
        self._deliver(stream, data)

    def _deliver(self, stream: Stream, data: bytes) -> None:
        self._buffers[stream].write(data)
        if self._on_output is not None:
            self._on_output(OutputChunk(stream, data, data.decode("utf-8", "replace")))

    def ended(self, outcome: CommandOutcome) -> None:
        if self.status is not ProcessStatus.RUNNING:
            return
        self.exit_code = outcome.exit_code
        if outcome.timed_out:
            self.status = ProcessStatus.TIMED_OUT
        elif self._killed:
            self.status = ProcessStatus.KILLED
        else:
            self.status = ProcessStatus.EXITED
        self._end()

    def failed(self, error: AgentRunnerError) -> None:
        if self.status is ProcessStatus.RUNNING:
            self.status = ProcessStatus.FAILED
            self.error = str(error)
            self._end()

    def session_closed(self) -> None:
        """Its session closed, and what it ran with it (by SIGKILL, whatever the backend)."""
        if self.status is ProcessStatus.RUNNING:
            self.status = ProcessStatus.KILLED
            self.exit_code = KILLED_EXIT_CODE
            self._end()

    def _end(self) -> None:
        if self._report is not None and (held := self._report.flush()):
            self._deliver(Stream.STDERR, held)
        self.ended_at = time.time()
        self.stdin_open = False
        self._ended.set()

    # -- what the caller does ------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.status is ProcessStatus.RUNNING

    @property
    def state(self) -> ShellState | None:
        """Where it left its shell (cwd, exported variables), when it was started with
        ``keep_state`` and ran to its end; see :meth:`Session.adopt`."""
        return self._report.state if self._report is not None and not self.running else None

    @property
    def duration_s(self) -> float:
        return (self.ended_at or time.time()) - self.started_at

    async def wait(self, timeout: float | None = None) -> int | None:
        """Its exit code once it ended, or ``None`` when ``timeout`` passed first."""
        self._touched()
        try:
            await asyncio.wait_for(self._ended.wait(), timeout)
        except TimeoutError:
            return None
        return self.exit_code

    def read(
        self, cursor: int = 0, max_bytes: int = 65536, stream: Stream | str = Stream.STDOUT
    ) -> Page:
        """Up to ``max_bytes`` of ``stream`` from ``cursor`` (see :class:`Page`)."""
        if max_bytes < 1:
            raise InvalidSetting("max_bytes must be at least 1")
        self._touched()
        return self._buffers[Stream(stream)].read(cursor, max_bytes)

    def total(self, stream: Stream | str = Stream.STDOUT) -> int:
        """How many bytes ``stream`` has produced so far (kept or not)."""
        return self._buffers[Stream(stream)].total

    async def write(self, data: bytes | str) -> None:
        """Send ``data`` to its stdin (it must have been started with ``stdin=True``)."""
        self._touched()
        if not self.running or not self.stdin_open or self._handle is None:
            raise SessionClosed(f"process {self.id} takes no input (its stdin is closed)")
        await self._handle.write(data.encode() if isinstance(data, str) else data)

    async def close_stdin(self) -> None:
        self._touched()
        if self.running and self.stdin_open and self._handle is not None:
            self.stdin_open = False
            await self._handle.close_stdin()

    async def kill(self, signal: str = "TERM", grace: float | None = 5.0) -> None:
        """Send ``signal`` to its whole process tree; unless it is KILL, KILL follows after
        ``grace`` seconds if anything of it is left (``None``: never)."""
        self._touched()
        name = signal.upper().removeprefix("SIG")
        if name not in SIGNALS:
            raise InvalidSetting(f"signal {signal!r}: expected one of {', '.join(SIGNALS)}")
        if grace is not None and not grace >= 0:
            raise InvalidSetting(f"grace {grace!r}: expected seconds, at least 0")
        if not self.running or self._handle is None:
            return
        if name in ("TERM", "KILL", "INT", "HUP", "QUIT"):
            self._killed = True
        await self._handle.signal(name, grace)

    def __repr__(self) -> str:
        return f"<Process {self.id} {self.status.value} {self.command[:40]!r}>"
