"""Streamable HTTP on 127.0.0.1, a real server process, on both protocols; with a token,
requests without it are refused."""

from __future__ import annotations

import anyio
import httpx2
import pytest
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from mcp import Client, MCPError
from tests.conftest import run_cli
from tests.mcp.http_server import http_server
from tests.mcp.stdio_server import server_environment
from tests.mcp.suite import McpContract, call

TOKEN = "s3cret-token-for-the-tests"


def http_client(url: str, headers: dict[str, str] | None = None):
    return streamable_http_client(url, http_client=create_mcp_http_client(headers=headers))


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the suite on both protocols, as a long-lived HTTP server is used."""
    root = tmp_path_factory.mktemp("http")
    workspace = root / "workspace"
    workspace.mkdir()
    with http_server(workspace, server_environment(root), "--token", TOKEN) as (url, _):
        yield url


class OverHttp(McpContract):
    @pytest.fixture
    def target(self, server):
        return lambda: http_client(server, {"Authorization": f"Bearer {TOKEN}"})


class TestModern(OverHttp):
    protocol = "2026-07-28"


class TestLegacy(OverHttp):
    protocol = "legacy"


@pytest.fixture
def token_server(workspace, tmp_path):
    with http_server(workspace, server_environment(tmp_path), "--token", TOKEN) as (url, _):
        yield url


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-of-some-length", f"Basic {TOKEN}"])
def test_a_request_without_the_token_is_refused(token_server, header):
    headers = {"Accept": "application/json, text/event-stream"}
    if header is not None:
        headers["Authorization"] = header
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx2.post(token_server, json=body, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_a_foreign_host_header_is_refused_on_loopback(token_server):
    """DNS rebinding: a page whose name resolves to 127.0.0.1 sends its own Host."""
    headers = {
        "Accept": "application/json, text/event-stream",
        "Authorization": f"Bearer {TOKEN}",
        "Host": "attacker.example:80",
    }
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    response = httpx2.post(token_server, json=body, headers=headers, timeout=30)
    assert response.status_code in (400, 421)


@pytest.mark.parametrize("protocol", ["legacy", "2026-07-28"])
async def test_the_sdk_client_without_the_token_gets_no_tools(token_server, protocol):
    with pytest.RaisesGroup(pytest.RaisesGroup(pytest.RaisesExc(MCPError, match="error response"))):
        async with Client(http_client(token_server), mode=protocol) as client:
            await client.list_tools()


async def test_sessions_outlive_a_client_but_not_the_server(workspace, tmp_path):
    env = server_environment(tmp_path)
    with http_server(workspace, env) as (url, process):
        async with Client(http_client(url), mode="2026-07-28") as client:
            reply = await call(client, "run_command", command="echo up; sleep 65.5", yield_s=0.3)
            assert reply["status"] == "running"
        async with Client(http_client(url), mode="legacy") as client:
            listed = await call(client, "list_processes")
            assert reply["process_id"] in {p["process_id"] for p in listed["processes"]}
        process.terminate()
        code = await anyio.to_thread.run_sync(lambda: process.wait(timeout=60))
        assert code in (0, -15)  # uvicorn re-raises SIGTERM once it has shut down
    found = await anyio.run_process(["pgrep", "-f", "slee[p] 65.5"], check=False)
    assert found.stdout == b""


def test_binding_beyond_loopback_needs_a_token(workspace, tmp_path):
    env = server_environment(tmp_path)
    done = run_cli("mcp", "--transport", "http", "--host", "0.0.0.0", env=env, cwd=workspace)
    assert done.returncode == 2
    assert "--token" in done.stderr
    assert "0.0.0.0" in done.stderr
