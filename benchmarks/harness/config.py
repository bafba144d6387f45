"""What every contender needs to know about the run, and the few names they all use."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

LABEL = "stigmer.bench"
"""Label (``stigmer.bench=<run id>``) on every container a library lets us label."""
COMMAND = "echo hi"
SWEREX_IMAGE = "stigmer/bench-swerex:local"


@dataclass
class Config:
    """What every contender needs to know; sent to peer workers as JSON."""

    image: str
    run_id: str
    rounds: int = 30
    seq_rounds: int = 5
    cold_rounds: int = 7
    slow_cold_rounds: int = 3
    concurrent_rounds: int = 3
    concurrency: int = 8
    sessions: int = 10
    settle: float = 0.5
    swerex_image: str = SWEREX_IMAGE
    workdir: str = ""

    @property
    def labels(self) -> dict[str, str]:
        return {LABEL: self.run_id}


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "?"
