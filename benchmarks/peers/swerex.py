"""SWE-ReX: a ``DockerDeployment`` whose server runs inside the sandbox, driven over HTTP.
The measurement runs in the peer venv; :func:`ensure_image` runs in the driver.

The server must be in the image, so SWE-ReX gets a derived image (``swerex.Dockerfile``
next to this file: the base image plus a venv holding the same swe-rex version as the
client), built when missing or stale. Quirks, and what is done about them: ``pull="never"``;
its client talks to 127.0.0.1. ``DockerDeployment.start`` polls with a blocking
``time.sleep`` against 0.15 s probe timeouts, so deployments started together on one event
loop starve each other and never come up; the concurrent row gives each deployment a thread
and an event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.cleanup import docker_client
from harness.config import COMMAND, LABEL, Config, log, package_version
from harness.memory import memory_measurement, process_tree_rss
from harness.results import Measured, Measurement, Results
from harness.timing import arepeat, check_output, ms_since, repeat_rounds, threaded_first_output

DOCKERFILE = Path(__file__).resolve().parent / "swerex.Dockerfile"


def measure(cfg: Config, results: Results) -> dict[str, str]:
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


def ensure_image(peer_python: Path, base_image: str, tag: str) -> None:
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
        shutil.copy(DOCKERFILE, Path(context) / "Dockerfile")
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
