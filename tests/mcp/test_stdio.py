"""``python -m agent_runner mcp`` as a real subprocess over stdio, on both protocols, and
clients that go away in the middle of a command."""

from __future__ import annotations

import signal
import subprocess
import time

import pytest

from mcp import Client
from tests.mcp.stdio_server import RawStdioClient, server_environment, stdio_parameters
from tests.mcp.suite import McpContract

GONE = 60
"""Seconds a server gets to clean up and exit after its client went away (it needs ~1)."""


class OverStdio(McpContract):
    @pytest.fixture
    def target(self, workspace, tmp_path):
        parameters = stdio_parameters(workspace, server_environment(tmp_path))
        return lambda: parameters


class TestModern(OverStdio):
    protocol = "2026-07-28"


class TestLegacy(OverStdio):
    protocol = "legacy"


def pgrep(pattern: str) -> str:
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout


def eventually_empty(probe, timeout: float = GONE) -> str:
    """``probe()`` until it finds nothing (what it last found, if the time ran out)."""
    deadline = time.monotonic() + timeout
    while (found := probe()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def start_slow_command(client: RawStdioClient, command: str) -> None:
    """Call run_command with ``command`` and wait until it printed (a progress line)."""
    client.initialize()
    client.send(
        "tools/call",
        {
            "name": "run_command",
            "arguments": {"command": command, "yield_s": 50},
            "_meta": {"progressToken": "slow"},
        },
    )
    message = client.receive()
    assert message.get("method") == "notifications/progress", message
    assert message["params"]["message"] == "started"


@pytest.fixture
def raw_client(workspace, tmp_path):
    clients: list[RawStdioClient] = []

    def start(*args: str, **variables: str) -> RawStdioClient:
        client = RawStdioClient(workspace, server_environment(tmp_path, **variables), *args)
        clients.append(client)
        return client

    yield start
    for client in clients:
        client.close()


def test_a_client_that_hangs_up_mid_command_leaves_no_process(raw_client):
    client = raw_client()
    start_slow_command(client, "echo started; sleep 61.5 & sleep 62.5; wait")
    assert pgrep("slee[p] 6[12].5")
    client.hang_up()
    assert client.process.wait(timeout=GONE) == 0, client.stderr()
    assert pgrep("slee[p] 6[12].5") == ""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL])
def test_a_signalled_server_leaves_no_process(raw_client, signum):
    """SIGKILL too: host commands run under the runner's supervisor, which ends them when
    the runner's end of it goes away."""
    client = raw_client()
    start_slow_command(client, "echo started; sleep 63.5")
    client.process.send_signal(signum)
    expected = -signum if signum == signal.SIGKILL else 128 + signum
    assert client.process.wait(timeout=GONE) == expected, client.stderr()
    assert eventually_empty(lambda: pgrep("slee[p] 63.5")) == ""


async def test_the_sdk_client_leaving_mid_call_leaves_no_process(workspace, tmp_path):
    import anyio

    parameters = stdio_parameters(workspace, server_environment(tmp_path))
    started = anyio.Event()

    async def progress(value, total, message):
        started.set()

    async with Client(parameters, mode="legacy") as client, anyio.create_task_group() as group:

        async def slow() -> None:
            await client.call_tool(
                "run_command",
                {"command": "echo started; sleep 64.5", "yield_s": 50},
                progress_callback=progress,
            )

        group.start_soon(slow)
        with anyio.fail_after(GONE):
            await started.wait()
        group.cancel_scope.cancel()
    assert pgrep("slee[p] 64.5") == ""
