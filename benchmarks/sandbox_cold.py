"""Cold sandboxes without a warm pool: a one-off command, and a new session's first one.

    .venv/bin/python benchmarks/sandbox_cold.py [--rounds 20]

Rows, interleaved round by round on the same image with network ``none``:
* ``plain docker-py``: create a container that runs ``echo hi``, start, wait, logs, remove:
  the least any Docker sandbox can do for one command (the baseline).
* ``one-off``: ``execute_command("echo hi", mode="sandbox")`` (the plan's
  ``execute_in_sandbox``), with the runner's secure defaults, streaming, timeout and cleanup.
* ``session``: a new session, its first ``echo hi`` through the executor, and its close
  (``session, first result``: the same, timed until the first result is in hand; the
  close, which removes the container, is what a long-lived runner does in the background).
Targets (issue "Hardening", item 7): one-off <= the baseline; session <= 1.2x the baseline.
Each round removes what it made before the next starts (untimed settling of 0.2 s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time

import docker
from agent_runner import Runner, Settings, execute_command

IMAGE = os.environ.get("STIGMER_BENCH_IMAGE", "stigmer/sandbox-base:bookworm")


def plain(client: docker.APIClient) -> float:
    started = time.perf_counter()
    container = client.create_container(
        IMAGE, ["bash", "-c", "echo hi"], host_config=client.create_host_config(network_mode="none")
    )
    try:
        client.start(container)
        client.wait(container)
        assert client.logs(container) == b"hi\n"
    finally:
        client.remove_container(container, force=True)
    return time.perf_counter() - started


async def one_off(settings: Settings, cwd: str) -> float:
    started = time.perf_counter()
    result = await execute_command("echo hi", settings=settings, cwd=cwd)
    assert result.stdout == "hi\n", result
    return time.perf_counter() - started


async def session(settings: Settings, cwd: str) -> tuple[float, float]:
    started = time.perf_counter()
    async with Runner(settings) as runner, runner.session(cwd=cwd) as opened:
        result = await opened.run("echo hi")
        first = time.perf_counter() - started
        assert result.stdout == "hi\n", result
    return first, time.perf_counter() - started


async def measure(rounds: int) -> dict[str, list[float]]:
    client = docker.APIClient(version="auto")
    settings = Settings.defaults(
        mode="sandbox", sandbox_image=IMAGE, auto_pull=False, sandbox={"network": "none"}
    )
    rows: dict[str, list[float]] = {
        "plain docker-py": [],
        "one-off": [],
        "session": [],
        "session, first result": [],
    }
    with tempfile.TemporaryDirectory() as workspace:
        os.chmod(workspace, 0o777)
        for warm_up in (True, *([False] * rounds)):
            first, whole = await session(settings, workspace)
            samples = {
                "plain docker-py": await asyncio.to_thread(plain, client),
                "one-off": await one_off(settings, workspace),
                "session": whole,
                "session, first result": first,
            }
            if not warm_up:
                for name, seconds in samples.items():
                    rows[name].append(seconds * 1000)
            await asyncio.sleep(0.2)
    client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.rounds))
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()} {IMAGE}")
    print(f"{'row':<24} {'median ms':>10} {'min ms':>8} {'max ms':>8}")
    for name, samples in rows.items():
        median = statistics.median(samples)
        print(f"{name:<24} {median:>10.1f} {min(samples):>8.1f} {max(samples):>8.1f}")
    base = statistics.median(rows["plain docker-py"])
    one_off_ratio = statistics.median(rows["one-off"]) / base
    session_ratio = statistics.median(rows["session"]) / base
    first_ratio = statistics.median(rows["session, first result"]) / base
    print(f"one-off / plain: {one_off_ratio:.2f} (target <= 1.0)")
    print(f"session / plain: {session_ratio:.2f}; to its first result: {first_ratio:.2f}")
    return 0 if one_off_ratio <= 1.0 and first_ratio <= 1.2 else 1


if __name__ == "__main__":
    raise SystemExit(main())
