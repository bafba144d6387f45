"""Daytona: our shell against the SDK's own calls, in time and in HTTP requests per command.

    .venv/bin/python benchmarks/daytona_latency.py [--rounds 30] [--cold-rounds 5] [--json out.json]

Method
------
* Against the local Daytona emulator (``tests/fakes/daytona``; the real SDK, each sandbox a
  real container), so the numbers say what our layer adds on top of the SDK and the
  daemon's own mechanism, not what the cloud's network costs: every request here is
  local, where the cloud has tens of milliseconds per request. That is why the request
  count is reported beside the time: on real Daytona it is what dominates.
* Warm rows: ``echo hi`` in a sandbox that already ran commands, round-robin over the
  contenders (so drift hits all alike), after 5 unmeasured rounds each:
  - SDK ``process.exec``: one request, stdout and stderr **combined**, and a timeout the
    daemon enforces by throwing the output away (the floor, not the same result);
  - SDK ``execute_session_command`` (sync): stdout and stderr apart in one request, but a
    timeout only bounds the HTTP call (the command goes on running);
  - SDK streamed: ``execute_session_command(run_async=True)`` + the log websocket +
    ``get_session_command`` for the exit code, as the SDK documents it;
  - ours, nobody listening (``session.run``) and with a listener (streamed), both with a
    timeout that kills the tree.
* Requests: counted by the emulator for each row (all of them, toolbox and API), divided
  by the commands; a timeout that fires costs one more (the kill), not counted here.
* Cold: from nothing to the first output of ``echo hi``: SDK ``create`` + ``process.exec``
  against our ``Runner.run`` (create, session, setup, command), deletion untimed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from statistics import mean
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

from tests.fakes.daytona import DaytonaEmulator, EmulatorConfig  # noqa: E402

from agent_runner import Runner, Settings  # noqa: E402
from daytona import (  # noqa: E402
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    DaytonaConfig,
    SessionExecuteRequest,
)

IMAGE = "stigmer/sandbox-base:bookworm"
SNAPSHOT = "bench-dev-tools"
Call = Callable[[], Awaitable[str]]


def summary(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]


async def sdk_calls(sandbox: Any) -> dict[str, Call]:
    process = sandbox.process
    session = f"bench-{uuid.uuid4().hex[:8]}"
    await process.create_session(session)

    async def exec_combined() -> str:
        return str((await process.exec("echo hi", timeout=30)).result)

    async def session_sync() -> str:
        answer = await process.execute_session_command(
            session, SessionExecuteRequest(command="echo hi"), timeout=30
        )
        return str(answer.stdout)

    async def session_streamed() -> str:
        started = await process.execute_session_command(
            session, SessionExecuteRequest(command="echo hi", run_async=True)
        )
        out: list[str] = []
        await process.get_session_command_logs_async(
            session, started.cmd_id, out.append, lambda text: None
        )
        await process.get_session_command(session, started.cmd_id)
        return "".join(out)

    return {
        "SDK process.exec (combined output)": exec_combined,
        "SDK session command, sync": session_sync,
        "SDK session command, async + log websocket + exit code": session_streamed,
    }


def our_calls(session: Any) -> dict[str, Call]:
    async def quiet() -> str:
        return str((await session.run("echo hi", timeout=30)).stdout)

    async def streamed() -> str:
        return str((await session.run("echo hi", timeout=30, on_output=lambda c: None)).stdout)

    return {"ours, nobody listening": quiet, "ours, streamed to a listener": streamed}


async def warm(emulator: DaytonaEmulator, rounds: int) -> list[dict[str, Any]]:
    settings = bench_settings(emulator)
    config = DaytonaConfig(api_key=emulator.api_key, api_url=emulator.api_url)
    async with AsyncDaytona(config) as client, Runner(settings) as runner:
        sandbox = await client.create(CreateSandboxFromSnapshotParams(snapshot=SNAPSHOT))
        try:
            async with runner.session() as session:
                await session.run("true")
                calls = {**await sdk_calls(sandbox), **our_calls(session)}
                samples: dict[str, list[float]] = {name: [] for name in calls}
                requests: dict[str, int] = dict.fromkeys(calls, 0)
                for name, call in calls.items():
                    for _ in range(5):
                        check(await call(), name)
                for _ in range(rounds):
                    for name, call in calls.items():
                        emulator.reset_requests()
                        start = time.perf_counter()
                        check(await call(), name)
                        samples[name].append((time.perf_counter() - start) * 1000)
                        requests[name] += emulator.request_count("*")
        finally:
            await sandbox.delete(wait=True)
    return [row("warm echo hi", name, samples[name], requests[name] / rounds) for name in calls]


async def cold(emulator: DaytonaEmulator, rounds: int) -> list[dict[str, Any]]:
    config = DaytonaConfig(api_key=emulator.api_key, api_url=emulator.api_url)
    sdk: list[float] = []
    ours: list[float] = []
    sdk_requests: list[int] = []
    ours_requests: list[int] = []
    async with AsyncDaytona(config) as client, Runner(bench_settings(emulator)) as runner:
        await runner.run("true")  # the client's first connection, untimed
        for _ in range(rounds + 1):  # the first round of each is a warm-up
            emulator.reset_requests()
            start = time.perf_counter()
            sandbox = await client.create(CreateSandboxFromSnapshotParams(snapshot=SNAPSHOT))
            check(str((await sandbox.process.exec("echo hi")).result), "SDK cold")
            sdk.append((time.perf_counter() - start) * 1000)
            sdk_requests.append(emulator.request_count("*"))
            await sandbox.delete(wait=True)
            emulator.reset_requests()
            elapsed, requests = await our_first_output(runner, emulator)
            ours.append(elapsed)
            ours_requests.append(requests)
    return [
        row("create to first output", "SDK create + process.exec", sdk[1:], mean(sdk_requests[1:])),
        row("create to first output", "ours, Runner.run", ours[1:], mean(ours_requests[1:])),
    ]


async def our_first_output(runner: Runner, emulator: DaytonaEmulator) -> tuple[float, int]:
    """ms and requests from asking to the first chunk of output; then, untimed, until the
    sandbox is deleted (so its deletion does not land in the next round)."""
    first: list[tuple[float, int]] = []

    def seen(_chunk: object) -> None:
        if not first:
            first.append((time.perf_counter(), emulator.request_count("*")))

    start = time.perf_counter()
    result = await runner.run("echo hi", on_output=seen)
    check(result.stdout, "ours cold")
    # Polled: the emulator's state has no event to wait on from this loop.
    while emulator.sandbox_state(result.sandbox_id or "") not in (None, "destroyed"):  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return (first[0][0] - start) * 1000, first[0][1]


def bench_settings(emulator: DaytonaEmulator) -> Settings:
    daytona = {"api_key": emulator.api_key, "api_url": emulator.api_url, "snapshot": SNAPSHOT}
    return Settings.defaults(
        mode="sandbox", sandbox={"backend": "daytona", "workspace": "none", "daytona": daytona}
    )


def check(text: str, what: str) -> None:
    if text.strip() != "hi":
        raise RuntimeError(f"{what}: expected 'hi', got {text!r}")


def row(kind: str, contender: str, samples: list[float], requests: float) -> dict[str, Any]:
    median, p90 = summary(samples)
    return {
        "row": kind,
        "contender": contender,
        "n": len(samples),
        "median_ms": round(median, 2),
        "p90_ms": round(p90, 2),
        "requests": round(requests, 2),
    }


def render(rows: list[dict[str, Any]]) -> str:
    lines = ["| row | contender | median | p90 | HTTP requests |", "|---|---|---:|---:|---:|"]
    for r in rows:
        lines.append(
            f"| {r['row']} | {r['contender']} | {r['median_ms']:.1f} ms | {r['p90_ms']:.1f} ms "
            f"| {r['requests']:g} |"
        )
    return "\n".join(lines)


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    config = EmulatorConfig(snapshots={SNAPSHOT: args.image})
    with DaytonaEmulator(config) as emulator:
        rows = await warm(emulator, args.rounds)
        rows += await cold(emulator, args.cold_rounds)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=IMAGE, help="the image behind the snapshot")
    parser.add_argument("--rounds", type=int, default=30, help="warm rounds per contender")
    parser.add_argument("--cold-rounds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(measure(args))
    print(render(rows))
    print(f"\n{time.strftime('%Y-%m-%d %H:%M')}, {time.perf_counter() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
