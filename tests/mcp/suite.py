"""What every MCP client sees of ``agent-runner mcp``, written once.

A transport's test module subclasses :class:`McpContract`, names its ``protocol`` and
supplies ``target``: what :class:`mcp.Client` connects to (a server in-process, the
parameters of a stdio subprocess, a streamable HTTP transport), made anew on each call. ``mode`` is the mode the sessions run in;
the checks run their probes (``pgrep``) in that same place, so the SANDBOX variants reuse
them unchanged.
"""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager

import anyio
import pytest

from mcp import Client
from tests.contract.suite import EXPECTED, TRICKY_COMMANDS

TOOLS = {
    "run_command",
    "read_output",
    "write_stdin",
    "kill_process",
    "list_processes",
    "explain_command",
    "read_file",
    "write_file",
    "list_files",
    "session_info",
    "close_session",
}
WAIT = 30.0
"""Generous bound for anything that should take well under a second."""
CALL = 180.0
"""Bound for one call (the longest ones yield after 50 s): a hung server fails, not hangs."""


async def call(client, tool: str, **arguments) -> dict:
    """The tool's structured result; a tool error fails the test with its message."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content[0].text
    assert result.content
    assert result.content[0].type == "text"
    return result.structured_content


async def call_error(client, tool: str, **arguments) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    return result.content[0].text


async def until_exited(client, reply: dict, wait_s: float = 5) -> tuple[dict, str, str]:
    """Poll read_output until the process ended and everything is read; all output."""
    stdout, stderr = reply["stdout"], reply["stderr"]
    with anyio.fail_after(120):
        while reply.get("process_id"):
            reply = await call(client, "read_output", process_id=reply["process_id"], wait_s=wait_s)
            stdout += reply["stdout"]
            stderr += reply["stderr"]
    return reply, stdout, stderr


class McpContract:
    mode = "local"
    protocol = "2026-07-28"

    @pytest.fixture
    def connect(self, target):
        @asynccontextmanager
        async def connect():
            async with Client(target(), mode=self.protocol, read_timeout_seconds=CALL) as client:
                yield client

        return connect

    @pytest.fixture
    async def client(self, connect):
        """A connected client, held open by a task of its own: anyio's scopes inside it must
        be entered and left in one task, and a fixture's setup and teardown are two."""
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        done = asyncio.Event()

        async def hold() -> None:
            async with connect() as client:
                ready.set_result(client)
                await done.wait()

        holder = asyncio.create_task(hold())
        await asyncio.wait({holder, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            await holder  # raises what went wrong
        yield ready.result()
        done.set()
        await asyncio.wait_for(holder, 120)

    async def run(self, client, command: str, **options) -> dict:
        options.setdefault("mode", self.mode)
        options.setdefault("yield_s", 50)
        return await call(client, "run_command", command=command, **options)

    async def test_the_protocol_is_the_one_asked_for(self, client):
        expected = "2025-11-25" if self.protocol == "legacy" else self.protocol
        assert client.protocol_version == expected
        assert client.server_info is None or client.server_info.name == "agent-runner"

    async def test_tools_are_listed_with_schemas_and_annotations(self, client):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) == TOOLS
        for tool in tools.values():
            assert tool.description
            assert len(tool.description) < 200
            assert tool.output_schema["type"] == "object"
            assert tool.annotations is not None
        run = tools["run_command"]
        assert run.input_schema["required"] == ["command"]
        assert {"status", "exit_code", "stdout", "cursor", "process_id", "cwd_after"} <= set(
            run.output_schema["properties"]
        )
        assert (run.annotations.read_only_hint, run.annotations.destructive_hint) == (False, True)
        assert run.annotations.open_world_hint is True
        for name in ("explain_command", "list_processes", "read_file", "list_files"):
            assert tools[name].annotations.read_only_hint is True
            assert tools[name].annotations.destructive_hint is False
        assert tools["kill_process"].annotations.idempotent_hint is True

    async def test_a_quick_command_returns_its_output_exit_code_and_text(self, client):
        result = await client.call_tool(
            "run_command", {"command": "echo out; echo err >&2; exit 3", "mode": self.mode}
        )
        reply = result.structured_content
        assert (reply["status"], reply["exit_code"]) == ("exited", 3)
        assert (reply["stdout"], reply["stderr"]) == ("out\n", "err\n")
        assert reply["process_id"] is None
        assert reply["mode"] == ("sandbox" if self.mode == "sandbox" else "local")
        text = result.content[0].text
        assert "exit code 3" in text
        assert "out" in text
        assert "err" in text

    async def test_quoting_torture_reaches_bash_untouched(self, client):
        for command, expected in zip(TRICKY_COMMANDS, EXPECTED, strict=True):
            reply = await self.run(client, command)
            assert (reply["exit_code"], reply["stdout"]) == (0, expected + "\n"), command

    async def test_cd_and_export_carry_over_to_the_next_command(self, client):
        first = await self.run(client, "mkdir -p sub && cd sub && export GREETING='hi there'")
        assert first["cwd_after"].endswith("/sub")
        second = await self.run(client, 'basename "$PWD"; echo "$GREETING"')
        assert second["stdout"] == "sub\nhi there\n"
        assert second["cwd_after"] == first["cwd_after"]

    async def test_progress_carries_the_latest_lines_in_order(self, client):
        seen: list[str] = []

        async def progress(value, total, message):
            seen.append(message)

        result = await client.call_tool(
            "run_command",
            {
                "command": "for i in 1 2 3 4 5; do echo line $i; sleep 0.3; done",
                "mode": self.mode,
                "yield_s": 50,
            },
            progress_callback=progress,
        )
        assert result.structured_content["exit_code"] == 0
        numbers = [int(m.split()[1]) for m in seen]
        assert numbers == sorted(set(numbers)), seen
        assert numbers[-1] == 5, seen
        assert len(numbers) >= 3, seen

    async def test_a_command_that_outlives_the_yield_is_polled_to_its_end(self, client):
        reply = await self.run(client, "echo started; sleep 3; echo done", yield_s=0.2)
        assert reply["status"] == "running"
        assert reply["process_id"].startswith("p-")
        listed = await call(client, "list_processes")
        assert reply["process_id"] in {p["process_id"] for p in listed["processes"]}
        final, stdout, _ = await until_exited(client, reply)
        assert (final["status"], final["exit_code"]) == ("exited", 0)
        assert stdout == "started\ndone\n"

    async def test_write_stdin_feeds_cat_until_it_is_closed(self, client):
        reply = await self.run(client, "cat", keep_stdin_open=True, yield_s=0.2)
        assert reply["status"] == "running"
        pid = reply["process_id"]
        echoed = ""
        with anyio.fail_after(WAIT):
            echoed += (await call(client, "write_stdin", process_id=pid, data="hello\n"))["stdout"]
            while "hello" not in echoed:
                echoed += (await call(client, "read_output", process_id=pid, wait_s=1))["stdout"]
        assert echoed == "hello\n"
        last = await call(
            client, "write_stdin", process_id=pid, data="bye\n", close_stdin=True, wait_s=10
        )
        last, rest, _ = await until_exited(client, last)
        assert (last["status"], last["exit_code"]) == ("exited", 0)
        assert rest == "bye\n"

    async def test_write_stdin_drives_a_python_repl(self, client):
        reply = await self.run(client, "python3 -u -i -q", keep_stdin_open=True, yield_s=0.2)
        pid = reply["process_id"]
        out = (await call(client, "write_stdin", process_id=pid, data="print(6 * 7)\n"))["stdout"]
        with anyio.fail_after(WAIT):
            while "42" not in out:
                out += (await call(client, "read_output", process_id=pid, wait_s=1))["stdout"]
        last = await call(client, "write_stdin", process_id=pid, data="exit(5)\n", wait_s=10)
        last, _, _ = await until_exited(client, last)
        assert (last["status"], last["exit_code"]) == ("exited", 5)

    async def test_kill_process_leaves_nothing_of_its_tree(self, client):
        reply = await self.run(client, "sleep 51.5 & sleep 52.5; wait", yield_s=0.3)
        killed = await call(client, "kill_process", process_id=reply["process_id"])
        assert killed["status"] == "killed"
        check = await self.run(client, "sleep 0.2; pgrep -f 'slee[p] 5[12].5' || echo none")
        assert check["stdout"].strip() == "none"

    async def test_a_cancelled_call_kills_its_command(self, client):
        started = anyio.Event()

        async def progress(value, total, message):
            started.set()

        async with anyio.create_task_group() as group:

            async def slow() -> None:
                await client.call_tool(
                    "run_command",
                    {"command": "echo started; sleep 53.5", "mode": self.mode, "yield_s": 50},
                    progress_callback=progress,
                )

            group.start_soon(slow)
            with anyio.fail_after(WAIT):
                await started.wait()
            group.cancel_scope.cancel()
        await anyio.sleep(1)
        check = await self.run(client, "pgrep -f 'slee[p] 53.5' || echo none")
        assert check["stdout"].strip() == "none"

    async def test_large_output_is_paged_to_the_end_byte_exact(self, client, big_output):
        command, expected = big_output
        budget = 256 * 1024
        reply = await self.run(client, command, max_output_bytes=budget)
        pages = [reply]
        with anyio.fail_after(300):
            while reply["process_id"]:
                reply = await call(
                    client,
                    "read_output",
                    process_id=reply["process_id"],
                    max_bytes=budget,
                    wait_s=5,
                )
                pages.append(reply)
        for page in pages:
            assert len(page["stdout"].encode()) + len(page["stderr"].encode()) <= budget
            assert page["dropped"] == 0
        assert pages[-1]["status"] == "exited"
        assert not pages[-1]["truncated"]
        joined = "".join(page["stdout"] for page in pages)
        assert joined.encode() == expected

    async def test_explain_command_decides_and_runs_nothing(self, client):
        reply = await call(client, "explain_command", command="sudo touch /explained")
        assert reply["mode"] == "sandbox"
        assert reply["rule"] == "privilege"
        text = (await client.call_tool("explain_command", {"command": "ls"})).content[0].text
        assert text.startswith("auto -> local")

    async def test_files_are_written_read_and_listed_in_the_session(self, client):
        options = {"session_id": "files"}
        await call(client, "run_command", command="true", mode=self.mode, **options)
        body = "".join(f"line {i} ✓\n" for i in range(1, 101))
        wrote = await call(client, "write_file", path="d/notes.txt", content=body, **options)
        assert wrote["bytes_written"] == len(body.encode())
        assert wrote["path"].endswith("/d/notes.txt")
        await call(
            client, "write_file", path="d/notes.txt", content="tail\n", append=True, **options
        )
        read = await call(
            client, "read_file", path="d/notes.txt", offset_line=100, limit_lines=5, **options
        )
        assert (read["content"], read["total_lines"], read["truncated"]) == (
            "line 100 ✓\ntail\n",
            101,
            False,
        )
        listed = await call(client, "list_files", path="d", **options)
        assert [(e["path"], e["type"]) for e in listed["entries"]] == [("notes.txt", "file")]
        missing = await call_error(client, "read_file", path="nope.txt", **options)
        assert "nope.txt" in missing

    async def test_session_info_and_close_session(self, client):
        await self.run(client, "sleep 54.5", session_id="closing", yield_s=0.1)
        info = await call(client, "session_info", session_id="closing")
        assert info["open"]
        assert info["running_processes"] == 1
        assert info["mode"] == self.mode
        closed = await call(client, "close_session", session_id="closing")
        assert (closed["closed"], closed["processes_killed"]) == (True, 1)
        assert not (await call(client, "session_info", session_id="closing"))["open"]
        check = await self.run(client, "pgrep -f 'slee[p] 54.5' || echo none")
        assert check["stdout"].strip() == "none"

    async def test_bad_requests_are_tool_errors_the_model_reads(self, client):
        assert "no process" in await call_error(client, "read_output", process_id="p-nothere")
        await self.run(client, "true", session_id="fixed")
        other = "local" if self.mode != "local" else "sandbox"
        message = await call_error(
            client, "run_command", command="true", session_id="fixed", mode=other
        )
        assert "close it first" in message
