"""Time AUTO mode decisions over the labelled corpus.

Runs :func:`agent_runner.policy.decide` on every corpus command shorter than 200 characters,
several rounds, and prints the median, 90th/99th percentile and maximum time per decision
in microseconds. Exits 1 when the median reaches 1 ms (the target), so CI can run it as a gate.
With ``--written N`` the decisions also get a record of N sandbox-written files in the
workspace (rule sandbox-written), as an AUTO session whose sandbox wrote them would pass.
This is a benchmark script, not a test: ``python benchmarks/policy_decision.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "data" / "auto_corpus.tsv"
TARGET_US = 1000.0
MAX_LENGTH = 200


def corpus_commands() -> list[str]:
    commands = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        command = line.split("\t", 2)[2]
        command = re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m[1]], command)
        if len(command) < MAX_LENGTH:
            commands.append(command)
    return commands


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the corpus")
    parser.add_argument(
        "--written", type=int, default=0, help="sandbox-written files in the workspace"
    )
    options = parser.parse_args()

    sys.path.insert(0, str(ROOT / "src"))
    from agent_runner.policy import decide

    commands = corpus_commands()
    workspace = "/home/tester/project"
    os.environ["HOME"] = "/home/tester"
    written = None
    if options.written:
        from agent_runner.auto.written import Entry, View, Written

        record = Written(
            {f"{workspace}/gen/file{i}.py": Entry(False, True) for i in range(options.written)}
        )
        written = View(record, workspace, "/usr/bin:/bin")
    decide("echo warm-up", cwd=workspace)  # the parser is created lazily, once

    samples: list[float] = []
    for _ in range(options.rounds):
        for command in commands:
            start = time.perf_counter_ns()
            decide(command, cwd=workspace, sandbox_written=written)
            samples.append((time.perf_counter_ns() - start) / 1000)

    samples.sort()
    median = statistics.median(samples)
    p90 = samples[int(len(samples) * 0.9) - 1]
    p99 = samples[int(len(samples) * 0.99) - 1]
    slowest = samples[-1]
    shown = f", {options.written} sandbox-written files" if options.written else ""
    print(f"policy.decide over {len(commands)} corpus commands x {options.rounds} rounds{shown}")
    print(f"median {median:8.1f} us")
    print(f"p90    {p90:8.1f} us")
    print(f"p99    {p99:8.1f} us")
    print(f"max    {slowest:8.1f} us  (includes scheduler and garbage-collector pauses)")
    if median >= TARGET_US:
        print(f"FAIL: median {median:.1f} us >= target {TARGET_US:.0f} us")
        return 1
    print(f"ok: median below the {TARGET_US:.0f} us target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
