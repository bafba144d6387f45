"""Who started a sandbox, written on it so that a later runner can tell an orphan.

Every backend labels what it creates with the runner's pid, host and process start time.
A sandbox whose runner is gone (pid dead, or alive but started at another time: a reused
pid) is an orphan and may be removed; one made on another host is never judged from here.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass

SANDBOX_LABEL = "stigmer.sandbox"
"""On every sandbox of ours (value ``1``); nothing without it is ever listed or removed."""
EXECUTION_LABEL = "stigmer.execution-id"
CREATED_LABEL = "stigmer.created-at"
IMAGE_LABEL = "stigmer.image"
OWNER_PREFIX = "stigmer.owner-"
_PID, _HOST, _STARTED = f"{OWNER_PREFIX}pid", f"{OWNER_PREFIX}host", f"{OWNER_PREFIX}started"


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

    @classmethod
    def from_labels(cls, labels: Mapping[str, str]) -> Owner:
        """The owner a sandbox's labels name (pid 0, which is never alive, when they do not)."""
        pid = labels.get(_PID, "0")
        return cls(
            int(pid) if pid.isdigit() else 0, labels.get(_HOST, ""), labels.get(_STARTED, "")
        )

    def labels(self, execution_id: str, image: str) -> dict[str, str]:
        """What every backend writes on a sandbox it creates for ``execution_id``."""
        return {
            SANDBOX_LABEL: "1",
            EXECUTION_LABEL: execution_id,
            _PID: str(self.pid),
            _HOST: self.host,
            _STARTED: self.started,
            CREATED_LABEL: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            IMAGE_LABEL: image,
        }


def process_start_time(pid: int) -> str:
    """The kernel's start time of ``pid`` (``""`` when gone); tells a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
