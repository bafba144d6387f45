"""Time the host-side snapshots AUTO takes around a sandboxed command (bind workspace).

Builds a workspace of ``--files`` files (default 10 000, 100 per directory, like a small
project with its dependencies), then times, per round: the walk before a command
(``snapshot.take``) and the walk after it that compares (``snapshot.changes``) when the
command changed nothing, when it changed 100 existing files, and when it installed
``--install`` files into a new directory (``node_modules``-like: recorded whole, not
walked). Prints medians and the 90th percentile in milliseconds. A benchmark script, not
a test: ``python benchmarks/sandbox_writes.py [--files N] [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def build(root: Path, files: int, per_directory: int = 100) -> None:
    for index in range(files):
        directory = root / f"pkg{index // per_directory}" / "src"
        if index % per_directory == 0:
            directory.mkdir(parents=True)
        (directory / f"module{index % per_directory}.py").write_text("x = 1\n")


def timed(samples: list[float], action: Callable[[], T]) -> T:
    start = time.perf_counter()
    result = action()
    samples.append((time.perf_counter() - start) * 1000)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--install", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=15)
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from agent_runner.auto import snapshot

    def no_skip(_relative: str) -> bool:
        return False

    rows: dict[str, list[float]] = {
        "before (take)": [],
        "after, nothing changed": [],
        "after, 100 files changed": [],
        f"after, {options.install} files installed in a new directory": [],
    }
    names = list(rows)
    with tempfile.TemporaryDirectory(prefix="stigmer-bench-") as temporary:
        workspace = Path(temporary) / "ws"
        build(workspace, options.files)
        root = str(workspace)
        snapshot.take(root, no_skip)  # warm the dentry cache, as a session would
        for round_number in range(options.rounds):
            time.sleep(snapshot.HOT_NS * 2 / 1e9)  # older than a clock tick: not "hot"
            before = timed(rows[names[0]], partial(snapshot.take, root, no_skip))
            assert before.overflow is None
            found = timed(rows[names[1]], partial(snapshot.changes, before, root, no_skip))
            assert not found.written
            for index in range(100):
                path = workspace / f"pkg{index}" / "src" / "module0.py"
                path.write_text(f"x = {round_number}\n")
            found = timed(rows[names[2]], partial(snapshot.changes, before, root, no_skip))
            assert len(found.written) == 100
            time.sleep(snapshot.HOT_NS * 2 / 1e9)
            before = snapshot.take(root, no_skip)
            installed = workspace / "node_modules"
            build(installed, options.install)
            found = timed(rows[names[3]], partial(snapshot.changes, before, root, no_skip))
            assert list(found.written) == ["node_modules"]
            shutil.rmtree(installed)
        entries = len(snapshot.take(root, no_skip).entries)

    print(f"workspace of {options.files} files ({entries} entries), {options.rounds} rounds")
    print(f"{'walk':58} {'median ms':>10} {'p90 ms':>8}")
    for name, samples in rows.items():
        samples.sort()
        p90 = samples[max(0, int(len(samples) * 0.9) - 1)]
        print(f"{name:58} {statistics.median(samples):10.1f} {p90:8.1f}")
    print(f"cpu: {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
