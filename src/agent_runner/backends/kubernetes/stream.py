"""One ``pods/exec`` websocket as a byte transport for the executor's channel.

The remotecommand protocols put a channel byte before every message: 0 is the process's
stdin, 1 its stdout, 2 its stderr, 3 the final ``Status`` (the exit code), then the server
closes. ``v5.channel.k8s.io`` adds ``[255, 0]``, which closes the process's stdin; under
``v4.channel.k8s.io`` (apiservers before 1.30) stdin cannot be closed, so hanging up sends
the executor's own ``bye`` request in-band instead.

:class:`ExecStream` implements :class:`~agent_runner.backends.channel.Transport` and calls
a :class:`~agent_runner.backends.channel.Receiver` as messages arrive, from one reader task,
each message handed on before the next is read (the channel cuts frames in its callbacks,
so nothing here buffers output). Writes are queued and sent by one writer task, each send
awaited, so the socket's back-pressure reaches :meth:`drain` (``write`` never blocks; what
waits beyond ``HIGH_WATER`` is held back by ``drain``). A socket that ends without a
``Status`` (an idle timeout, a reset) is reported to the receiver as lost with the reason.
No thread, and nothing kept once handed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from typing import Any

import aiohttp

from agent_runner.backends.channel import Receiver

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
PROTOCOLS = f"{V5},{V4}"
STDIN, STDOUT, STDERR, ERROR = 0, 1, 2, 3
CLOSE_STDIN = bytes([255, STDIN])
MESSAGE = 64 * 1024
HIGH_WATER = 1 << 20
LOW_WATER = 256 * 1024
CLOSE_SECONDS = 5.0
"""How long a hung-up stream may take to end (the executor exits, the server closes)."""


class StreamBroken(ConnectionResetError):
    """The exec stream ended without the process's exit status."""


class ExecStream:
    """An open exec websocket: stdin out, stdout and stderr to ``receiver``."""

    def __init__(
        self, ws: Any, protocol: str, receiver: Receiver, *, goodbye: bytes, name: str
    ) -> None:
        self._ws = ws
        self.protocol = protocol
        self._receiver = receiver
        self._goodbye = goodbye
        self._name = name
        self._loop = asyncio.get_running_loop()
        self.last_received = self._loop.time()
        """When the last message came (heartbeats read it)."""
        self.status: dict[str, Any] | None = None
        """The process's exit ``Status`` from channel 3, once it came."""
        self._pending: deque[bytes] = deque()
        self._size = 0
        self._wake = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._hanging_up = False
        self._failure: BaseException | None = None
        self._reader = asyncio.ensure_future(self._read())
        self._writer = asyncio.ensure_future(self._write())
        self.finished = asyncio.ensure_future(self._finish())

    @property
    def closed(self) -> bool:
        return self._reader.done()

    # -- channel.Transport ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._hanging_up or self._reader.done() or not data:
            return
        self._pending.append(data)
        self._size += len(data)
        if self._size >= HIGH_WATER:
            self._writable.clear()
        self._wake.set()

    async def drain(self) -> None:
        await self._writable.wait()
        if self._reader.done():
            raise StreamBroken(f"the exec stream to {self._name} is closed")

    def close(self) -> None:
        """Hang up: what is queued goes first, then stdin is closed (v5) or ``bye`` sent
        (v4); the stream ends when the server closes it, or after ``CLOSE_SECONDS``."""
        self._hanging_up = True
        self._wake.set()

    # -- ending -------------------------------------------------------------------------

    def abort(self, error: BaseException) -> None:
        """End now, without a goodbye (a dead connection): the receiver hears ``error``."""
        if self._failure is None:
            self._failure = error
        self._hanging_up = True
        self._reader.cancel()
        self._writer.cancel()

    async def aclose(self) -> None:
        """Hang up and wait until the stream has ended (bounded)."""
        self.close()
        try:
            await asyncio.wait_for(asyncio.shield(self.finished), CLOSE_SECONDS * 2)
        except TimeoutError:
            self.abort(StreamBroken(f"the exec stream to {self._name} did not end"))
            await asyncio.shield(self.finished)

    async def _finish(self) -> None:
        """Once the reader ends: stop the writer, close the socket, tell the receiver."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({self._reader})
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        error = self._failure
        if error is None and self._reader.cancelled():
            error = StreamBroken(f"the exec stream to {self._name} was cut")
        elif error is None and self._reader.exception() is not None:
            error = self._reader.exception()
        self._writable.set()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self._ws.close()
        self._receiver.connection_lost(error)

    # -- the two tasks ------------------------------------------------------------------

    async def _read(self) -> None:
        ws, receiver = self._ws, self._receiver
        while True:
            message = await ws.receive()
            kind = message.type
            if kind is aiohttp.WSMsgType.BINARY:
                self.last_received = self._loop.time()
                data: bytes = message.data
                if len(data) < 2:
                    continue  # the empty message that opens a channel
                channel = data[0]
                if channel == STDOUT:
                    receiver.stdout_received(data[1:])
                elif channel == STDERR:
                    receiver.stderr_received(data[1:])
                elif channel == ERROR:
                    self._take_status(data[1:])
            elif kind is aiohttp.WSMsgType.ERROR:
                self._failure = self._failure or StreamBroken(
                    f"the exec stream to {self._name} failed: {message.data}"
                )
                return
            elif kind in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
            ):
                if self.status is None and self._failure is None:
                    self._failure = StreamBroken(
                        f"the exec stream to {self._name} closed without an exit status "
                        "(an idle timeout or a reset)"
                    )
                return

    def _take_status(self, raw: bytes) -> None:
        try:
            status = json.loads(raw)
        except ValueError:
            status = {"status": "Failure", "message": raw.decode(errors="replace")}
        self.status = status if isinstance(status, dict) else {"status": str(status)}

    async def _write(self) -> None:
        ws = self._ws
        try:
            while True:
                while not self._pending:
                    if self._hanging_up:
                        await self._say_goodbye()
                        return
                    self._wake.clear()
                    await self._wake.wait()
                chunk = self._take(MESSAGE)
                await ws.send_bytes(bytes([STDIN]) + chunk)
                self._size -= len(chunk)
                if self._size <= LOW_WATER:
                    self._writable.set()
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as error:
            self._failure = self._failure or StreamBroken(
                f"cannot write to the exec stream to {self._name}: {error}"
            )
            self._reader.cancel()

    def _take(self, limit: int) -> bytes:
        first = self._pending.popleft()
        if len(first) > limit:
            self._pending.appendleft(first[limit:])
            return first[:limit]
        pieces, size = [first], len(first)
        while self._pending and size + len(self._pending[0]) <= limit:
            piece = self._pending.popleft()
            pieces.append(piece)
            size += len(piece)
        return b"".join(pieces) if len(pieces) > 1 else first

    async def _say_goodbye(self) -> None:
        if self.protocol == V5:
            await self._ws.send_bytes(CLOSE_STDIN)
        else:
            await self._ws.send_bytes(bytes([STDIN]) + self._goodbye)
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), CLOSE_SECONDS)
        except TimeoutError:
            self._reader.cancel()
