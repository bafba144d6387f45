"""The few Docker Engine API calls the fake kubelet needs, on asyncio.

The fake's pods are real containers and its exec is a real ``docker exec``, so that what
runs in a "pod" is what would run on a node. Control calls go through aiohttp (over the
engine's unix socket or plain TCP, from ``DOCKER_HOST``); exec start is the Engine API's
hijacked stream (``Upgrade: tcp``), on a raw asyncio connection so stdin and output flow
both ways with TCP back-pressure and nothing is read ahead into memory. This is the part
of the kubelet that the CRI runtime would do; nothing here knows about Kubernetes.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

import aiohttp

_HEADER = struct.Struct(">BxxxI")


class EngineError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass
class ExecStream:
    """A hijacked exec connection: write stdin, read (stream, bytes) frames."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    tty: bool

    async def read(self) -> tuple[int, bytes] | None:
        """The next piece of output (1 stdout, 2 stderr); ``None`` at the end."""
        try:
            if self.tty:
                data = await self.reader.read(32 * 1024)
                return (1, data) if data else None
            header = await self.reader.readexactly(_HEADER.size)
            stream, length = _HEADER.unpack(header)
            return stream, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close_stdin(self) -> None:
        if self.writer.can_write_eof() and not self.writer.is_closing():
            self.writer.write_eof()

    def close(self) -> None:
        if not self.writer.is_closing():
            self.writer.close()


class Engine:
    def __init__(self, url: str | None = None) -> None:
        self.url = url or os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
        parsed = urlparse(self.url)
        if parsed.scheme in ("unix", "http+unix"):
            self._unix: str | None = parsed.path
            self._host, self._port = "docker", 80
        elif parsed.scheme in ("tcp", "http") and parsed.hostname:
            self._unix = None
            self._host, self._port = parsed.hostname, parsed.port or 2375
        else:
            raise ValueError(f"the fake kubelet cannot reach a Docker engine at {self.url}")
        self._session: aiohttp.ClientSession | None = None
        self._prefix = ""

    async def open(self) -> None:
        connector: aiohttp.BaseConnector = (
            aiohttp.UnixConnector(path=self._unix) if self._unix else aiohttp.TCPConnector()
        )
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None, connect=10)
        )
        version = await self.call("GET", "/version")
        self._prefix = f"/v{version['ApiVersion']}"

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
        raw: bool = False,
    ) -> Any:
        assert self._session is not None
        url = f"http://{self._host}:{self._port}{self._prefix}{path}"
        async with self._session.request(method, url, params=params, json=body) as response:
            data = await response.read()
            if response.status >= 400:
                try:
                    message = json.loads(data).get("message", "")
                except ValueError:
                    message = data.decode(errors="replace")
                raise EngineError(response.status, message)
            if raw:
                return data
            return json.loads(data) if data else None

    async def image(self, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await self.call("GET", f"/images/{quote(name, safe='')}/json")
        except EngineError as error:
            if error.status == 404:
                return None
            raise
        return found

    async def create(self, name: str, config: dict[str, Any]) -> str:
        created = await self.call("POST", "/containers/create", params={"name": name}, body=config)
        return str(created["Id"])

    async def start(self, container: str) -> None:
        await self.call("POST", f"/containers/{container}/start")

    async def inspect(self, container: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"/containers/{container}/json")
        return found

    async def wait(self, container: str) -> int:
        done = await self.call("POST", f"/containers/{container}/wait")
        return int(done.get("StatusCode", -1))

    async def kill(self, container: str, signal: str = "SIGKILL") -> None:
        try:
            await self.call("POST", f"/containers/{container}/kill", params={"signal": signal})
        except EngineError as error:
            if error.status not in (404, 409):  # gone, or not running
                raise

    async def remove(self, container: str) -> None:
        try:
            await self.call("DELETE", f"/containers/{container}", params={"force": "1", "v": "1"})
        except EngineError as error:
            if error.status != 404:
                raise

    async def containers(self, label: str) -> list[dict[str, Any]]:
        filters = json.dumps({"label": [label]})
        found: list[dict[str, Any]] = await self.call(
            "GET", "/containers/json", params={"all": "1", "filters": filters}
        )
        return found

    async def logs(self, container: str, tail: int | None) -> bytes:
        params = {"stdout": "1", "stderr": "1", "tail": str(tail) if tail is not None else "all"}
        data: bytes = await self.call(
            "GET", f"/containers/{container}/logs", params=params, raw=True
        )
        return data

    async def exec_create(self, container: str, command: list[str], stdin: bool, tty: bool) -> str:
        created = await self.call(
            "POST",
            f"/containers/{container}/exec",
            body={
                "AttachStdin": stdin,
                "AttachStdout": True,
                "AttachStderr": True,
                "Tty": tty,
                "Cmd": command,
            },
        )
        return str(created["Id"])

    async def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.call("GET", f"/exec/{exec_id}/json")
        return found

    async def exec_resize(self, exec_id: str, width: int, height: int) -> None:
        await self.call(
            "POST", f"/exec/{exec_id}/resize", params={"w": str(width), "h": str(height)}
        )

    async def exec_start(self, exec_id: str, tty: bool) -> ExecStream:
        if self._unix:
            reader, writer = await asyncio.open_unix_connection(self._unix)
        else:
            reader, writer = await asyncio.open_connection(self._host, self._port)
        payload = json.dumps({"Detach": False, "Tty": tty}).encode()
        writer.write(
            (
                f"POST {self._prefix}/exec/{exec_id}/start HTTP/1.1\r\n"
                f"Host: {self._host}\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\n"
                "Connection: Upgrade\r\n"
                "Upgrade: tcp\r\n\r\n"
            ).encode()
            + payload
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in status and " 200 " not in status:
            writer.close()
            raise EngineError(int(status.split()[1]), status)
        return ExecStream(reader, writer, tty)


def demultiplex(data: bytes) -> bytes:
    """The output bytes of a multiplexed (non-TTY) log stream, headers removed."""
    out, offset = bytearray(), 0
    while offset + _HEADER.size <= len(data):
        _, length = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        out += data[offset : offset + length]
        offset += length
    return bytes(out)
