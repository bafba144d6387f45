"""The SANDBOX variants: the same suite with every session in a Docker sandbox, and a stdio
client that hangs up mid-command leaving no container behind."""

from __future__ import annotations

import anyio
import pytest

from agent_runner.mcp_server import build_server
from mcp import Client
from tests.conftest import labelled_containers, sandbox_workspace
from tests.mcp.conftest import server_settings
from tests.mcp.stdio_server import RawStdioClient, server_environment
from tests.mcp.suite import McpContract, call, call_error
from tests.mcp.test_stdio import GONE, eventually_empty, start_slow_command

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "workspace")


class TestSandboxInProcess(McpContract):
    mode = "sandbox"

    protocol = "legacy"

    @pytest.fixture
    def target(self, workspace, sandbox_image):
        settings = server_settings(mode="sandbox", sandbox_image=sandbox_image, auto_pull=False)
        return lambda: build_server(settings, str(workspace))

    async def test_the_sandbox_is_gone_when_the_client_disconnects(self, connect, docker_api):
        before = labelled_containers(docker_api)
        async with connect() as client:
            await self.run(client, "sleep 55.5", yield_s=0.2)
            assert labelled_containers(docker_api) - before
        assert labelled_containers(docker_api) - before == set()


def owned_by(docker_api, pid: int) -> list[str]:
    containers = docker_api.containers(
        all=True, filters={"label": [f"stigmer.owner-pid={pid}", "stigmer.sandbox=1"]}
    )
    return [c["Id"][:12] for c in containers]


@pytest.mark.parametrize("hang_up", ["stdin", "sigterm", "sigkill"])
def test_a_stdio_client_going_away_leaves_no_container(
    workspace, tmp_path, sandbox_image, docker_api, hang_up
):
    env = server_environment(
        tmp_path, STIGMER_SANDBOX_IMAGE=sandbox_image, STIGMER_SANDBOX_AUTO_PULL="false"
    )
    client = RawStdioClient(workspace, env, "--mode", "sandbox")
    try:
        start_slow_command(client, "echo started; sleep 66.5")
        assert owned_by(docker_api, client.process.pid)
        if hang_up == "stdin":
            client.hang_up()
        elif hang_up == "sigterm":
            client.process.terminate()
        else:  # the sandbox's executor ends when its attach stream hangs up
            client.process.kill()
        client.process.wait(timeout=GONE)
        assert eventually_empty(lambda: owned_by(docker_api, client.process.pid)) == []
    finally:
        client.close()


async def test_auto_sends_a_file_write_outside_the_workspace_to_the_sandbox(
    workspace, sandbox_image
):
    """On the host (as root in CI) the write would succeed; in the sandbox, whose root is
    read-only, it fails: the error says where it ran."""
    target = anyio.Path("/srv/agent-runner-auto-write-test.txt")
    settings = server_settings(mode="auto", sandbox_image=sandbox_image, auto_pull=False)
    async with Client(build_server(settings, str(workspace)), mode="legacy") as client:
        message = await call_error(client, "write_file", path=str(target), content="x")
    assert "Read-only file system" in message or "Permission denied" in message
    assert not await target.exists()


async def test_a_warm_pool_fills_for_the_servers_workspace(workspace, sandbox_image):
    settings = server_settings(
        mode="sandbox", sandbox_image=sandbox_image, auto_pull=False, sandbox={"pool_size": 1}
    )
    async with Client(build_server(settings, str(workspace)), mode="legacy") as client:
        reply = await call(client, "run_command", command="touch made-here; pwd")
        assert reply["stdout"] == "/workspace\n"
        info = await call(client, "session_info")
        assert info["places"][0]["sandbox_id"]
    assert await anyio.Path(workspace / "made-here").exists()
