"""The execution modes: a module of its own, at the bottom, so every layer can name them."""

from __future__ import annotations

from enum import StrEnum


class ExecutionMode(StrEnum):
    """Where a command runs: on the host, in a sandbox, or decided per command."""

    LOCAL = "local"
    SANDBOX = "sandbox"
    AUTO = "auto"
