"""The Engine API's upgraded connection: a raw stream to a process in a container, on asyncio.

The Engine API's attach and exec-start calls upgrade their HTTP connection to a raw
stream: what we write reaches the process's stdin, and its stdout and stderr come back
multiplexed, each piece behind an 8-byte header (stream id, three zero bytes, big-endian
length). docker-py hands such a stream to a blocking socket; here the upgrade is done on an
asyncio connection instead, so reading a command's output needs no thread and costs a
fraction of a millisecond.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from agent_runner.errors import SandboxUnavailable

MULTIPLEX_HEADER = struct.Struct(">BxxxI")
STDOUT, STDERR = 1, 2


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

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.unix_path is not None:
            return await asyncio.open_unix_connection(self.unix_path, limit=2**20)
        return await asyncio.open_connection(self.host, self.port, limit=2**20)


def engine_url_from_environment() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


class EngineStream:
    """One upgraded connection: stdin out, demultiplexed stdout and stderr in."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def receive(self) -> tuple[int, bytes]:
        """The next piece of the process's output: (1 for stdout or 2 for stderr, bytes)."""
        try:
            header = await self._reader.readexactly(MULTIPLEX_HEADER.size)
            stream, length = MULTIPLEX_HEADER.unpack(header)
            return stream, await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise EOFError("the sandbox process closed its stream") from error

    async def send(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()


async def upgrade(
    address: EngineAddress, api_path: str, body: dict[str, Any] | None = None
) -> EngineStream:
    """POST ``api_path`` asking for a raw stream; return the upgraded connection."""
    reader, writer = await address.connect()
    payload = json.dumps(body).encode() if body is not None else b""
    request = (
        f"POST {api_path} HTTP/1.1\r\n"
        "Host: docker\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n"
        "Connection: Upgrade\r\n"
        "Upgrade: tcp\r\n\r\n"
    ).encode() + payload
    try:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
    except (OSError, asyncio.IncompleteReadError) as error:
        writer.close()
        raise SandboxUnavailable(f"the engine closed the stream for {api_path}: {error}") from None
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    if " 101 " not in status and " 200 " not in status:
        writer.close()
        detail = await _error_body(reader)
        raise SandboxUnavailable(f"the engine refused {api_path}: {status} {detail}".strip())
    return EngineStream(reader, writer)


async def _error_body(reader: asyncio.StreamReader) -> str:
    try:
        raw = await asyncio.wait_for(reader.read(4096), 1.0)
    except (TimeoutError, OSError):
        return ""
    try:
        return str(json.loads(raw.split(b"\r\n\r\n")[-1]).get("message", ""))
    except ValueError:
        return raw.decode(errors="replace")[:200]
