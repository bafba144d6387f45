"""The runner's end of the executor's protocol, over any transport that carries bytes.

Every remote backend reaches its sandbox's executor (:mod:`agent_runner.backends.executor`)
through something that carries the executor's stdin one way and its stdout and stderr the
other: the Engine API's upgraded connection for Docker, a ``pods/exec`` websocket for
Kubernetes. The transport calls :class:`ExecutorChannel` as bytes arrive (it is a
:class:`Receiver`); the channel cuts the executor's stdout into frames and hands each to the
command it belongs to (a :class:`FrameSink`), keeps what the executor writes to stderr (only
on trouble) for error messages, and tells every command when the transport is lost.

Everything happens in the transport's callbacks: no read is ever awaited, so cancelling a
caller can never lose half a frame, and frames cost no coroutine switch each. Back-pressure
is per command (``pause``/``resume`` requests to the executor), so a slow listener on one
command holds back that command's output alone.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from agent_runner.backends import executor

HEADER = executor.HEADER
DIAGNOSTICS_KEPT = 4096


class Receiver(Protocol):
    """What a transport calls with what the remote process wrote."""

    def stdout_received(self, data: bytes) -> None: ...

    def stderr_received(self, data: bytes) -> None: ...

    def connection_lost(self, error: BaseException | None) -> None: ...


class Transport(Protocol):
    """The runner's side of the remote process's stdin."""

    def write(self, data: bytes) -> None:
        """Queue bytes for the process; never blocks."""
        ...

    async def drain(self) -> None:
        """Wait while the transport's write buffer is full."""
        ...

    def close(self) -> None:
        """Hang up (the process sees its stdin close)."""
        ...


class FrameSink(Protocol):
    """One command's frames, as the channel hands them over."""

    def output(self, kind: bytes, data: bytes) -> None:
        """Stdout (``O``) or stderr (``E``) bytes."""
        ...

    def finished(self, report: dict[str, Any]) -> None:
        """The ``X`` report; nothing more comes for this command."""
        ...

    def refused(self, message: str) -> None:
        """The executor refused the request; nothing more comes for this command."""
        ...

    def lost(self, error: BaseException) -> None:
        """The transport is gone; nothing more comes at all."""
        ...


class ChannelLost(EOFError):
    """The sandbox process closed its stream."""


class Report:
    """A sink for a request whose report is all that matters (a ``put``); its stderr is
    kept for the error message."""

    def __init__(self) -> None:
        self.done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.stderr = bytearray()

    def output(self, kind: bytes, data: bytes) -> None:
        if kind == executor.STDERR:
            self.stderr += data[-DIAGNOSTICS_KEPT:]

    def finished(self, report: dict[str, Any]) -> None:
        if not self.done.done():
            self.done.set_result(report)

    def refused(self, message: str) -> None:
        self.stderr += message.encode()
        self.finished({"exit_code": 2})

    def lost(self, error: BaseException) -> None:
        if not self.done.done():
            self.done.set_exception(error)

    def last_line(self) -> str:
        lines = self.stderr.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""


class ExecutorChannel:
    """Frames to and from the executor; one per sandbox, shared by all its commands."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._sinks: dict[int, FrameSink] = {}
        self._next_id = 0
        self._transport: Transport | None = None
        self._opening: list[bytes] = []
        self._opened = False
        self.hello: dict[str, Any] | None = None
        self.lost: BaseException | None = None
        self.diagnostics = bytearray()
        """What the process wrote to its stderr (the executor only writes there on trouble)."""
        self._waiters: list[asyncio.Future[None]] = []

    # -- the transport's side -------------------------------------------------------------

    def attach(self, transport: Transport) -> None:
        self._transport = transport

    def stdout_received(self, data: bytes) -> None:
        if not self._opened:
            data = self._take_opening(data)
            if not data:
                return
        buffer = self._buffer
        if buffer:
            buffer += data
            view = memoryview(buffer)
        else:
            view = memoryview(data)
        offset, end = 0, len(view)
        size = HEADER.size
        while end - offset >= size:
            kind, number, length = HEADER.unpack_from(view, offset)
            stop = offset + size + length
            if stop > end:
                break
            self._dispatch(kind, number, bytes(view[offset + size : stop]))
            offset = stop
        if buffer:
            view.release()
            del buffer[:offset]
        else:
            self._buffer += view[offset:]
            view.release()

    def stderr_received(self, data: bytes) -> None:
        self.diagnostics += data[-DIAGNOSTICS_KEPT:]
        del self.diagnostics[:-DIAGNOSTICS_KEPT]

    def connection_lost(self, error: BaseException | None) -> None:
        if self.lost is not None:
            return
        self.lost = ChannelLost("the sandbox process closed its stream")
        if error is not None:
            self.lost.__cause__ = error
        sinks = list(self._sinks.values())
        self._sinks.clear()
        for sink in sinks:
            sink.lost(self.lost)
        self._wake_openers()

    def _take_opening(self, data: bytes) -> bytes:
        """Before the hello: the executor's H frame, or the launcher's one line of text."""
        self._opening.append(data)
        pending = b"".join(self._opening)
        if pending[:1] == executor.HELLO:
            self._opened = True
            self._opening.clear()
            return pending
        if b"\n" in pending:
            line, _, rest = pending.partition(b"\n")
            self._opening = [line]
            self._opened = True
            self._wake_openers()
            return rest
        return b""

    def _dispatch(self, kind: bytes, number: int, payload: bytes) -> None:
        if kind == executor.HELLO:
            self.hello = json.loads(payload)
            self._wake_openers()
            return
        if kind == executor.PONG:
            return
        sink = self._sinks.get(number)
        if sink is None:
            return  # a command the runner has given up on
        if kind in (executor.STDOUT, executor.STDERR):
            sink.output(kind, payload)
        elif kind == executor.EXITED:
            del self._sinks[number]
            sink.finished(json.loads(payload.decode("utf-8", "surrogateescape")))
        elif kind == executor.REFUSED:
            del self._sinks[number]
            sink.refused(str(json.loads(payload).get("message", "refused")))

    # -- the runner's side ----------------------------------------------------------------

    async def opening(self) -> bytes:
        """``b"H"`` once the executor said hello, else the launcher's line of text;
        :class:`ChannelLost` when the stream ends first."""
        while self.hello is None and not self._opening_line():
            if self.lost is not None:
                raise self.lost
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter
        return executor.HELLO if self.hello is not None else self._opening_line()

    def _opening_line(self) -> bytes:
        return self._opening[0] if self._opened and self._opening else b""

    def _wake_openers(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()

    def last_diagnostic(self) -> str:
        """The last line the process wrote to its stderr, or ``""``."""
        lines = self.diagnostics.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def register(self, number: int, sink: FrameSink) -> None:
        """Frames for ``number`` go to ``sink`` until its X or R (or the end)."""
        if self.lost is not None:
            sink.lost(self.lost)
            return
        self._sinks[number] = sink

    def forget(self, number: int) -> None:
        """Drop whatever still comes for ``number``."""
        self._sinks.pop(number, None)

    async def send(self, request: dict[str, Any], body: bytes = b"") -> None:
        """A request line (and the raw bytes it announces)."""
        if self.lost is not None:
            raise self.lost
        assert self._transport is not None
        self._transport.write(json.dumps(request).encode() + b"\n" + body)
        await self._transport.drain()

    def post(self, request: dict[str, Any]) -> None:
        """A small request, queued without waiting (flow control from callbacks); a lost
        channel drops it, as there is no one left to hear it."""
        if self.lost is None and self._transport is not None:
            self._transport.write(json.dumps(request).encode() + b"\n")

    async def write(self, data: bytes) -> None:
        """Raw bytes to the executor's stdin (the rest of a ``put`` body)."""
        if self.lost is not None:
            raise self.lost
        assert self._transport is not None
        self._transport.write(data)
        await self._transport.drain()

    def close(self) -> None:
        """Hang up: the executor sees its stdin close, kills what runs, and exits."""
        if self._transport is not None:
            self._transport.close()
