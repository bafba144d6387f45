"""Sandbox command latency: ours against raw docker-py, llm-sandbox, SWE-ReX and epicbox.

    .venv/bin/python benchmarks/sandbox_latency.py [--json results.json] [--quick]

Method
------
* Same image, same machine, one run. Every contender starts its sandboxes from the same
  local image (default ``stigmer/sandbox-base:bookworm`` from ``scripts/build-base-image.sh``,
  run here when the tag is missing). SWE-ReX needs its server inside the sandbox, so it gets
  a derived image (``benchmarks/peers/swerex.Dockerfile``: that image plus a venv holding the
  same swe-rex version as the client), built here when missing or stale.
* Peers run in a throwaway venv (``~/.cache/stigmer-bench/venv`` or ``--peer-venv``), created
  and cached on first use, each in a subprocess of that venv running this same file with
  ``--worker NAME``; their dependencies never touch the project venv. Ours runs in the
  project's interpreter. Contenders run one after the other, never at the same time.
* Rows (all timed with ``time.perf_counter`` around the library's own public calls):
  ``warm``: one ``echo hi`` in an already-started sandbox, after a first command;
  ``20 sequential``: 20 ``echo hi`` in an already-started sandbox, total;
  ``cold``: new sandbox + ``echo hi`` + close/remove, total;
  ``8 concurrent``: 8 new sandboxes at once; per round, the time until the slowest of the 8
  has the output of ``echo hi`` (sandboxes are closed afterwards, untimed);
  ``memory``: growth of the runner's RSS (the benchmark process and its children, such as
  docker CLI clients a library keeps running) per open idle session, over ``--sessions``
  (10) sessions that each ran one command; the sandboxes' own memory is not counted.
  Medians, plus p90 when a row has at least 5 samples.
* Warm-up: warm rows run 5 unmeasured commands first; cold rows one unmeasured round
  (first container of a run, lazily created clients), except llm-sandbox's, whose rounds
  take 10 s and whose warm rows already warmed its client and image; concurrent rows come
  after the same contender's cold rows.
* Interleaving where practical: variants that share a process alternate round by round
  (docker-py cold on bridge vs. network none; SWE-ReX ``execute`` vs. its bash session).
* Settling: cold and concurrent rounds are ``--settle`` s apart, so one round's cleanup
  does not land in the next. With a warm pool (ours), the next round waits until the pool
  has refilled, which measures the pool in the regime it is built for (sessions arriving
  slower than it refills) and says so in the row.
* Cleanup: every container carries the label ``stigmer.bench=<run id>`` where the library
  lets us set labels (docker-py, llm-sandbox, SWE-ReX); epicbox names its containers
  ``epicbox-*``; ours are closed by the runner and swept by the labels of the backend. A
  sweep removes whatever is left when the run ends, errors and Ctrl-C included.
* A contender (or single row) that fails is reported as skipped with the reason, so the
  others are still measured. A ``host bash`` row (plain subprocess) gives the floor.

Peer quirks, and what this script does about them
-------------------------------------------------
* llm-sandbox has no switch to forbid pulls; it only pulls when ``images.get`` fails, and
  the image is local. Its ``close()`` stops the container before removing it, and the
  image's PID 1 (bash with a tty) ignores SIGTERM, so every close waits Docker's 10 s grace:
  that is in its cold row, as it is what a user gets; untimed clean-ups remove the
  container first to save the wait.
* SWE-ReX: ``pull="never"``; its client talks to 127.0.0.1. ``DockerDeployment.start``
  polls with a blocking ``time.sleep`` against 0.15 s probe timeouts, so deployments
  started together on one event loop starve each other and never come up; its concurrent
  row gives each deployment a thread and an event loop.
* epicbox 1.1.0 passes urllib3 1.x's ``method_whitelist``; a small ``Retry`` subclass maps
  it to ``allowed_methods`` before epicbox is imported.

The code shared by the driver and the peer workers (timing loops, rows and their
statistics, memory, the worker protocol, clean-up, the report) is ``benchmarks/harness/``.

Takes about 4-5 minutes with the defaults on 2 CPUs (``--quick`` for a smoke test).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

# Run as a script, this file's directory comes first on sys.path, in the project venv and
# in the peer venv alike (workers are started with this file's absolute path).
from harness.cleanup import docker_client, sweep
from harness.config import COMMAND, LABEL, Config, log, package_version
from harness.memory import memory_measurement, process_tree_rss
from harness.report import render
from harness.results import Measured, Measurement, Results, describe
from harness.timing import (
    arepeat,
    check_output,
    interleave,
    ms_since,
    repeat,
    repeat_rounds,
    threaded_first_output,
)
from harness.workers import run_worker, worker_main

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_IMAGE = "stigmer/sandbox-base:bookworm"
SWEREX_DOCKERFILE = HERE / "peers" / "swerex.Dockerfile"
DEFAULT_PEER_VENV = Path.home() / ".cache" / "stigmer-bench" / "venv"
PEER_PACKAGES = ["llm-sandbox[docker]", "swe-rex", "aiohttp", "epicbox", "docker"]
PEERS = ("docker-py", "epicbox", "swe-rex", "llm-sandbox")
SCRIPT = Path(__file__).resolve()
# --- peer: raw docker-py -----------------------------------------------------------------


def peer_docker_py(cfg: Config, results: Results) -> dict[str, str]:
    import docker

    client = docker.from_env()

    def start(network: str | None = None) -> Any:
        extra = {"network_mode": network} if network else {}
        return client.containers.run(
            cfg.image, "sleep infinity", detach=True, labels=cfg.labels, **extra
        )

    def exec_hi(container: Any) -> None:
        result = container.exec_run(["bash", "-c", COMMAND])
        check_output(result.output, "docker-py exec_run")

    def cold(network: str | None = None) -> None:
        container = start(network)
        try:
            exec_hi(container)
        finally:
            container.remove(force=True)

    def first_output(t0: float) -> tuple[float, Callable[[], object]]:
        container = start()
        exec_hi(container)
        return ms_since(t0), lambda: container.remove(force=True)

    with results.phase(("warm", "20 sequential"), ("docker-py exec_run",)):
        container = start()
        try:
            results.attempt(
                "warm",
                "docker-py exec_run",
                lambda: repeat(lambda: exec_hi(container), cfg.rounds, warmup=5),
                'exec_run(["bash", "-c", "echo hi"]) on a running container',
            )
            results.attempt(
                "20 sequential",
                "docker-py exec_run",
                lambda: repeat(lambda: [exec_hi(container) for _ in range(20)], cfg.seq_rounds),
            )
        finally:
            container.remove(force=True)
    results.attempt_group(
        "cold",
        {
            "docker-py run+exec+remove": 'containers.run("sleep infinity") + exec_run + '
            "remove(force=True); interleaved with network none",
            "docker-py run+exec+remove, network none": 'network_mode="none"',
        },
        lambda: interleave(
            {
                "docker-py run+exec+remove": cold,
                "docker-py run+exec+remove, network none": lambda: cold("none"),
            },
            cfg.cold_rounds,
            warmup=1,
            settle=cfg.settle,
        ),
    )
    results.attempt(
        "8 concurrent",
        "docker-py run+exec",
        lambda: repeat_rounds(
            lambda: threaded_first_output(first_output, cfg.concurrency),
            cfg.concurrent_rounds,
            cfg.settle,
        ),
        f"{cfg.concurrency} threads, one client; time to exec_run's output",
    )
    return {"docker": package_version("docker")}


# --- peer: llm-sandbox -------------------------------------------------------------------


def peer_llm_sandbox(cfg: Config, results: Results) -> dict[str, str]:
    from llm_sandbox import SandboxSession

    # The image is local, so its ``images.get`` finds it and nothing is pulled (it has no
    # option to forbid pulls). Defaults otherwise: its environment set-up (a venv with an
    # upgraded pip in every new sandbox) runs, but fails fast here, as the image has no
    # ``python`` command and no venv module; its exit codes are not checked.
    def session() -> Any:
        labels = {"labels": cfg.labels}
        return SandboxSession(backend="docker", image=cfg.image, runtime_configs=labels)

    def run_hi(sandbox: Any) -> None:
        result = sandbox.execute_command(COMMAND)
        check_output(result.stdout, "llm-sandbox execute_command")

    def cold() -> None:
        with session() as sandbox:
            run_hi(sandbox)

    def discard(sandbox: Any) -> None:
        """Untimed clean-up: remove the container first, so close() skips its 10 s stop."""
        with contextlib.suppress(Exception):
            sandbox.container.remove(force=True)
        sandbox.close()

    def first_output(t0: float) -> tuple[float, Callable[[], object]]:
        sandbox = session()
        sandbox.open()
        try:
            run_hi(sandbox)
        except Exception:
            discard(sandbox)
            raise
        return ms_since(t0), lambda: discard(sandbox)

    def memory() -> Measurement:
        gc.collect()
        before = process_tree_rss(os.getpid())
        opened = []
        try:
            for _ in range(cfg.sessions):
                sandbox = session()
                opened.append(sandbox)
                sandbox.open()
                run_hi(sandbox)
            gc.collect()
            after = process_tree_rss(os.getpid())
        finally:
            with ThreadPoolExecutor(max_workers=len(opened) or 1) as pool:
                list(pool.map(discard, opened))
        return memory_measurement(before, after, cfg.sessions)

    with results.phase(("warm", "20 sequential"), ("llm-sandbox execute_command",)):
        sandbox = session()
        sandbox.open()
        try:
            results.attempt(
                "warm",
                "llm-sandbox execute_command",
                lambda: repeat(lambda: run_hi(sandbox), cfg.rounds, warmup=5),
                'execute_command("echo hi"): exec_run of the split command, no shell',
            )
            results.attempt(
                "20 sequential",
                "llm-sandbox execute_command",
                lambda: repeat(lambda: [run_hi(sandbox) for _ in range(20)], cfg.seq_rounds),
            )
        finally:
            discard(sandbox)
    # The warm rows above already started a container from the image with this client, so
    # the slow cold row (each close() waits out a 10 s stop) goes without a warm-up round.
    results.attempt(
        "cold",
        "llm-sandbox",
        lambda: repeat(cold, cfg.slow_cold_rounds, settle=cfg.settle),
        "SandboxSession(image=...) defaults: open + command + close(); close() stops the "
        "container, and PID 1 (the image's bash, with a tty) ignores SIGTERM, so docker "
        "waits out its 10 s grace",
    )
    results.attempt(
        "8 concurrent",
        "llm-sandbox",
        lambda: repeat_rounds(
            lambda: threaded_first_output(first_output, cfg.concurrency),
            cfg.concurrent_rounds,
            cfg.settle,
        ),
        f"{cfg.concurrency} threads, a session each",
    )
    results.attempt("memory", "llm-sandbox", memory, "a docker client per session")
    return {"llm-sandbox": package_version("llm-sandbox")}


# --- peer: SWE-ReX -----------------------------------------------------------------------


def peer_swerex(cfg: Config, results: Results) -> dict[str, str]:
    asyncio.run(_swerex(cfg, results))
    return {"swe-rex": package_version("swe-rex")}


async def _swerex(cfg: Config, results: Results) -> None:
    import logging

    from swerex.deployment.docker import DockerDeployment
    from swerex.runtime.abstract import BashAction, Command, CreateBashSessionRequest

    quiet = logging.getLogger("bench.swerex")
    quiet.setLevel(logging.WARNING)

    # pull="never": the derived image is local and must not be looked up in a registry.
    # The client talks to 127.0.0.1 (RemoteRuntimeConfig's default host): loopback.
    def deployment() -> Any:
        return DockerDeployment(
            image=cfg.swerex_image,
            pull="never",
            docker_args=["--label", f"{LABEL}={cfg.run_id}"],
            startup_timeout=60,
            logger=quiet,
        )

    async def execute(d: Any) -> None:
        response = await d.runtime.execute(Command(command=COMMAND, shell=True))
        check_output(response.stdout, "SWE-ReX execute")

    async def in_session(d: Any) -> None:
        observation = await d.runtime.run_in_session(BashAction(command=COMMAND, check="raise"))
        check_output(observation.output, "SWE-ReX run_in_session")

    async def started() -> Any:
        d = deployment()
        try:
            await d.start()
        except BaseException:
            await d.stop()
            raise
        return d

    async def cold() -> None:
        d = await started()
        try:
            await execute(d)
        finally:
            await d.stop()

    # Not asyncio.gather: DockerDeployment.start polls with a blocking time.sleep(0.25)
    # while each liveness probe has 0.15 s, so deployments started together on one event
    # loop starve each other's probes and never come up. A thread (and loop) each works.
    def start_one(t0: float) -> tuple[float, Callable[[], object]]:
        async def go() -> tuple[float, Any]:
            d = await started()
            try:
                await execute(d)
            except BaseException:
                await d.stop()
                raise
            return ms_since(t0), d

        elapsed, d = asyncio.run(go())
        return elapsed, lambda: asyncio.run(d.stop())

    def concurrent() -> list[float]:
        return repeat_rounds(
            lambda: threaded_first_output(start_one, cfg.concurrency),
            cfg.concurrent_rounds,
            cfg.settle,
        )

    async def memory() -> Measurement:
        gc.collect()
        before = process_tree_rss(os.getpid())
        opened: list[Any] = []
        try:
            for _ in range(cfg.sessions):
                d = await started()
                opened.append(d)
                await execute(d)
            gc.collect()
            after = process_tree_rss(os.getpid())
        finally:
            await asyncio.gather(*(d.stop() for d in opened), return_exceptions=True)
        return memory_measurement(before, after, cfg.sessions)

    with results.phase(("warm", "20 sequential"), ("SWE-ReX execute", "SWE-ReX bash session")):
        d = await started()
        try:
            await d.runtime.create_session(CreateBashSessionRequest())
            await execute(d)
            await in_session(d)

            async def warm() -> dict[str, Measured]:
                pairs = {"execute": execute, "session": in_session}
                samples: dict[str, list[float]] = {name: [] for name in pairs}
                for _ in range(5):
                    for call in pairs.values():
                        await call(d)
                for _ in range(cfg.rounds):
                    for name, call in pairs.items():
                        start = time.perf_counter()
                        await call(d)
                        samples[name].append(ms_since(start))
                return {
                    "SWE-ReX execute": samples["execute"],
                    "SWE-ReX bash session": samples["session"],
                }

            async def sequential() -> dict[str, Measured]:
                samples: dict[str, list[float]] = {"execute": [], "session": []}
                for _ in range(cfg.seq_rounds):
                    for name, call in (("execute", execute), ("session", in_session)):
                        start = time.perf_counter()
                        for _ in range(20):
                            await call(d)
                        samples[name].append(ms_since(start))
                return {
                    "SWE-ReX execute": samples["execute"],
                    "SWE-ReX bash session": samples["session"],
                }

            notes = {
                "SWE-ReX execute": "runtime.execute(Command(shell=True)) over HTTP to 127.0.0.1; "
                "interleaved with the bash session",
                "SWE-ReX bash session": "runtime.run_in_session(BashAction(...)): a "
                "pexpect-driven bash that keeps state",
            }
            await results.attempt_group_async("warm", notes, warm)
            no_notes = dict.fromkeys(notes, "")
            await results.attempt_group_async("20 sequential", no_notes, sequential)
        finally:
            await d.stop()
    await results.attempt_async(
        "cold",
        "SWE-ReX",
        lambda: arepeat(cold, cfg.cold_rounds, warmup=1, settle=cfg.settle),
        'DockerDeployment(pull="never") start + execute + stop',
    )
    await results.attempt_async(
        "8 concurrent",
        "SWE-ReX",
        lambda: asyncio.to_thread(concurrent),
        f"{cfg.concurrency} threads, an event loop and a deployment each",
    )
    await results.attempt_async(
        "memory", "SWE-ReX", memory, "a `docker run` client process per deployment"
    )


# --- peer: epicbox -----------------------------------------------------------------------


def install_retry_shim() -> None:
    """epicbox 1.1.0 passes ``method_whitelist``, which urllib3 2 renamed ``allowed_methods``."""
    import urllib3.util.retry as retry_module

    if "method_whitelist" in retry_module.Retry.__init__.__code__.co_varnames:
        return

    class Retry(retry_module.Retry):
        def __init__(self, *args: Any, method_whitelist: Any = None, **kwargs: Any) -> None:
            if method_whitelist is not None:
                kwargs.setdefault("allowed_methods", method_whitelist)
            super().__init__(*args, **kwargs)

    retry_module.Retry = Retry  # type: ignore[misc]


def peer_epicbox(cfg: Config, results: Results) -> dict[str, str]:
    install_retry_shim()
    import epicbox

    epicbox.configure(profiles=[epicbox.Profile("bench", cfg.image)])

    def run_hi() -> None:
        result = epicbox.run("bench", COMMAND)
        check_output(result["stdout"], "epicbox.run")

    def first_output(t0: float) -> tuple[float, Callable[[], object]]:
        run_hi()
        return ms_since(t0), lambda: None

    results.attempt(
        "cold",
        "epicbox.run",
        lambda: repeat(run_hi, cfg.cold_rounds, warmup=1, settle=cfg.settle),
        "one container per command (create, start, wait, remove), network disabled",
    )
    results.attempt(
        "8 concurrent",
        "epicbox.run",
        lambda: repeat_rounds(
            lambda: threaded_first_output(first_output, cfg.concurrency),
            cfg.concurrent_rounds,
            cfg.settle,
        ),
        f"{cfg.concurrency} threads each running epicbox.run (includes its removal)",
    )
    return {"epicbox": package_version("epicbox"), "urllib3": package_version("urllib3")}


PEER_FUNCTIONS: dict[str, Callable[[Config, Results], dict[str, str]]] = {
    "docker-py": peer_docker_py,
    "llm-sandbox": peer_llm_sandbox,
    "swe-rex": peer_swerex,
    "epicbox": peer_epicbox,
}


# --- host baseline -----------------------------------------------------------------------


def measure_host(cfg: Config, results: Results) -> None:
    def run_hi() -> None:
        done = subprocess.run(["bash", "-c", COMMAND], capture_output=True, check=True)
        check_output(done.stdout, "host bash")

    results.attempt(
        "warm",
        "host bash",
        lambda: repeat(run_hi, cfg.rounds, warmup=5),
        'subprocess.run(["bash", "-c", "echo hi"]), no sandbox: the floor',
    )
    results.attempt(
        "20 sequential",
        "host bash",
        lambda: repeat(lambda: [run_hi() for _ in range(20)], cfg.seq_rounds),
    )


# --- ours --------------------------------------------------------------------------------


class PoolWatch:
    """Tells when a runner's warm pool is full again (``DockerBackend.pool_level``)."""

    def __init__(self, runner: Any) -> None:
        self.runner = runner

    async def wait(self, size: int, timeout: float = 60.0) -> None:
        from agent_runner import ExecutionMode

        backend = await self.runner.backend(ExecutionMode.SANDBOX)
        deadline = time.monotonic() + timeout
        while backend.pool_level < size:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the pool did not refill to {size} within {timeout:g} s")
            await asyncio.sleep(0.05)


async def measure_ours(cfg: Config, results: Results) -> dict[str, str]:
    from agent_runner import Runner, Settings, __version__

    def runner(pool_size: int) -> Any:
        settings = Settings(
            mode="sandbox",
            sandbox_image=cfg.image,
            auto_pull=False,
            sandbox={"pool_size": pool_size, "network": "bridge"},
        )
        return Runner(settings)

    async def run_hi(session: Any, on_output: Any = None) -> None:
        result = await session.run(COMMAND, on_output=on_output)
        check_output(result.stdout, "ours session.run")

    async def cold(r: Any) -> None:
        async with r.session(cwd=cfg.workdir) as session:
            await run_hi(session)

    async def concurrent_round(r: Any) -> float:
        t0 = time.perf_counter()
        sessions: list[Any] = []

        async def one() -> float:
            first: list[float] = []

            def on_output(_chunk: object) -> None:
                if not first:
                    first.append(ms_since(t0))

            session = r.session(cwd=cfg.workdir)
            sessions.append(session)
            await run_hi(session, on_output)
            return first[0] if first else ms_since(t0)

        try:
            times = await asyncio.gather(*(one() for _ in range(cfg.concurrency)))
        finally:
            await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        return max(times)

    @contextlib.asynccontextmanager
    async def opened(pool_size: int) -> Any:
        r = runner(pool_size)
        try:
            yield r
        finally:
            await r.close()

    async def twenty(session: Any) -> None:
        for _ in range(20):
            await run_hi(session)

    async def sequential_rows() -> None:
        with results.phase(("warm", "20 sequential"), ("ours",)):
            async with opened(0) as r, r.session(cwd=cfg.workdir) as session:
                await run_hi(session)
                await results.attempt_async(
                    "warm",
                    "ours",
                    lambda: arepeat(lambda: run_hi(session), cfg.rounds, warmup=5),
                    'await session.run("echo hi") in an open session',
                )
                await results.attempt_async(
                    "20 sequential",
                    "ours",
                    lambda: arepeat(lambda: twenty(session), cfg.seq_rounds),
                )

    async def cold_rows(pool_size: int, name: str, note: str) -> None:
        async def measure() -> list[float]:
            async with opened(pool_size) as r:
                if not pool_size:
                    return await arepeat(
                        lambda: cold(r), cfg.cold_rounds, warmup=1, settle=cfg.settle
                    )
                watch = PoolWatch(r)
                await cold(r)
                await watch.wait(pool_size)
                return await arepeat(
                    lambda: cold(r), cfg.cold_rounds, settle=lambda: watch.wait(pool_size)
                )

        await results.attempt_async("cold", name, measure, note)

    async def concurrent_rows(pool_size: int, name: str, note: str) -> None:
        async def measure() -> list[float]:
            async with opened(pool_size) as r:
                watch = PoolWatch(r) if pool_size else None
                if watch is not None:
                    await cold(r)  # starts filling the pool
                samples = []
                for _ in range(cfg.concurrent_rounds):
                    if watch is not None:
                        await watch.wait(pool_size)
                    else:
                        await asyncio.sleep(cfg.settle)
                    samples.append(await concurrent_round(r))
                return samples

        await results.attempt_async("8 concurrent", name, measure, note)

    async def memory() -> Measurement:
        async with opened(0) as r:
            await cold(r)
            gc.collect()
            before = process_tree_rss(os.getpid())
            sessions = [r.session(cwd=cfg.workdir) for _ in range(cfg.sessions)]
            try:
                for session in sessions:
                    await session.run("true")
                gc.collect()
                after = process_tree_rss(os.getpid())
            finally:
                await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
            return memory_measurement(before, after, cfg.sessions)

    await sequential_rows()
    await cold_rows(
        0,
        "ours, no pool",
        "async with runner.session(): run; close included (it hangs up; the container's "
        "removal finishes in the background, and runner.close() waits for it)",
    )
    await cold_rows(
        2,
        "ours, pool_size=2",
        "the session takes a pre-started sandbox; the next round starts once the pool has refilled",
    )
    await concurrent_rows(0, "ours, no pool", "asyncio.gather; first chunk via on_output")
    await concurrent_rows(8, "ours, pool_size=8", "rounds start with a full pool")
    await results.attempt_async("memory", "ours", memory, "sessions idle after one command")
    return {"agent-runner": __version__}


def ensure_base_image(image: str) -> dict[str, str]:
    """The image every contender uses; built with the project script if it is the default."""
    import docker

    client = docker_client()
    try:
        found = client.images.get(image)
    except docker.errors.ImageNotFound:
        script = ROOT / "scripts" / "build-base-image.sh"
        if image != DEFAULT_IMAGE or not script.exists():
            raise SystemExit(f"image {image} is not present; build or load it first") from None
        log(f"{image} is missing; building it with {script.relative_to(ROOT)}")
        subprocess.run([str(script), image], check=True, stdout=subprocess.DEVNULL)
        found = client.images.get(image)
    size = found.attrs.get("Size", 0) / 1e6
    return {"image": image, "image_id": found.id[:19], "image_size": f"{size:.0f} MB"}


def ensure_peer_venv(path: Path, refresh: bool) -> Path:
    """A venv with the peers, outside the project; installed once, then reused."""
    python = path / "bin" / "python"
    marker = path / ".stigmer-bench-packages"
    wanted = "\n".join(PEER_PACKAGES)
    if python.exists() and not refresh and marker.exists() and marker.read_text() == wanted:
        return python
    log(f"installing the peers into {path}: {' '.join(PEER_PACKAGES)}")
    if not python.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    upgrade = ["--upgrade"] if refresh else []
    pip = [str(python), "-m", "pip", "install", "-qq"]
    subprocess.run([*pip, *upgrade, *PEER_PACKAGES], check=True)
    marker.write_text(wanted)
    return python


def ensure_swerex_image(peer_python: Path, base_image: str, tag: str) -> None:
    """The base image plus swerex-remote (same version as the client), built when stale."""
    import docker

    client = docker_client()
    version = subprocess.run(
        [
            str(peer_python),
            "-c",
            "from importlib.metadata import version; print(version('swe-rex'))",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    base_id = client.images.get(base_image).id
    wanted = {f"{LABEL}.base": base_id, f"{LABEL}.swe-rex": version}
    with contextlib.suppress(docker.errors.ImageNotFound):
        labels = client.images.get(tag).labels or {}
        if all(labels.get(key) == value for key, value in wanted.items()):
            return
    log(f"building {tag} (swe-rex {version} on {base_image})")
    with tempfile.TemporaryDirectory(prefix="stigmer-bench-swerex-") as context:
        subprocess.run(
            [
                str(peer_python),
                "-m",
                "pip",
                "download",
                "-qq",
                "--only-binary=:all:",
                "--dest",
                str(Path(context) / "wheels"),
                "pip",
                f"swe-rex=={version}",
            ],
            check=True,
        )
        shutil.copy(SWEREX_DOCKERFILE, Path(context) / "Dockerfile")
        label_args = [arg for key, value in wanted.items() for arg in ("--label", f"{key}={value}")]
        subprocess.run(
            [
                "docker",
                "build",
                "--quiet",
                "--force-rm",
                "--build-arg",
                f"BASE_IMAGE={base_image}",
                "--build-arg",
                f"SWEREX_VERSION={version}",
                *label_args,
                "--tag",
                tag,
                context,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )


# --- main --------------------------------------------------------------------------------


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="image every contender uses")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--peer-venv", type=Path, default=DEFAULT_PEER_VENV)
    parser.add_argument("--refresh-peers", action="store_true", help="upgrade the peer venv")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=["host", "ours", *PEERS],
        help="measure only these contenders (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=30, help="warm rows (default 30)")
    parser.add_argument("--seq-rounds", type=int, default=5, help="20-sequential rows")
    parser.add_argument("--cold-rounds", type=int, default=7, help="cold rows")
    parser.add_argument("--slow-cold-rounds", type=int, default=3, help="llm-sandbox defaults")
    parser.add_argument("--concurrent-rounds", type=int, default=3, help="8-concurrent rows")
    parser.add_argument("--concurrency", type=int, default=8, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=10, help="idle sessions, memory row")
    parser.add_argument("--settle", type=float, default=0.5, help="s between cold rounds")
    parser.add_argument("--worker-timeout", type=float, default=300.0)
    parser.add_argument("--quick", action="store_true", help="few rounds, to try the script")
    parser.add_argument("--worker", choices=PEERS, help=argparse.SUPPRESS)
    parser.add_argument("--worker-config", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seq_rounds, args.cold_rounds = 5, 2, 2
        args.slow_cold_rounds, args.concurrent_rounds, args.sessions = 1, 1, 3
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)
    if args.worker:
        return worker_main(PEER_FUNCTIONS[args.worker], args.worker_config, args.worker_out)

    started = time.perf_counter()
    only = set(args.only or ["host", "ours", *PEERS])
    image_meta = ensure_base_image(args.image)
    workdir = tempfile.mkdtemp(prefix="stigmer-bench-")
    os.chmod(workdir, 0o755)  # the sandbox user (never root) must be able to enter it
    cfg = Config(
        image=args.image,
        run_id=f"run-{uuid.uuid4().hex[:10]}",
        rounds=args.rounds,
        seq_rounds=args.seq_rounds,
        cold_rounds=args.cold_rounds,
        slow_cold_rounds=args.slow_cold_rounds,
        concurrent_rounds=args.concurrent_rounds,
        concurrency=args.concurrency,
        sessions=args.sessions,
        settle=args.settle,
        workdir=workdir,
    )
    results = Results()
    versions: dict[str, str] = {}
    skipped: dict[str, str] = {}
    log(f"run {cfg.run_id}: image {cfg.image} ({image_meta['image_id']})")
    try:
        if "host" in only:
            measure_host(cfg, results)
        if "ours" in only:
            log("--- ours (project interpreter) ---")
            try:
                versions.update(asyncio.run(measure_ours(cfg, results)))
            except Exception as error:
                traceback.print_exc(file=sys.stderr)
                skipped["ours"] = describe(error)
            finally:
                sweep(cfg)
        peers = [name for name in PEERS if name in only]
        peer_python = None
        if peers:
            try:
                peer_python = ensure_peer_venv(args.peer_venv, args.refresh_peers)
            except Exception as error:
                for name in peers:
                    skipped[name] = f"peer venv: {describe(error)}"
        for name in peers if peer_python is not None else []:
            assert peer_python is not None
            if name == "swe-rex":
                try:
                    ensure_swerex_image(peer_python, cfg.image, cfg.swerex_image)
                except Exception as error:
                    skipped[name] = f"building {cfg.swerex_image}: {describe(error)}"
                    continue
            outcome = run_worker(SCRIPT, peer_python, name, cfg, args.worker_timeout)
            results.rows.extend(outcome["rows"])
            versions.update(outcome["versions"])
            if outcome["error"]:
                skipped[name] = outcome["error"]
            sweep(cfg)
    finally:
        left = sweep(cfg)
        if left:
            log(f"removed {left} leftover container(s) of run {cfg.run_id}")
        shutil.rmtree(workdir, ignore_errors=True)

    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M"),
            "host": platform.node(),
            "cpus": os.cpu_count(),
            "docker": docker_client().version().get("Version", "?"),
            "python": platform.python_version(),
            **image_meta,
            "versions": versions,
            "duration_s": time.perf_counter() - started,
            "run_id": cfg.run_id,
            "config": asdict(cfg),
        },
        "rows": results.rows,
        "skipped": skipped,
    }
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        if "--worker" not in sys.argv:
            log("interrupted; containers of this run were removed")
        raise SystemExit(130) from None
