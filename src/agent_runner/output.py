"""Bounded capture of a command's output.

A runaway command (``yes``) must not grow the runner: each stream keeps its first and last
bytes up to a cap and counts what it dropped in between, while every chunk is still
delivered live, in order, to whoever listens. A slow async listener applies back-pressure
(the backend stops reading the command's pipes) instead of letting chunks pile up.
:class:`PagedBuffer` is the bounded store (head kept, tail in a ring of chunks, so a byte
costs no copy beyond its chunk); a command's result renders it as text
(:class:`CappedBuffer`), a process is read from it page by page.
"""

from __future__ import annotations

import asyncio
import codecs
import inspect
from collections import deque
from collections.abc import Callable
from typing import NamedTuple

from agent_runner.results import OutputCallback, OutputChunk, Stream

HIGH_WATER = 1024 * 1024
"""Undelivered bytes at which reading pauses until an async listener catches up."""
COALESCE_BYTES = 256 * 1024
"""Queued chunks of one stream are joined up to this size before they reach a listener."""


class Page(NamedTuple):
    """What :meth:`Process.read` returns."""

    data: bytes
    next_cursor: int
    """Where the next read continues (a byte offset into the stream since it began)."""
    dropped: int
    """Bytes between the requested cursor and ``data`` that the buffer no longer holds."""


class PagedBuffer:
    """A stream's head and tail within ``limit`` bytes, addressed by absolute offsets."""

    def __init__(self, limit: int) -> None:
        self._head_limit = limit // 2
        self._tail_limit = limit - self._head_limit
        self._head = bytearray()
        self._tail: deque[bytes] = deque()
        self._tail_size = 0
        self._tail_skip = 0
        """Bytes of the tail's first chunk that fell out of the ring already."""
        self.total = 0

    def write(self, data: bytes) -> None:
        self.total += len(data)
        room = self._head_limit - len(self._head)
        if room > 0:
            self._head += data[:room]
            data = data[room:]
            if not data:
                return
        self._tail.append(data)
        self._tail_size += len(data)
        excess = self._tail_size - self._tail_limit
        while excess > 0:
            first = len(self._tail[0]) - self._tail_skip
            if first <= excess:
                self._tail.popleft()
                self._tail_skip = 0
                self._tail_size -= first
                excess -= first
            else:
                self._tail_skip += excess
                self._tail_size -= excess
                excess = 0

    def skip(self, count: int) -> None:
        """``count`` bytes of the stream went by unseen: the head ends where it is, and
        they count as dropped between it and the tail."""
        self._head_limit = len(self._head)
        self.total += count

    def read(self, cursor: int, max_bytes: int) -> Page:
        cursor = max(0, min(cursor, self.total))
        if cursor < len(self._head):
            data = bytes(self._head[cursor : cursor + max_bytes])
            return Page(data, cursor + len(data), 0)
        tail_start = self.total - self._tail_size
        dropped = max(0, tail_start - cursor)
        cursor = max(cursor, tail_start)
        data = self._tail_bytes(cursor - tail_start, max_bytes)
        return Page(data, cursor + len(data), dropped)

    def _tail_bytes(self, offset: int, size: int) -> bytes:
        offset += self._tail_skip
        pieces: list[bytes] = []
        for chunk in self._tail:
            if offset >= len(chunk):
                offset -= len(chunk)
                continue
            piece = chunk[offset : offset + size]
            pieces.append(piece)
            size -= len(piece)
            offset = 0
            if size <= 0:
                break
        return b"".join(pieces)


class CappedBuffer(PagedBuffer):
    """Keeps the head and the tail of a byte stream, at most ``limit`` bytes in all, and
    renders them as text with a marker where the middle was dropped."""

    @property
    def dropped(self) -> int:
        return self.total - len(self._head) - self._tail_size

    def text(self) -> str:
        tail = self._tail_bytes(0, self._tail_size)
        if not self.dropped:
            return (self._head + tail).decode("utf-8", errors="replace")
        # A cut may land inside a multi-byte character: end the head before it and start
        # the tail after it, counting those bytes as dropped.
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        head = decoder.decode(bytes(self._head))
        cut_from_head = len(decoder.getstate()[0])
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
        self._queue: deque[_Pending] = deque()
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
        self._buffers[stream].skip(count)

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
        """Queue a chunk for the listener, joined to the one before it when that is of the
        same stream and small: a slow listener then pays per batch of output, not per
        piece a busy pipe or network happened to deliver it in."""
        assert self._wakeup is not None
        last = self._queue[-1] if self._queue else None
        if last is not None and last.stream is chunk.stream and last.size < COALESCE_BYTES:
            last.add(chunk)
        else:
            self._queue.append(_Pending(chunk))
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
                chunk = self._queue.popleft().joined()
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


class _Pending:
    """Queued chunks of one stream, handed over as one (joined only then: one copy)."""

    def __init__(self, chunk: OutputChunk) -> None:
        self.stream = chunk.stream
        self.chunks = [chunk]
        self.size = len(chunk.data)

    def add(self, chunk: OutputChunk) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk.data)

    def joined(self) -> OutputChunk:
        if len(self.chunks) == 1:
            return self.chunks[0]
        return OutputChunk(
            self.stream,
            b"".join(chunk.data for chunk in self.chunks),
            "".join(chunk.text for chunk in self.chunks),
        )


def _nothing() -> None:
    return None
