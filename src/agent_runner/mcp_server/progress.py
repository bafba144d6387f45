"""Progress notifications while a tool call waits: the latest output line, as it comes.

A client shows the message and, seeing notifications, keeps the call alive. Logging
notifications are deprecated in the 2026-07-28 protocol, so output is never sent as a log.
:class:`LatestLine` hears a process's output (a plain callback: a process never waits for a
listener); :func:`reporting` sends each new line while its block runs, at most one every
:data:`MIN_INTERVAL` seconds, and the line that was latest when the block ended.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from agent_runner.results import OutputChunk

MAX_MESSAGE = 200
MIN_INTERVAL = 0.05
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")

Send = Callable[[float, str], Awaitable[None]]
"""``(progress, message)``: the progress value only ever grows."""


def tidy(line: str) -> str:
    """A line as a client can show it: what a carriage return left, no escapes, bounded."""
    line = _CONTROL.sub("", line.rsplit("\r", 1)[-1]).strip()
    return line if len(line) <= MAX_MESSAGE else line[: MAX_MESSAGE - 1] + "…"


class LatestLine:
    """The last non-empty line a process wrote (either stream), and how much it wrote."""

    def __init__(self) -> None:
        self._partial = ""
        self.line = ""
        self.received = 0
        """Bytes of output seen: the notifications' progress value."""
        self.changed = asyncio.Event()

    def __call__(self, chunk: OutputChunk) -> None:
        self.received += len(chunk.data)
        text = self._partial + chunk.text
        lines = text.split("\n")
        self._partial = lines[-1][-4 * MAX_MESSAGE :]
        for candidate in reversed(lines):
            shown = tidy(candidate)
            if shown:
                self.line = shown
                break
        self.changed.set()


@asynccontextmanager
async def reporting(latest: LatestLine, send: Send | None) -> AsyncIterator[None]:
    """Send ``latest``'s new lines while the block runs (nothing when ``send`` is None)."""
    if send is None:
        yield
        return
    sent = ""

    async def push() -> None:
        nonlocal sent
        if latest.line and latest.line != sent:
            sent = latest.line
            await send(float(latest.received), sent)

    async def loop() -> None:
        while True:
            await latest.changed.wait()
            latest.changed.clear()
            await push()
            await anyio.sleep(MIN_INTERVAL)

    async with anyio.create_task_group() as group:
        group.start_soon(loop)
        try:
            yield
        finally:
            group.cancel_scope.cancel()
    await push()
