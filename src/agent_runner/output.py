"""Bounded capture of a command's output.

A runaway command (``yes``) must not grow the runner: each stream keeps its first and last
bytes up to a cap and counts what it dropped in between, while every chunk is still
delivered live, in order, to whoever listens. A slow async listener applies back-pressure
(the backend stops reading the command's pipes) instead of letting chunks pile up.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
from collections import deque
from collections.abc import Callable

from agent_runner.results import OutputCallback, OutputChunk, Stream

HIGH_WATER = 1024 * 1024
"""Undelivered bytes at which reading pauses until an async listener catches up."""


class CappedBuffer:
    """Keeps the head and the tail of a byte stream, at most ``limit`` bytes in all."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail = bytearray()
        self.dropped = 0

    def write(self, data: bytes) -> None:
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            if not data:
                return
        self._tail += data
        excess = len(self._tail) - self._tail_limit
        if excess > 0:
            del self._tail[:excess]
            self.dropped += excess

    def text(self) -> str:
        if not self.dropped:
            return (self._head + self._tail).decode("utf-8", errors="replace")
        # A cut may land inside a multi-byte character: end the head before it and start
        # the tail after it, counting those bytes as dropped.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        head = decoder.decode(bytes(self._head))
        cut_from_head = len(decoder.getstate()[0])
        tail = bytes(self._tail)
        skip = 0
        while skip < min(3, len(tail)) and 0x80 <= tail[skip] < 0xC0:
            skip += 1
        dropped = self.dropped + cut_from_head + skip
        marker = f"\n[... {dropped} bytes of output dropped ...]\n"
        return head + marker + tail[skip:].decode("utf-8", errors="replace")


class OutputCollector:
    """Receives raw chunks from a backend, keeps them bounded and forwards them live.

    ``feed`` is called from protocol callbacks and never blocks. A plain callback is called
    inline; an async one is awaited chunk by chunk by a delivery task, and ``pause``/``resume``
    (supplied by the backend) throttle the source while too much is waiting.
    """

    def __init__(self, limit: int, on_output: OutputCallback | None = None) -> None:
        self._buffers = {Stream.STDOUT: CappedBuffer(limit), Stream.STDERR: CappedBuffer(limit)}
        self._decoders = {
            stream: codecs.getincrementaldecoder("utf-8")(errors="replace") for stream in Stream
        }
        self._on_output = on_output
        self._queue: deque[OutputChunk] = deque()
        self._queued_bytes = 0
        self._wakeup: asyncio.Event | None = None
        self._delivery: asyncio.Task[None] | None = None
        self._paused = False
        self._finished = False
        self._pause: Callable[[], None] = _nothing
        self._resume: Callable[[], None] = _nothing

    def set_flow_control(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """Let a slow listener stop the source; the backend supplies how."""
        self._pause, self._resume = pause, resume

    def clear_flow_control(self) -> None:
        self._pause = self._resume = _nothing

    @property
    def listening(self) -> bool:
        """Whether anyone hears the output live (else a backend may hand it over at the end)."""
        return self._on_output is not None

    def skipped(self, stream: Stream, count: int) -> None:
        """``count`` bytes of ``stream`` the backend dropped at the source: it kept the head
        and the tail itself and cut the middle, rather than carry it across to be dropped."""
        self._buffers[stream].dropped += count

    def feed(self, stream: Stream, data: bytes) -> None:
        if not data:
            return
        self._buffers[stream].write(data)
        if self._on_output is None:
            return
        chunk = OutputChunk(stream, data, self._decoders[stream].decode(data))
        if self._delivery is None and not self._queue:
            outcome = self._on_output(chunk)
            if not inspect.isawaitable(outcome):
                return
            self._start_delivery(outcome)
            return
        self._enqueue(chunk)

    def _start_delivery(self, first: object) -> None:
        self._wakeup = asyncio.Event()
        self._delivery = asyncio.get_running_loop().create_task(self._deliver(first))

    def _enqueue(self, chunk: OutputChunk) -> None:
        assert self._wakeup is not None
        self._queue.append(chunk)
        self._queued_bytes += len(chunk.data)
        self._wakeup.set()
        if self._queued_bytes >= HIGH_WATER and not self._paused:
            self._paused = True
            self._pause()

    async def _deliver(self, first: object) -> None:
        assert self._on_output is not None
        assert self._wakeup is not None
        await first  # type: ignore[misc]
        while True:
            while self._queue:
                chunk = self._queue.popleft()
                self._queued_bytes -= len(chunk.data)
                if self._paused and self._queued_bytes < HIGH_WATER // 4:
                    self._paused = False
                    self._resume()
                outcome = self._on_output(chunk)
                if inspect.isawaitable(outcome):
                    await outcome
            if self._finished:
                return
            self._wakeup.clear()
            await self._wakeup.wait()

    async def flush(self) -> None:
        """Deliver every chunk fed so far; the listener's own exception surfaces here."""
        self._finished = True
        if self._delivery is None:
            return
        assert self._wakeup is not None
        self._wakeup.set()
        try:
            await asyncio.shield(self._delivery)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop delivering (also on error and cancellation)."""
        if self._delivery is not None and not self._delivery.done():
            self._delivery.cancel()
            await asyncio.gather(self._delivery, return_exceptions=True)

    @property
    def truncated(self) -> bool:
        return any(buffer.dropped for buffer in self._buffers.values())

    def text(self, stream: Stream) -> str:
        return self._buffers[stream].text()


def _nothing() -> None:
    return None
