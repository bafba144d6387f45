"""Timing loops around the libraries' own public calls (``time.perf_counter``): repeated,
interleaved round-robin, in rounds that time themselves, awaited, and on threads started
together."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from harness.results import Measured


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def check_output(text: str | bytes | None, what: str) -> None:
    """Each timed call must really have run ``echo hi``."""
    if isinstance(text, bytes):
        text = text.decode(errors="replace")
    if (text or "").strip() != "hi":
        raise RuntimeError(f"{what}: expected 'hi', got {text!r}")


def repeat(
    call: Callable[[], object], rounds: int, *, warmup: int = 0, settle: float = 0.0
) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        samples.append(ms_since(start))
        if settle:
            time.sleep(settle)
    return samples


def interleave(
    calls: dict[str, Callable[[], object]], rounds: int, *, warmup: int = 0, settle: float = 0.0
) -> dict[str, Measured]:
    """Round-robin over ``calls``, so drift on the machine hits every variant alike."""
    for _ in range(warmup):
        for call in calls.values():
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            samples[name].append(ms_since(start))
            if settle:
                time.sleep(settle)
    return dict(samples)


def repeat_rounds(round_ms: Callable[[], float], rounds: int, settle: float) -> list[float]:
    """``rounds`` rounds that time themselves, ``settle`` s apart."""
    samples = []
    for _ in range(rounds):
        time.sleep(settle)
        samples.append(round_ms())
    return samples


async def arepeat(
    call: Callable[[], Awaitable[object]],
    rounds: int,
    *,
    warmup: int = 0,
    settle: float | Callable[[], Awaitable[object]] = 0.0,
) -> list[float]:
    """``settle`` is a pause in seconds or a coroutine function to await between rounds."""
    for _ in range(warmup):
        await call()
        await _settle(settle)
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        await call()
        samples.append(ms_since(start))
        await _settle(settle)
    return samples


async def _settle(settle: float | Callable[[], Awaitable[object]]) -> None:
    if callable(settle):
        await settle()
    elif settle:
        await asyncio.sleep(settle)


def threaded_first_output(
    start_one: Callable[[float], tuple[float, Callable[[], object]]], n: int
) -> float:
    """Start ``n`` sandboxes at once on ``n`` threads; ms until the slowest had its output.

    ``start_one(t0)`` creates a sandbox, runs the command and returns (ms since ``t0`` at
    its first output, a cleanup call); cleanups run afterwards, untimed.
    """
    with ThreadPoolExecutor(max_workers=n) as pool:
        # Start all n threads first (each waits for the others), so that is not timed.
        barrier = threading.Barrier(n)
        list(pool.map(lambda _: barrier.wait(), range(n)))
        t0 = time.perf_counter()
        futures = [pool.submit(start_one, t0) for _ in range(n)]
        outcomes = []
        errors = []
        for future in futures:
            try:
                outcomes.append(future.result())
            except Exception as error:
                errors.append(error)

        def clean(outcome: tuple[float, Callable[[], object]]) -> None:
            with contextlib.suppress(Exception):
                outcome[1]()

        list(pool.map(clean, outcomes))
    if errors:
        raise errors[0]
    return max(elapsed for elapsed, _ in outcomes)
