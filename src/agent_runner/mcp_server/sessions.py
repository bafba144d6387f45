"""The server's sessions, by the ids clients give them, and the processes they started.

One :class:`~agent_runner.Runner` (the server's lifespan owns it) holds every session; a
session opens on first use with the mode the call asks for (default ``execution.mcp.mode``,
else ``execution.mode``), in the server's workspace, and keeps that mode until it is closed.
A process is found by its id alone (ids are unique in the server), so ``read_output`` needs
no session id. Closing the runner releases every session, process and sandbox.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agent_runner.config import Settings
from agent_runner.errors import InvalidSetting
from agent_runner.mcp_server.paging import Cursor
from agent_runner.mcp_server.progress import LatestLine
from agent_runner.mcp_server.stdin_guard import StdinGuard
from agent_runner.modes import ExecutionMode
from agent_runner.process import Process
from agent_runner.runner import Runner
from agent_runner.session import Session

KEPT_ENDED = 32
"""Ended processes a session keeps for paging; older ones are forgotten first."""


@dataclass
class Tracked:
    """A process as the server follows it."""

    process: Process
    session_id: str
    latest: LatestLine
    env: dict[str, str]
    """The variables it was started with (they do not carry over)."""
    guard: StdinGuard | None = None
    cursor: Cursor = field(default_factory=Cursor)
    """Where the last reply about it ended: read_output continues there by default."""


@dataclass
class Slot:
    """One client-named session: the library's session, a lock, its processes."""

    session: Session
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while a command starts and yields, so commands follow each other as in a shell."""
    tracked: dict[str, Tracked] = field(default_factory=dict)

    def running(self) -> int:
        return sum(1 for t in self.tracked.values() if t.process.running)

    def forget(self, process_id: str) -> None:
        self.tracked.pop(process_id, None)
        self.session.discard(process_id)

    def prune(self) -> None:
        ended = [pid for pid, t in self.tracked.items() if not t.process.running]
        for pid in ended[: max(0, len(ended) - KEPT_ENDED)]:
            self.forget(pid)


class Sessions:
    def __init__(self, runner: Runner, settings: Settings, workspace: str) -> None:
        self.runner = runner
        self.settings = settings
        self.workspace = workspace
        self._slots: dict[str, Slot] = {}
        self._opening = asyncio.Lock()
        self.default_mode = default_mode(settings)

    def find(self, session_id: str) -> Slot | None:
        slot = self._slots.get(session_id)
        if slot is not None and slot.session.closed:
            self._slots.pop(session_id, None)
            return None
        return slot

    async def get(self, session_id: str, mode: str | None = None) -> Slot:
        """The session ``session_id``, opened now if need be."""
        wanted = _mode(mode) if mode is not None else None
        if wanted is not None:
            check_mode(self.settings, wanted)
        async with self._opening:
            slot = self.find(session_id)
            if slot is None:
                session = self.runner.session(
                    session_id, mode=wanted or self.default_mode, cwd=self.workspace
                )
                slot = self._slots[session_id] = Slot(session)
        if wanted is not None and wanted is not slot.session.mode:
            raise InvalidSetting(
                f"session {session_id!r} runs in {slot.session.mode.value} mode; close it "
                f"first or use another session_id for {wanted.value}"
            )
        return slot

    def process(self, process_id: str) -> tuple[Slot, Tracked]:
        for slot in list(self._slots.values()):
            tracked = slot.tracked.get(process_id)
            if tracked is not None and not slot.session.closed:
                return slot, tracked
        raise InvalidSetting(
            f"no process {process_id!r} (it ended and was read to its end, or its session "
            "closed); list_processes shows those there are"
        )

    def slots(self, session_id: str | None = None) -> list[Slot]:
        if session_id is not None:
            slot = self.find(session_id)
            return [slot] if slot is not None else []
        return [slot for sid in list(self._slots) if (slot := self.find(sid)) is not None]

    async def close(self, session_id: str) -> tuple[bool, int]:
        """Close a session: whether it was open, and how many processes it killed."""
        slot = self.find(session_id)
        if slot is None:
            return False, 0
        killed = slot.running()
        self._slots.pop(session_id, None)
        await slot.session.close()
        return True, killed


def check_mode(settings: Settings, mode: ExecutionMode, source: str = "mode") -> None:
    allowed = settings.mcp.allowed_modes
    if mode not in allowed:
        names = ", ".join(m.value for m in allowed)
        raise InvalidSetting(
            f"{source} {mode.value!r} is not allowed here (execution.mcp.allowed_modes: {names})"
        )


def default_mode(settings: Settings) -> ExecutionMode:
    """The mode of a session opened without one; it must be an allowed one."""
    mode = settings.mcp.mode or settings.mode
    source = "execution.mcp.mode" if settings.mcp.mode else "execution.mode"
    check_mode(settings, mode, source)
    return mode


def _mode(text: str) -> ExecutionMode:
    try:
        return ExecutionMode(text)
    except ValueError:
        accepted = ", ".join(m.value for m in ExecutionMode)
        raise InvalidSetting(f"mode {text!r}: expected one of {accepted}") from None
