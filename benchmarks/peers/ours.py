"""Ours: ``Runner`` sessions in SANDBOX mode, without and with the warm pool. Runs in the
project's interpreter (agent_runner is imported where it is used, as docker-py is)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import time
from typing import Any

from harness.config import COMMAND, Config
from harness.memory import memory_measurement, process_tree_rss
from harness.results import Measurement, Results
from harness.timing import arepeat, check_output, ms_since


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


async def measure(cfg: Config, results: Results) -> dict[str, str]:
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
