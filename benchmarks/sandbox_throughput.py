"""Output throughput: 100 MB of stdout through a live sandbox session, against the engine's
own ways of reading a command's output from the same container, in one run.

    .venv/bin/python benchmarks/sandbox_throughput.py [--megabytes 100] [--rounds 3]

Rows (MB/s, median of the rounds, alternating):
* ``ours, session``: ``session.run(COMMAND)`` on a live Docker session (the executor's
  frames inside the engine's multiplexed stream; capped in memory, nothing is kept).
* ``docker-py exec_run(stream=True)``: the same command exec'd into the same container.
* ``docker exec`` (CLI): the same, its stdout to /dev/null.
* ``ours, LOCAL``: ``session.run(COMMAND)`` on the host, for scale.
Target (issue "Hardening", item 8): ours at least the faster of the two engine rows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time

import docker
from agent_runner import Runner, Settings

IMAGE = os.environ.get("STIGMER_BENCH_IMAGE", "stigmer/sandbox-base:bookworm")


def command(megabytes: int) -> str:
    return f"yes abcdefghijklmnopqrstuvwxyz | head -c {megabytes * 1_000_000}"


async def ours(session: object, text: str, size: int) -> float:
    started = time.perf_counter()
    result = await session.run(text)  # type: ignore[attr-defined]
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.stderr
    assert result.truncated
    return size / elapsed / 1e6


def docker_py(client: docker.DockerClient, container: str, text: str, size: int) -> float:
    started = time.perf_counter()
    stream = client.containers.get(container).exec_run(["bash", "-c", text], stream=True)
    received = sum(len(chunk) for chunk in stream.output)
    elapsed = time.perf_counter() - started
    assert received == size, received
    return size / elapsed / 1e6


def docker_cli(container: str, text: str, size: int) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["docker", "exec", container, "bash", "-c", text], stdout=subprocess.DEVNULL, check=True
    )
    return size / (time.perf_counter() - started) / 1e6


async def measure(megabytes: int, rounds: int) -> dict[str, list[float]]:
    text, size = command(megabytes), megabytes * 1_000_000
    sandbox = Settings.defaults(mode="sandbox", sandbox_image=IMAGE, auto_pull=False)
    rows: dict[str, list[float]] = {
        "ours, session": [],
        "docker-py exec_run(stream=True)": [],
        "docker exec (CLI)": [],
        "ours, LOCAL": [],
    }
    client = docker.from_env()
    with tempfile.TemporaryDirectory() as workspace:
        os.chmod(workspace, 0o777)
        async with (
            Runner(sandbox) as runner,
            runner.session(cwd=workspace) as session,
            Runner(Settings.defaults()) as local_runner,
            local_runner.session(cwd=workspace) as local,
        ):
            container = (await session.run("true")).sandbox_id or ""
            for warm_up in (True, *([False] * rounds)):
                samples = {
                    "ours, session": await ours(session, text, size),
                    "docker-py exec_run(stream=True)": await asyncio.to_thread(
                        docker_py, client, container, text, size
                    ),
                    "docker exec (CLI)": await asyncio.to_thread(docker_cli, container, text, size),
                    "ours, LOCAL": await ours(local, text, size),
                }
                if not warm_up:
                    for name, value in samples.items():
                        rows[name].append(value)
    client.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("docker") is None:
        raise SystemExit("the docker CLI is needed for its row")
    rows = asyncio.run(measure(args.megabytes, args.rounds))
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()} {IMAGE}")
    print(f"# {args.megabytes} MB of stdout, {args.rounds} rounds")
    print(f"{'row':<34} {'median MB/s':>12} {'min':>8} {'max':>8}")
    for name, samples in rows.items():
        median = statistics.median(samples)
        print(f"{name:<34} {median:>12.0f} {min(samples):>8.0f} {max(samples):>8.0f}")
    ours_rate = statistics.median(rows["ours, session"])
    best_engine = max(
        statistics.median(rows["docker-py exec_run(stream=True)"]),
        statistics.median(rows["docker exec (CLI)"]),
    )
    print(f"ours / faster engine row: {ours_rate / best_engine:.2f} (target >= 1.0)")
    return 0 if ours_rate >= best_engine else 1


if __name__ == "__main__":
    raise SystemExit(main())
