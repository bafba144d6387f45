"""``agent-runner mcp`` as a real subprocess: how the tests start it and talk to it raw."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import time
from pathlib import Path

from mcp import StdioServerParameters
from tests.conftest import cli_environment

MAX_OUTPUT = str(16 * 1024 * 1024)


def server_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A user's environment (own config file) with a buffer that holds the big output."""
    variables.setdefault("STIGMER_EXECUTION_MAX_OUTPUT_BYTES", MAX_OUTPUT)
    return cli_environment(tmp_path, **variables)


def server_command(workspace: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent_runner", "mcp", "--workspace", str(workspace), *args]


def stdio_parameters(workspace: Path, env: dict[str, str], *args: str) -> StdioServerParameters:
    command, *rest = server_command(workspace, *args)
    return StdioServerParameters(command=command, args=rest, env=env)


class RawStdioClient:
    """Newline-delimited JSON-RPC on the server's pipes (2025-11-25 handshake), so a test can
    hang up at any moment, the way a crashed or closed client does."""

    def __init__(self, workspace: Path, env: dict[str, str], *args: str) -> None:
        self.process = subprocess.Popen(
            server_command(workspace, *args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            start_new_session=True,
        )
        self._next = 0
        self._buffer = b""

    def send(self, method: str, params: dict | None = None, *, notify: bool = False) -> int:
        message: dict = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            self._next += 1
            message["id"] = self._next
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(message).encode() + b"\n")
        self.process.stdin.flush()
        return self._next

    def receive(self, timeout: float = 60) -> dict:
        """The next message, within ``timeout`` seconds."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as waiting:
            waiting.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                assert left > 0, "no message from the server in time"
                if waiting.select(left):
                    chunk = os.read(fd, 65536)
                    assert chunk, f"the server hung up: {self.stderr()}"
                    self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def initialize(self) -> None:
        self.send(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test-client", "version": "0"},
            },
        )
        assert "result" in self.receive()
        self.send("notifications/initialized", notify=True)

    def hang_up(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")[-2000:]

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()
