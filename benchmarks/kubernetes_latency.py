"""Kubernetes backend latency against the fake apiserver, with the Docker backend beside it.

    .venv/bin/python benchmarks/kubernetes_latency.py [--json results.json] [--quick]

Method
------
* One machine, one run, one image (``stigmer/sandbox-base:bookworm``). The fake apiserver
  (``tests/fakes/kube``) runs in a subprocess of its own (``python -m tests.fakes.kube``),
  so it does not share this process's interpreter lock; each pod is a Docker container
  on the same engine the Docker backend uses.
* Rows (``time.perf_counter`` around the public calls; medians, p90 with 5+ samples):
  ``warm``: ``await session.run("echo hi")`` in an open session, after 5 unmeasured ones,
  the Docker and the Kubernetes sessions interleaved round by round (which goes first
  swapping every round), so drift on the machine hits both alike; ``one exec per
  command``: a new ``pods/exec`` websocket running ``bash -c "echo hi"`` in the same pod,
  read to its exit status (what llm-sandbox's Kubernetes backend does for every command),
  after the warm rounds (each exec leaves the engine work that would slow the next row);
  ``session from the warm pool``: ``session.open()`` with ``pool_size=1`` (claim + exec +
  executor start-up), the pool refilled and running before each round; ``session on a
  cold pod``: the same with no pool (create, schedule, start, exec). Closing is untimed.
* Target (the issue): the Kubernetes warm command within 1.5x of Docker's warm command.

Takes about 2 minutes on 2 CPUs (``--quick``: a few rounds, to try the script).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
IMAGE = "stigmer/sandbox-base:bookworm"
COMMAND = "echo hi"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def summary(samples: list[float]) -> dict[str, Any]:
    ordered = sorted(samples)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if len(ordered) >= 5 else None
    return {"n": len(samples), "median": statistics.median(samples), "p90": p90}


class Fake:
    """The fake apiserver in a subprocess; stopped (and its pods removed) on exit."""

    def __enter__(self) -> Fake:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.kube", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        found: dict[str, str] = {}
        while len(found) < 2:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError("the fake apiserver did not start")
            key, _, value = line.strip().partition(": ")
            found[key] = value
        self.kubeconfig = found["kubeconfig"]
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(120)


def settings(backend: str, kubeconfig: str = "", **kubernetes: Any) -> Any:
    from agent_runner import Settings

    section = {"kubeconfig": kubeconfig, "namespace": "default", "image": IMAGE, "cpu": "1",
               "memory": "512Mi", "network": "unrestricted", **kubernetes}  # fmt: skip
    return Settings.defaults(
        mode="sandbox",
        sandbox_image=IMAGE,
        auto_pull=False,
        sandbox={"backend": backend, "workspace": "none", "kubernetes": section},
    )


async def timed(call: Callable[[], Awaitable[object]]) -> float:
    start = time.perf_counter()
    await call()
    return (time.perf_counter() - start) * 1000


async def run_hi(session: Any) -> None:
    result = await session.run(COMMAND)
    if result.stdout != "hi\n":
        raise RuntimeError(f"expected 'hi', got {result.stdout!r}")


async def exec_once(backend: Any, pod: str) -> None:
    """One exec per command: a websocket per ``echo hi``, read to its exit status."""
    cluster = backend.cluster
    context = await cluster.streams.connect_get_namespaced_pod_exec(
        pod, cluster.namespace, command=["bash", "-c", COMMAND], stdin=False, stdout=True,
        stderr=True, tty=False, _preload_content=False,
        _headers={"sec-websocket-protocol": "v5.channel.k8s.io,v4.channel.k8s.io"},
    )  # fmt: skip
    out, status = b"", None
    async with context as ws:
        async for message in ws:
            data = message.data
            if isinstance(data, bytes) and data[:1] == b"\x01":
                out += data[1:]
            elif isinstance(data, bytes) and data[:1] == b"\x03":
                status = json.loads(data[1:])
    if out != b"hi\n" or not status or status.get("status") != "Success":
        raise RuntimeError(f"exec: {out!r} {status!r}")


async def warm_rows(kubeconfig: str, rounds: int) -> dict[str, list[float]]:
    from agent_runner import ExecutionMode, Runner

    samples: dict[str, list[float]] = {"docker": [], "kubernetes": [], "exec": []}
    async with (
        Runner(settings("docker")) as docker,
        Runner(settings("kubernetes", kubeconfig)) as kube,
    ):
        backend = await kube.backend(ExecutionMode.SANDBOX)
        async with docker.session() as on_docker, kube.session() as on_kube:
            pod = await on_kube.open(ExecutionMode.SANDBOX)
            for _ in range(5):
                await run_hi(on_docker)
                await run_hi(on_kube)
                await exec_once(backend, pod)
            for index in range(rounds):  # interleaved, which goes first swapping each round
                pair = [("docker", on_docker), ("kubernetes", on_kube)][:: 1 if index % 2 else -1]
                for name, session in pair:
                    samples[name].append(await timed(functools.partial(run_hi, session)))
            for _ in range(rounds):  # apart: each leaves an exec behind for the engine to reap
                samples["exec"].append(await timed(lambda: exec_once(backend, pod)))
    return samples


async def session_rows(kubeconfig: str, rounds: int) -> dict[str, list[float]]:
    from agent_runner import ExecutionMode, Runner

    samples: dict[str, list[float]] = {"pool": [], "cold": []}
    workdir = tempfile.mkdtemp(prefix="stigmer-bench-")
    for name, pool_size in (("pool", 1), ("cold", 0)):
        async with Runner(settings("kubernetes", kubeconfig, pool_size=pool_size)) as runner:
            backend = await runner.backend(ExecutionMode.SANDBOX)

            async def refilled(backend: Any = backend, pool_size: int = pool_size) -> None:
                deadline = time.monotonic() + 120
                while pool_size and await backend.pool_level() < pool_size:
                    if time.monotonic() > deadline:
                        raise TimeoutError("the warm pool did not refill")
                    await asyncio.sleep(0.1)

            await backend.warm(workdir)
            for index in range(rounds + 1):
                await refilled()
                session = runner.session(cwd=workdir)
                elapsed = await timed(functools.partial(session.open, ExecutionMode.SANDBOX))
                await run_hi(session)
                await session.close()
                if index:  # the first round is a warm-up
                    samples[name].append(elapsed)
    os.rmdir(workdir)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--session-rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.session_rounds = 10, 2
    started = time.perf_counter()
    with Fake() as fake:
        log(f"fake apiserver up ({fake.kubeconfig}); warm rows, {args.rounds} rounds")
        warm = asyncio.run(warm_rows(fake.kubeconfig, args.rounds))
        log(f"session rows, {args.session_rounds} rounds each")
        sessions = asyncio.run(session_rows(fake.kubeconfig, args.session_rounds))
    rows = {
        "warm, docker (attach stream)": summary(warm["docker"]),
        "warm, kubernetes (one exec stream per session)": summary(warm["kubernetes"]),
        "one exec per command (the llm-sandbox way)": summary(warm["exec"]),
        "session from the warm pool (pool_size=1)": summary(sessions["pool"]),
        "session on a cold pod": summary(sessions["cold"]),
    }
    ratio = (
        rows["warm, kubernetes (one exec stream per session)"]["median"]
        / rows["warm, docker (attach stream)"]["median"]
    )
    print(f"{'row':<50}{'n':>4}{'median ms':>12}{'p90 ms':>10}")
    for name, row in rows.items():
        p90 = f"{row['p90']:.2f}" if row["p90"] is not None else "-"
        print(f"{name:<50}{row['n']:>4}{row['median']:>12.2f}{p90:>10}")
    verdict = "met" if ratio <= 1.5 else "missed"
    print(f"kubernetes warm / docker warm at the median: {ratio:.2f} (target <= 1.5: {verdict})")
    log(f"done in {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": rows, "ratio": ratio, "raw": {**warm, **sessions}})
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
