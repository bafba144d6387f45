"""The runner's end of the executor's protocol, over any duplex byte stream.

Every remote backend reaches its sandbox's executor (:mod:`agent_runner.backends.executor`)
through some transport that carries the executor's stdin one way and its stdout and stderr
the other: the Engine API's upgraded connection for Docker, a ``pods/exec`` websocket for
Kubernetes. The transport only moves bytes (:class:`ByteStream`); this module turns the
executor's stdout into frames and keeps what it writes to stderr (only on trouble) for error
messages, so no backend parses the protocol twice.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from agent_runner.backends import executor

STDOUT, STDERR = 1, 2
DIAGNOSTICS_KEPT = 4096


class ByteStream(Protocol):
    """A process's stdin, and its stdout and stderr kept apart, as a transport carries them."""

    async def receive(self) -> tuple[int, bytes]:
        """The next piece of output: (1 for stdout or 2 for stderr, bytes); ``EOFError`` at
        the end of the stream."""
        ...

    async def send(self, data: bytes) -> None: ...

    def close(self) -> None:
        """Hang up (the process sees its stdin close)."""
        ...


class ExecutorChannel:
    """Frames to and from the executor over a :class:`ByteStream`."""

    def __init__(self, stream: ByteStream) -> None:
        self._stream = stream
        self._stdout = bytearray()
        self.diagnostics = bytearray()
        """What the process wrote to its stderr (the executor only writes there on trouble)."""

    def last_diagnostic(self) -> str:
        """The last line the process wrote to its stderr, or ``""``."""
        lines = self.diagnostics.decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    async def send(self, request: dict[str, Any]) -> None:
        await self._stream.send(json.dumps(request).encode() + b"\n")

    async def write(self, data: bytes) -> None:
        """Raw bytes to the executor's stdin (the body of a ``put``)."""
        await self._stream.send(data)

    async def read_frame(self) -> tuple[bytes, bytes]:
        """The next frame from the executor; ``EOFError`` when the stream ends."""
        header_size = executor.HEADER.size
        while True:
            if len(self._stdout) >= header_size:
                kind, length = executor.HEADER.unpack_from(self._stdout)
                if len(self._stdout) >= header_size + length:
                    payload = bytes(self._stdout[header_size : header_size + length])
                    del self._stdout[: header_size + length]
                    return kind, payload
            await self._read_more()

    async def opening(self) -> bytes:
        """``b"H"`` once the executor said hello, else the launcher's one line of text."""
        while not self._stdout:
            await self._read_more()
        if self._stdout[:1] == executor.HELLO:
            await self.read_frame()
            return executor.HELLO
        while b"\n" not in self._stdout:
            await self._read_more()
        line, _, rest = bytes(self._stdout).partition(b"\n")
        self._stdout[:] = rest
        return line

    async def _read_more(self) -> None:
        stream, data = await self._stream.receive()
        if stream == STDOUT:
            self._stdout += data
        elif stream == STDERR:
            self.diagnostics += data[-DIAGNOSTICS_KEPT:]
            del self.diagnostics[:-DIAGNOSTICS_KEPT]

    def close(self) -> None:
        """Hang up: the executor sees its stdin close, kills what runs, and exits."""
        self._stream.close()
