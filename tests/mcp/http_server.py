"""``agent-runner mcp --transport http`` as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import re
import selectors
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from tests.mcp.stdio_server import server_command

READY = re.compile(r"serving (http://\S+)\n")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_serving(process: subprocess.Popen, timeout: float) -> str:
    """The URL the server announces on stderr (read raw, so no line hides in a buffer)."""
    assert process.stderr is not None
    fd = process.stderr.fileno()
    deadline = time.monotonic() + timeout
    seen = b""
    with selectors.DefaultSelector() as waiting:
        waiting.register(fd, selectors.EVENT_READ)
        while not (found := READY.search(seen.decode(errors="replace"))):
            left = deadline - time.monotonic()
            assert left > 0, f"the server did not start in time: {seen[-2000:]!r}"
            if waiting.select(left):
                chunk = os.read(fd, 65536)
                assert chunk, f"the server exited ({process.wait()}): {seen[-2000:]!r}"
                seen += chunk
    return found.group(1)


@contextmanager
def http_server(workspace: Path, env: dict[str, str], *args: str, timeout: float = 60):
    """Start the server, yield its URL once it listens, stop it (SIGTERM) at the end."""
    command = server_command(workspace, "--transport", "http", "--port", str(free_port()), *args)
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        yield wait_until_serving(process, timeout), process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stderr is not None:
            process.stderr.close()
