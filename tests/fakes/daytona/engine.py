"""The Docker Engine API on asyncio, for the emulator's own use.

The emulator runs on one event loop and must not block it, so it speaks to the engine
directly: JSON calls through aiohttp, and exec sessions as upgraded raw streams (the
engine answers ``POST /exec/{id}/start`` with ``101 UPGRADED`` and then multiplexes
stdout and stderr with 8-byte headers; half-closing our side closes the process's stdin).

It is deliberately independent of ``agent_runner.backends.channel``: a test double that
shares code with the product under test could hide the product's bugs.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode, urlparse

import aiohttp

_HEADER = struct.Struct(">BxxxI")
STDOUT, STDERR = 1, 2


class EngineError(Exception):
    """The engine refused a call; ``status`` is its HTTP status (404: no such object)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class ExecStream:
    """One exec'd process: write to its stdin, read its multiplexed output."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def write(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    def close_stdin(self) -> None:
        if self._writer.can_write_eof() and not self._writer.is_closing():
            self._writer.write_eof()

    async def read(self) -> tuple[int, bytes] | None:
        """The next (stream, bytes) piece, or ``None`` once the process's output ends."""
        try:
            header = await self._reader.readexactly(_HEADER.size)
            stream, length = _HEADER.unpack(header)
            return stream, await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def read_all(self) -> tuple[bytes, bytes]:
        out, err = bytearray(), bytearray()
        while (piece := await self.read()) is not None:
            (out if piece[0] == STDOUT else err).extend(piece[1])
        return bytes(out), bytes(err)

    def close(self) -> None:
        if not self._writer.is_closing():
            self._writer.close()


class Engine:
    """A client of one Docker engine (``DOCKER_HOST``, unix socket or plain TCP)."""

    def __init__(self, url: str | None = None) -> None:
        parsed = urlparse(url or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
        self._unix_path = parsed.path if parsed.scheme in ("unix", "http+unix") else None
        self._host = parsed.hostname or "localhost"
        self._port = parsed.port or 2375
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._unix_path is not None:
                connector = aiohttp.UnixConnector(path=self._unix_path, limit=64)
                base = "http://docker"
            else:
                connector = aiohttp.TCPConnector(limit=64)
                base = f"http://{self._host}:{self._port}"
            self._session = aiohttp.ClientSession(
                base_url=base, connector=connector, timeout=aiohttp.ClientTimeout(total=None)
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        timeout: float = 120.0,
    ) -> Any:
        """One JSON call; the decoded reply (``None`` for an empty one)."""
        async with self._client().request(
            method,
            path,
            params=params,
            json=body,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                try:
                    message = json.loads(raw).get("message", "")
                except ValueError:
                    message = raw.decode(errors="replace")
                raise EngineError(response.status, message)
            return json.loads(raw) if raw.strip() else None

    async def exec_create(
        self,
        container: str,
        command: list[str],
        *,
        user: str = "",
        workdir: str = "",
        env: list[str] | None = None,
        stdin: bool = False,
    ) -> str:
        reply = await self.call(
            "POST",
            f"/containers/{container}/exec",
            body={
                "Cmd": command,
                "User": user,
                "WorkingDir": workdir,
                "Env": env or [],
                "AttachStdin": stdin,
                "AttachStdout": True,
                "AttachStderr": True,
                "Tty": False,
            },
        )
        return str(reply["Id"])

    async def exec_start(self, exec_id: str) -> ExecStream:
        """Start an exec and hand back its upgraded stream."""
        if self._unix_path is not None:
            reader, writer = await asyncio.open_unix_connection(self._unix_path, limit=2**20)
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port, limit=2**20)
        payload = json.dumps({"Detach": False, "Tty": False}).encode()
        writer.write(
            (
                f"POST /exec/{exec_id}/start HTTP/1.1\r\nHost: docker\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            ).encode()
            + payload
        )
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            writer.close()
            raise EngineError(500, f"exec start closed: {error}") from None
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in status_line and " 200 " not in status_line:
            writer.close()
            raise EngineError(int(status_line.split()[1]), status_line)
        return ExecStream(reader, writer)

    async def exec_exit_code(self, exec_id: str) -> int | None:
        reply = await self.call("GET", f"/exec/{exec_id}/json")
        code = reply.get("ExitCode")
        return None if reply.get("Running") or code is None else int(code)

    async def build(self, context: bytes, tag: str) -> AsyncIterator[dict[str, Any]]:
        """Build an image from a tar context; the engine's JSON progress lines."""
        async with self._client().post(
            "/build",
            params={"t": tag, "rm": "1", "forcerm": "1"},
            data=context,
            headers={"Content-Type": "application/x-tar"},
            timeout=aiohttp.ClientTimeout(total=1800),
        ) as response:
            if response.status >= 400:
                raise EngineError(response.status, (await response.text())[:500])
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)

    async def events(self, labels: dict[str, str]) -> AsyncIterator[dict[str, Any]]:
        """Container events of the containers carrying ``labels``, until cancelled."""
        filters = {"type": ["container"], "label": [f"{k}={v}" for k, v in labels.items()]}
        query = urlencode({"filters": json.dumps(filters)})
        async with self._client().get(
            f"/events?{query}", timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            async for line in response.content:
                if line.strip():
                    yield json.loads(line)

    @staticmethod
    def quoted(name: str) -> str:
        return quote(name, safe="")
