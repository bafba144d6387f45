"""What a command produces: the streamed chunks while it runs and the result when it ends."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from agent_runner.modes import ExecutionMode

TIMEOUT_EXIT_CODE = 124
"""Exit code of a command stopped by its timeout (the same as coreutils ``timeout``)."""


class Stream(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


@dataclass(frozen=True, slots=True)
class OutputChunk:
    """A piece of output as it was produced; ``data`` is raw, ``text`` is decoded UTF-8."""

    stream: Stream
    data: bytes
    text: str


OutputCallback = Callable[[OutputChunk], Awaitable[None] | None]
"""Called for each chunk while the command runs; may be a plain or an async function."""


class ExecutionResult(BaseModel):
    """The outcome of one command, whatever mode and backend ran it."""

    model_config = ConfigDict(frozen=True)

    command: str
    exit_code: int
    stdout: str
    stderr: str
    duration_s: float
    mode: ExecutionMode
    """The mode that actually ran the command (never ``auto``)."""
    backend: str
    reason: str | None = None
    """Why this mode was chosen, when AUTO chose it."""
    timed_out: bool = False
    truncated: bool = False
    """Part of stdout or stderr was dropped to keep memory bounded; a marker shows where."""
    oom_killed: bool = False
    sandbox_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.exit_code == 0
