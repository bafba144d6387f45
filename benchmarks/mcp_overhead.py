"""MCP overhead: ``run_command("echo hi")`` through ``agent-runner mcp`` against the bare
library call, in-process, over stdio and over streamable HTTP, LOCAL and SANDBOX; and
``read_output`` paging throughput.

Every variant keeps its session open (as an agent's would) and they run interleaved,
round-robin in one event loop, so drift on the machine hits them alike. The servers over
stdio and HTTP are real ``python -m agent_runner mcp`` processes on this machine. Target
(docs/performance.md): the MCP layer adds < 2 ms per call over ``Session.run``.

    .venv/bin/python benchmarks/mcp_overhead.py [--rounds 300] [--sandbox-image IMAGE]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from agent_runner import Runner, Settings
from agent_runner.mcp_server import build_server
from mcp import Client, StdioServerParameters

MIB = 1024 * 1024
Call = Callable[[], Awaitable[None]]


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def environment(settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")}
    env["STIGMER_CONFIG"] = os.path.join(tempfile.mkdtemp(), "config.yaml")
    env.update(settings)
    return env


def command(workspace: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "agent_runner", "mcp", "--workspace", workspace, *args]


@asynccontextmanager
async def http_url(workspace: str, env: dict[str, str]) -> AsyncIterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = command(workspace, "--transport", "http", "--port", str(port))
    process = await asyncio.create_subprocess_exec(
        *args, env=env, stdin=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    assert process.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(process.stderr.readline(), 60)).decode()
            if not line:
                raise RuntimeError("the HTTP server exited")
            if found := re.search(r"serving (http://\S+)", line):
                break
        yield found.group(1)
    finally:
        process.terminate()
        await process.wait()


def floor_call(client: Client) -> Call:
    """The transport's own round trip: a tool that runs nothing (session_info)."""

    async def call() -> None:
        result = await client.call_tool("session_info", {})
        assert not result.is_error

    return call


def run_call(client: Client, arguments: dict[str, Any]) -> Call:
    async def call() -> None:
        result = await client.call_tool("run_command", arguments)
        assert result.structured_content is not None
        if result.structured_content["stdout"] != "hi\n":
            raise RuntimeError(f"unexpected reply {result.structured_content}")

    return call


async def variants(stack: AsyncExitStack, mode: str, settings: Settings, env: dict[str, str]):
    """The bare library call and the MCP paths for ``mode``, each ready to call."""
    workspace = tempfile.mkdtemp()
    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    runner = await stack.enter_async_context(Runner(settings))
    session = await stack.enter_async_context(runner.session(mode=mode, cwd=workspace))

    async def library() -> None:
        result = await session.run("echo hi")
        assert result.stdout == "hi\n"

    async def library_start() -> None:
        process = await session.start("echo hi")
        await process.wait()
        assert process.read().data == b"hi\n"
        session.discard(process.id)

    calls: dict[str, Call] = {
        f"library Session.run ({mode})": library,
        f"library Session.start+wait ({mode})": library_start,
    }
    arguments = {"command": "echo hi", "mode": mode}
    server = build_server(settings, workspace)
    for protocol in ("2026-07-28", "legacy"):
        client = await stack.enter_async_context(Client(server, mode=protocol))
        calls[f"in-process {protocol} ({mode})"] = run_call(client, arguments)
        calls[f"  floor: in-process {protocol} session_info"] = floor_call(client)
    stdio = StdioServerParameters(command=sys.executable, args=command(workspace)[1:], env=env)
    for protocol in ("2026-07-28", "legacy"):
        client = await stack.enter_async_context(Client(stdio, mode=protocol))
        calls[f"stdio {protocol} ({mode})"] = run_call(client, arguments)
        calls[f"  floor: stdio {protocol} session_info"] = floor_call(client)
    url = await stack.enter_async_context(http_url(workspace, env))
    for protocol in ("2026-07-28", "legacy"):
        client = await stack.enter_async_context(Client(url, mode=protocol))
        calls[f"http {protocol} ({mode})"] = run_call(client, arguments)
        calls[f"  floor: http {protocol} session_info"] = floor_call(client)
    for call in calls.values():  # open every session (and sandbox) before timing
        await call()
    return calls


async def interleave(calls: dict[str, Call], rounds: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(min(20, rounds)):
        for call in calls.values():
            await call()
    for _ in range(rounds):
        for name, call in calls.items():
            started = time.perf_counter()
            await call()
            samples[name].append((time.perf_counter() - started) * 1000)
    return samples


async def paging(client: Client, size: int, page: int, mode: str) -> float:
    """MB/s reading ``size`` bytes of finished output by cursor, ``page`` bytes a reply."""
    reply = await client.call_tool(
        "run_command",
        {"command": f"head -c {size} /dev/zero | tr '\\0' x", "mode": mode, "max_output_bytes": 16},
    )
    if reply.is_error or reply.structured_content is None:
        raise RuntimeError(f"run_command failed: {reply.content}")
    process_id = reply.structured_content["process_id"]
    got = 0
    started = time.perf_counter()
    while process_id:
        reply = await client.call_tool(
            "read_output", {"process_id": process_id, "max_bytes": page, "wait_s": 5}
        )
        content = reply.structured_content or {}
        got += len(content["stdout"])
        process_id = content["process_id"]
    elapsed = time.perf_counter() - started
    if got < size - 16:
        raise RuntimeError(f"paged {got} of {size} bytes")
    return size / MIB / elapsed


async def throughput(settings: Settings, env: dict[str, str], mode: str) -> dict[str, float]:
    rows: dict[str, float] = {}
    workspace = tempfile.mkdtemp()
    if os.getuid() == 0:
        os.chown(workspace, 1000, 1000)
    stdio = StdioServerParameters(command=sys.executable, args=command(workspace)[1:], env=env)
    async with AsyncExitStack() as stack:
        clients = {
            "in-process": await stack.enter_async_context(
                Client(build_server(settings, workspace), mode="2026-07-28")
            ),
            "stdio": await stack.enter_async_context(Client(stdio, mode="2026-07-28")),
            "http": await stack.enter_async_context(
                Client(await stack.enter_async_context(http_url(workspace, env)))
            ),
        }
        for name, client in clients.items():
            for page in (32 * 1024, 1024 * 1024):
                label = f"read_output {name}, {page // 1024} KiB pages ({mode})"
                rows[label] = await paging(client, 64 * MIB, page, mode)
    return rows


async def measure(args: argparse.Namespace) -> None:
    plan: list[tuple[str, dict[str, str]]] = [("local", {})]
    if args.sandbox_image:
        plan.append(
            (
                "sandbox",
                {"sandbox_image": args.sandbox_image, "auto_pull": "false"},
            )
        )
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}")
    for mode, extra in plan:
        values: dict[str, Any] = {"max_output_bytes": 128 * MIB, **extra}
        settings = Settings.defaults(**values)
        env = environment(
            {
                "STIGMER_EXECUTION_MAX_OUTPUT_BYTES": str(128 * MIB),
                **({"STIGMER_SANDBOX_IMAGE": args.sandbox_image} if mode == "sandbox" else {}),
                **({"STIGMER_SANDBOX_AUTO_PULL": "false"} if mode == "sandbox" else {}),
            }
        )
        async with AsyncExitStack() as stack:
            calls = await variants(stack, mode, settings, env)
            samples = await interleave(calls, args.rounds)
        base = statistics.median(samples[f"library Session.run ({mode})"])
        title = 'run_command("echo hi") round trip, ms'
        print(f"\n{title:<44} {'median':>8} {'p90':>8} {'+ms':>7}")
        for name, times in samples.items():
            median = statistics.median(times)
            print(f"{name:<44} {median:>8.3f} {percentile(times, 0.9):>8.3f} {median - base:>7.3f}")
        print(f"\n{'paging 64 MiB of finished output':<44} {'MB/s':>8}")
        for name, rate in (await throughput(settings, env, mode)).items():
            print(f"{name:<44} {rate:>8.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--sandbox-image", help="also measure SANDBOX on this image")
    asyncio.run(measure(parser.parse_args()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
