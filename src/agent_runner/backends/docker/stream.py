"""The Engine API's upgraded connection: a raw stream to a process in a container, on asyncio.

The Engine API's attach and exec-start calls upgrade their HTTP connection to a raw
stream: what we write reaches the process's stdin, and its stdout and stderr come back
multiplexed, each piece behind an 8-byte header (stream id, three zero bytes, big-endian
length). docker-py hands such a stream to a blocking socket; here the upgrade is done by an
asyncio protocol instead, which demultiplexes in its ``data_received`` callback and hands
each piece to a :class:`~agent_runner.backends.channel.Receiver` at once: no thread, no
awaited read that a cancellation could cut in half, and no copy beyond the one the payload
needs.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from dataclasses import dataclass
from urllib.parse import urlparse

from agent_runner.backends.channel import Receiver
from agent_runner.errors import SandboxUnavailable

MULTIPLEX_HEADER = struct.Struct(">BxxxI")
STDOUT, STDERR = 1, 2
HEAD_LIMIT = 64 * 1024
ERROR_BODY_SECONDS = 1.0


@dataclass(frozen=True)
class EngineAddress:
    """Where the engine listens: a unix socket path, or a plain TCP host and port."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, url: str) -> EngineAddress | None:
        """``unix:///path`` or ``tcp://host:port``; ``None`` for the rest (TLS, ssh)."""
        parsed = urlparse(url)
        if parsed.scheme in ("unix", "http+unix"):
            return cls(unix_path=parsed.path)
        if parsed.scheme in ("tcp", "http") and parsed.hostname and parsed.port:
            return cls(host=parsed.hostname, port=parsed.port)
        return None


def engine_url_from_environment() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


class EngineStream(asyncio.Protocol):
    """One upgraded connection: stdin out, demultiplexed stdout and stderr to a receiver."""

    def __init__(self, receiver: Receiver, path: str) -> None:
        self._receiver = receiver
        self._path = path
        self._loop = asyncio.get_running_loop()
        self.upgraded: asyncio.Future[None] = self._loop.create_future()
        self._head = bytearray()
        self._status = ""
        self._pending = bytearray()
        self._transport: asyncio.Transport | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = False

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self.upgraded.done():
            self._demultiplex(data)
            return
        self._head += data
        if self._status:  # refused: collecting the error body
            self._maybe_refuse()
            return
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > HEAD_LIMIT:
                self._refuse(f"the engine answered {self._path} with an oversized head")
            return
        status = bytes(self._head[: self._head.find(b"\r\n")]).decode("latin-1")
        rest = bytes(self._head[end + 4 :])
        del self._head[:]
        if " 101 " in status or " 200 " in status:
            self.upgraded.set_result(None)
            if rest:
                self._demultiplex(rest)
            return
        self._status = status
        self._head += rest
        self._loop.call_later(ERROR_BODY_SECONDS, self._refuse_now)
        self._maybe_refuse()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._writable.set()
        if not self.upgraded.done():
            if self._status:
                self._refuse_now()
            else:
                self._refuse(f"the engine closed the stream for {self._path}: {exc or 'EOF'}")
            return
        self._receiver.connection_lost(exc)

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    # -- demultiplexing ---------------------------------------------------------------

    def _demultiplex(self, data: bytes) -> None:
        pending = self._pending
        if pending:
            pending += data
            view = memoryview(pending)
        else:
            view = memoryview(data)
        offset, end, size = 0, len(view), MULTIPLEX_HEADER.size
        receiver = self._receiver
        while end - offset >= size:
            stream, length = MULTIPLEX_HEADER.unpack_from(view, offset)
            stop = offset + size + length
            if stop > end:
                break
            piece = bytes(view[offset + size : stop])
            offset = stop
            if stream == STDOUT:
                receiver.stdout_received(piece)
            elif stream == STDERR:
                receiver.stderr_received(piece)
        if pending:
            view.release()
            del pending[:offset]
        else:
            pending += view[offset:]
            view.release()

    # -- the upgrade refused --------------------------------------------------------

    def _maybe_refuse(self) -> None:
        try:
            json.loads(bytes(self._head))
        except ValueError:
            return
        self._refuse_now()

    def _refuse_now(self) -> None:
        if self.upgraded.done():
            return
        body = bytes(self._head)
        try:
            detail = str(json.loads(body).get("message", ""))
        except (ValueError, AttributeError):
            detail = body.decode(errors="replace")[:200]
        self._refuse(f"the engine refused {self._path}: {self._status} {detail}".strip())

    def _refuse(self, message: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(SandboxUnavailable(message))
        if self._transport is not None:
            self._transport.close()

    # -- the runner's side (channel.Transport) ---------------------------------------

    def write(self, data: bytes) -> None:
        if self._transport is not None and not self._closed:
            self._transport.write(data)

    async def drain(self) -> None:
        await self._writable.wait()
        if self._closed:
            raise ConnectionResetError("the sandbox process closed its stream")

    def close_stdin(self) -> None:
        """End the process's stdin, keeping its output coming (a half-close)."""
        if self._transport is not None and not self._closed and self._transport.can_write_eof():
            self._transport.write_eof()

    def pause_reading(self) -> None:
        """Stop reading: the engine, then the process, are held back."""
        if self._transport is not None and not self._closed:
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._closed:
            self._transport.resume_reading()

    def close(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()


async def open_stream(
    address: EngineAddress, api_path: str, body: dict[str, object] | None, receiver: Receiver
) -> EngineStream:
    """POST ``api_path`` asking for a raw stream; once upgraded, output goes to ``receiver``."""
    loop = asyncio.get_running_loop()

    def protocol() -> EngineStream:
        return EngineStream(receiver, api_path)

    try:
        if address.unix_path is not None:
            _, stream = await loop.create_unix_connection(protocol, address.unix_path)
        else:
            assert address.host is not None
            assert address.port is not None
            _, stream = await loop.create_connection(protocol, address.host, address.port)
    except OSError as error:
        raise SandboxUnavailable(f"cannot reach the engine for {api_path}: {error}") from None
    payload = json.dumps(body).encode() if body is not None else b""
    stream.write(
        (
            f"POST {api_path} HTTP/1.1\r\n"
            "Host: docker\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: tcp\r\n\r\n"
        ).encode()
        + payload
    )
    try:
        await stream.upgraded
    except BaseException:
        stream.close()
        raise
    return stream
