"""LOCAL overhead: ``execute_command("echo hi")`` against a bare asyncio subprocess.

Both sides run in the same process and loop, interleaved, so machine noise hits both
alike. Target (docs/performance.md): median ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time

from agent_runner import Settings, execute_command


async def bare() -> None:
    process = await asyncio.create_subprocess_exec(
        "bash", "-c", "echo hi", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    await process.communicate()


async def ours(settings: Settings) -> None:
    result = await execute_command("echo hi", settings=settings)
    assert result.stdout == "hi\n"


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def measure(rounds: int) -> dict[str, list[float]]:
    settings = Settings.defaults()
    timings: dict[str, list[float]] = {"bare": [], "ours": []}
    for _ in range(20):
        await bare()
        await ours(settings)
    for _ in range(rounds):
        for name, call in (("bare", bare), ("ours", lambda: ours(settings))):
            started = time.perf_counter()
            await call()
            timings[name].append((time.perf_counter() - started) * 1000)
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    args = parser.parse_args()
    timings = asyncio.run(measure(args.rounds))
    print(f"# {platform.node()} {platform.machine()} Python {platform.python_version()}")
    print(f"{'row':<40} {'median ms':>10} {'p90 ms':>8}")
    rows = {
        'bare create_subprocess_exec("bash", "-c", "echo hi")': timings["bare"],
        'execute_command("echo hi") (LOCAL)': timings["ours"],
    }
    for name, samples in rows.items():
        print(f"{name:<40} {statistics.median(samples):>10.3f} {percentile(samples, 0.9):>8.3f}")
    ratio = statistics.median(timings["ours"]) / statistics.median(timings["bare"])
    p90_ratio = percentile(timings["ours"], 0.9) / percentile(timings["bare"], 0.9)
    print(f"ratio at the median: {ratio:.2f} (target <= 1.3); at p90: {p90_ratio:.2f}")
    return 0 if ratio <= 1.3 else 1


if __name__ == "__main__":
    raise SystemExit(main())
