"""An independent client: the MCP Inspector CLI from npm (pinned in tests/mcp/inspector,
installed by ``make inspector``), over stdio and over HTTP, its JSON parsed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import IN_CI
from tests.mcp.http_server import http_server
from tests.mcp.stdio_server import server_command, server_environment

INSPECTOR = Path(__file__).parent / "inspector" / "node_modules" / ".bin" / "mcp-inspector"
TOKEN = "inspector-token-0123456789"


@pytest.fixture(scope="module")
def inspector() -> Path:
    if not INSPECTOR.exists():
        message = f"the MCP Inspector is not installed ({INSPECTOR}); run make inspector"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return INSPECTOR


def inspect(inspector: Path, target: list[str], *args: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [str(inspector), "--cli", *target, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr[-2000:] + done.stdout[-2000:]
    return json.loads(done.stdout)


def run_command(inspector: Path, target: list[str], env: dict[str, str], command: str) -> dict:
    return inspect(
        inspector,
        target,
        "--method",
        "tools/call",
        "--tool-name",
        "run_command",
        "--tool-arg",
        f"command={command}",
        env=env,
    )


def test_inspector_runs_a_command_over_stdio(inspector, workspace, tmp_path):
    env = server_environment(tmp_path)
    reply = run_command(inspector, server_command(workspace), env, 'echo "it\'s" $((6 * 7))')
    assert reply["isError"] is False
    structured = reply["structuredContent"]
    assert (structured["status"], structured["exit_code"]) == ("exited", 0)
    assert structured["stdout"] == "it's 42\n"
    assert structured["cwd_after"] == str(workspace)
    assert "it's 42" in reply["content"][0]["text"]


def test_inspector_finds_the_tool_schemas_portable(inspector, workspace, tmp_path):
    env = server_environment(tmp_path)
    listed = inspect(
        inspector, server_command(workspace), "--method", "tools/list", "--strict", env=env
    )
    names = {tool["name"] for tool in listed["tools"]}
    assert {"run_command", "read_output", "write_stdin", "kill_process"} <= names
    for tool in listed["tools"]:
        assert tool["outputSchema"]["type"] == "object"
        assert "annotations" in tool


def test_inspector_runs_a_command_over_http_with_the_token(inspector, workspace, tmp_path):
    env = server_environment(tmp_path)
    with http_server(workspace, env, "--token", TOKEN) as (url, _):
        header = ["--transport", "http", "--header", f"Authorization: Bearer {TOKEN}"]
        reply = run_command(inspector, [url, *header], env, "printf '%s\\n' a b")
    assert reply["structuredContent"]["stdout"] == "a\nb\n"
