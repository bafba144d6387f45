"""Where a command runs. Settings, the runner and the AUTO policy all name the modes; this
module sits below them and imports nothing, so none of them imports another for the enum."""

from __future__ import annotations

from enum import StrEnum


class ExecutionMode(StrEnum):
    """Where a command runs: on the host, in a sandbox, or decided per command."""

    LOCAL = "local"
    SANDBOX = "sandbox"
    AUTO = "auto"
