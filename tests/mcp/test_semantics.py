"""What the server does beyond the shared suite, in-process: the shell semantics of
run_command, AUTO judging what is typed into host shells, and the execution.mcp limits."""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from agent_runner.errors import InvalidSetting
from agent_runner.mcp_server import build_server
from mcp import Client
from tests.conftest import run_cli
from tests.mcp.conftest import server_settings
from tests.mcp.stdio_server import server_environment
from tests.mcp.suite import call, call_error, until_exited


@pytest.fixture
def serve(workspace):
    @asynccontextmanager
    async def serve(**settings):
        server = build_server(server_settings(**settings), str(workspace))
        async with Client(server, mode="legacy") as client:
            yield client

    return serve


async def test_a_process_that_outlives_the_yield_keeps_its_cd_to_itself(serve, workspace):
    async with serve() as client:
        reply = await call(client, "run_command", command="cd /; export GONE=1; sleep 1", yield_s=0)
        assert reply["status"] == "running"
        await until_exited(client, reply)
        after = await call(client, "run_command", command='pwd; echo "${GONE-unset}"')
        assert after["stdout"] == f"{workspace}\nunset\n"


async def test_cwd_moves_the_session_and_env_is_for_one_command(serve, workspace):
    async with serve() as client:
        (workspace / "sub").mkdir()
        moved = await call(
            client, "run_command", command="pwd; echo $ONCE", cwd="sub", env={"ONCE": "1"}
        )
        assert moved["stdout"] == f"{workspace}/sub\n1\n"
        assert moved["cwd_after"] == f"{workspace}/sub"
        again = await call(client, "run_command", command='pwd; echo "${ONCE-unset}"')
        assert again["stdout"] == f"{workspace}/sub\nunset\n"
        missing = await call(client, "run_command", command="echo never", cwd="nowhere")
        assert (missing["exit_code"], missing["stdout"]) == (1, "")


async def test_input_to_a_process_without_stdin_says_how_to_keep_it_open(serve):
    async with serve() as client:
        reply = await call(client, "run_command", command="sleep 58.5", yield_s=0)
        message = await call_error(client, "write_stdin", process_id=reply["process_id"], data="x")
        assert "keep_stdin_open" in message
        polled = await call(
            client, "write_stdin", process_id=reply["process_id"], data="", wait_s=0
        )
        assert polled["status"] == "running"
        await call(client, "kill_process", process_id=reply["process_id"])


async def test_a_timeout_kills_the_command_and_says_so(serve):
    async with serve() as client:
        reply = await call(client, "run_command", command="echo before; sleep 56.5", timeout_s=0.5)
        assert (reply["status"], reply["exit_code"], reply["stdout"]) == (
            "timed_out",
            124,
            "before\n",
        )


async def test_the_default_yield_comes_from_the_settings(serve):
    async with serve(mcp={"default_yield": 0.1}) as client:
        reply = await call(client, "run_command", command="sleep 2; echo late")
        assert reply["status"] == "running"
        _, stdout, _ = await until_exited(client, reply)
        assert stdout == "late\n"


async def test_sessions_refuse_processes_beyond_max_processes(serve):
    async with serve(mcp={"max_processes": 1}) as client:
        await call(client, "run_command", command="sleep 57.5", yield_s=0)
        message = await call_error(client, "run_command", command="sleep 57.5", yield_s=0)
        assert "max_processes" in message
        other = await call(client, "run_command", command="echo other", session_id="other")
        assert other["stdout"] == "other\n"


async def test_modes_outside_allowed_modes_are_refused(serve):
    async with serve(mcp={"allowed_modes": ["local", "auto"]}) as client:
        message = await call_error(client, "run_command", command="true", mode="sandbox")
        assert "allowed_modes" in message
    with pytest.raises(InvalidSetting, match="allowed_modes"):
        build_server(server_settings(mcp={"allowed_modes": ["sandbox"]}))


async def test_a_small_buffer_reports_what_it_dropped(serve):
    async with serve(max_output_bytes=64 * 1024) as client:
        reply = await call(
            client, "run_command", command="seq 1 200000", max_output_bytes=1024 * 1024
        )
        final, stdout, _ = await until_exited(client, reply)
        assert reply["dropped"] + final["dropped"] > 0
        assert stdout.startswith("1\n2\n")
        assert stdout.endswith("199999\n200000\n")


# -- AUTO judges what is typed into a host shell --------------------------------------


async def start_host(client, command: str) -> str:
    reply = await call(
        client, "run_command", command=command, mode="auto", keep_stdin_open=True, yield_s=0.2
    )
    assert (reply["status"], reply["mode"]) == ("running", "local"), reply
    return reply["process_id"]


async def test_auto_refuses_risky_lines_typed_into_a_host_shell(serve):
    async with serve() as client:
        pid = await start_host(client, "bash")
        fine = await call(
            client, "write_stdin", process_id=pid, data="echo $((20 + 22))\n", wait_s=5
        )
        assert fine["stdout"] == "42\n"
        refused = await call_error(client, "write_stdin", process_id=pid, data="sudo rm -rf /srv\n")
        assert "privilege" in refused
        assert "mode='sandbox'" in refused
        await call(client, "write_stdin", process_id=pid, data="cd /etc\n")
        refused = await call_error(client, "write_stdin", process_id=pid, data="touch hosts\n")
        assert "outside-workspace" in refused
        last = await call(
            client, "write_stdin", process_id=pid, data="echo still; exit 3\n", wait_s=5
        )
        last, stdout, _ = await until_exited(client, last)
        assert (last["exit_code"], stdout) == (3, "still\n")


async def test_auto_passes_a_line_only_once_it_is_complete(serve):
    async with serve() as client:
        pid = await start_host(client, "bash")
        await call(client, "write_stdin", process_id=pid, data="echo hel", wait_s=0)
        done = await call(client, "write_stdin", process_id=pid, data="lo\n", wait_s=5)
        assert done["stdout"] == "hello\n"


async def test_auto_refuses_input_to_a_host_repl(serve):
    async with serve() as client:
        pid = await start_host(client, "python3 -i")
        refused = await call_error(client, "write_stdin", process_id=pid, data="print(1)\n")
        assert "python3" in refused
        assert "cannot judge" in refused
        await call(client, "kill_process", process_id=pid, signal="KILL")


async def test_auto_judges_stdin_given_to_run_command(serve):
    async with serve() as client:
        refused = await call_error(
            client, "run_command", command="sh", stdin="sudo id\n", mode="auto"
        )
        assert "privilege" in refused
        listed = await call(client, "list_processes")
        assert all(p["status"] != "running" for p in listed["processes"])


async def test_auto_writes_files_in_the_workspace_on_the_host(serve, workspace):
    async with serve() as client:
        await call(client, "run_command", command="true", mode="auto")
        wrote = await call(client, "write_file", path="deep/er/x.txt", content="é\n")
        assert wrote["path"] == f"{workspace}/deep/er/x.txt"
        assert (workspace / "deep/er/x.txt").read_text() == "é\n"
        plain = await call(client, "write_file", path="y.txt", content="y")
        assert plain["path"] == f"{workspace}/y.txt"


async def test_local_mode_passes_input_as_given(serve):
    async with serve() as client:
        reply = await call(
            client, "run_command", command="bash", stdin="cd /etc && basename $PWD\n", mode="local"
        )
        assert reply["stdout"] == "etc\n"


def test_help_shows_how_to_register_with_clients(tmp_path):
    done = run_cli("mcp", "--help", env=server_environment(tmp_path))
    assert done.returncode == 0
    assert "claude mcp add agent-runner -- agent-runner mcp" in done.stdout
    assert "codex mcp add" in done.stdout
    assert "mcp.json" in done.stdout


def test_without_the_sdk_the_command_says_how_to_install_it(tmp_path):
    import subprocess
    import sys

    code = "import sys; sys.modules['mcp'] = None; from agent_runner.cli import main; sys.exit(main(['mcp']))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=server_environment(tmp_path),
    )
    assert done.returncode == 2
    assert "pip install 'stigmer-agent-runner[mcp]'" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
