"""Stigmer's agent-runner execution layer: run an agent's shell commands on the host
(LOCAL), in an isolated sandbox (SANDBOX), or decided per command (AUTO).

The public surface is exactly what this module exports.
"""

from importlib.metadata import PackageNotFoundError, version

from agent_runner.config import ExecutionMode, Settings
from agent_runner.errors import AgentRunnerError
from agent_runner.output import Page
from agent_runner.process import Process, ProcessStatus
from agent_runner.results import ExecutionResult, OutputChunk, Stream
from agent_runner.runner import Runner, execute_command
from agent_runner.session import Session

try:
    __version__ = version("stigmer-agent-runner")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
    "AgentRunnerError",
    "ExecutionMode",
    "ExecutionResult",
    "OutputChunk",
    "Page",
    "Process",
    "ProcessStatus",
    "Runner",
    "Session",
    "Settings",
    "Stream",
    "__version__",
    "execute_command",
]
