"""``agent-runner mcp --transport http`` as a real subprocess on 127.0.0.1."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

from tests.mcp.stdio_server import server_command

READY = re.compile(r"serving (http://\S+)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def http_server(workspace: Path, env: dict[str, str], *args: str, timeout: float = 60):
    """Start the server, yield its URL once it listens, stop it (SIGTERM) at the end."""
    command = server_command(workspace, "--transport", "http", "--port", str(free_port()), *args)
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    try:
        deadline = time.monotonic() + timeout
        url = None
        assert process.stderr is not None
        while url is None:
            line = process.stderr.readline()
            assert line, f"the server exited: {process.wait()}"
            assert time.monotonic() < deadline, "the server did not start"
            if found := READY.search(line):
                url = found.group(1)
        yield url, process
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
