"""llm-sandbox (``SandboxSession``, Docker backend, defaults). Runs in the peer venv.

Quirks, and what is done about them: it has no switch to forbid pulls; it only pulls when
``images.get`` fails, and the image is local. Its ``close()`` stops the container before
removing it, and the image's PID 1 (bash with a tty) ignores SIGTERM, so every close waits
Docker's 10 s grace: that is in its cold row, as it is what a user gets; untimed clean-ups
remove the container first to save the wait.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness.config import COMMAND, Config, package_version
from harness.memory import memory_measurement, process_tree_rss
from harness.results import Measurement, Results
from harness.timing import check_output, ms_since, repeat, repeat_rounds, threaded_first_output


def measure(cfg: Config, results: Results) -> dict[str, str]:
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
