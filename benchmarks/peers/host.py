"""The floor: ``bash -c "echo hi"`` as a plain subprocess on the host, no sandbox."""

from __future__ import annotations

import subprocess

from harness.config import COMMAND, Config
from harness.results import Results
from harness.timing import check_output, repeat


def measure(cfg: Config, results: Results) -> None:
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
