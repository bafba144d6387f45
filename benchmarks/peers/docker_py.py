"""Raw docker-py: ``containers.run`` + ``exec_run`` + ``remove``, the baseline every
Docker-based sandbox is built on. Runs in the peer venv."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.config import COMMAND, Config, package_version
from harness.results import Results
from harness.timing import (
    check_output,
    interleave,
    ms_since,
    repeat,
    repeat_rounds,
    threaded_first_output,
)


def measure(cfg: Config, results: Results) -> dict[str, str]:
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
