"""Who started a sandbox, written on it so that a later runner can tell an orphan.

Every backend labels what it creates with the runner's pid, host and process start time.
A sandbox whose runner is gone (pid dead, or alive but started at another time: a reused
pid) is an orphan and may be removed; one made on another host is never judged from here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Owner:
    """The runner process that made a sandbox."""

    pid: int
    host: str
    started: str

    @classmethod
    def current(cls) -> Owner:
        return cls(os.getpid(), socket.gethostname(), process_start_time(os.getpid()))

    def is_alive(self) -> bool:
        if self.host != socket.gethostname():
            return True  # another machine's runner: not ours to judge
        return process_start_time(self.pid) == self.started

    def __str__(self) -> str:
        return f"{self.pid}@{self.host}"


def process_start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (``""`` when gone); tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
