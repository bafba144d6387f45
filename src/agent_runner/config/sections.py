"""The settings' sections: one strict pydantic class each, a typo anywhere is an error.

Each field's docstring is its documentation (``agent-runner config list`` and the docs use
it). Sandbox backends have a section each under ``execution.sandbox``; the Docker backend's
keys sit directly in ``execution.sandbox``, where they were before there was a choice of
backend, so existing config files keep working.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from agent_runner.modes import ExecutionMode

DEFAULT_SANDBOX_IMAGE = "ghcr.io/stigmer/agent-sandbox:latest"
LOCAL_BUILD_TAG = "stigmer/agent-sandbox:local"
MIB = 1024 * 1024
SANDBOX_BACKENDS = ("docker",)
"""Names accepted by ``execution.sandbox.backend``; the registry maps each to its package."""
SandboxBackendName = Literal["docker"]

_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$"
)


def _parse_duration(value: Any) -> Any:
    """Accept seconds as a number or text like ``90``, ``30s``, ``15m``, ``1h30m``."""
    if not isinstance(value, str):
        return value
    match = _DURATION.match(value)
    if not value.strip() or match is None:
        raise ValueError("expected seconds or a duration such as 90s, 15m or 1h")
    hours, minutes, seconds = (float(part) if part else 0.0 for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


Seconds = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0)]


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class AutoRule(Section):
    """A user rule for AUTO mode: commands starting with ``prefix`` run in ``mode``."""

    prefix: str = Field(min_length=1)
    """Command prefix, matched word by word against each simple command."""
    mode: Literal[ExecutionMode.LOCAL, ExecutionMode.SANDBOX]
    """Where matching commands run."""
    examples: list[str] = Field(min_length=1)
    """Commands this rule must match; checked when the rules load, so a rule set tests itself."""


class AutoSettings(Section):
    """How AUTO mode decides."""

    default: Literal[ExecutionMode.LOCAL, ExecutionMode.SANDBOX] = ExecutionMode.LOCAL
    """Where a command runs when no rule sends it elsewhere."""
    rules: list[AutoRule] = Field(default_factory=list)
    """User rules, checked before the built-in ones (config file only)."""


class SandboxSettings(Section):
    """Which backend runs sandboxes, and how Docker sandboxes are made."""

    backend: SandboxBackendName = "docker"
    """Where SANDBOX runs: docker (default; Podman through its Docker-compatible socket)."""
    network: Literal["bridge", "none", "host"] = "bridge"
    """Container network: bridge (default; package installs work), none, or host."""
    workspace: Literal["bind", "copy", "none"] = "bind"
    """How the workspace reaches /workspace: bind-mounted, copied in once, or not at all."""
    ca_bundle: Path | None = None
    """Host CA bundle to trust inside the sandbox (TLS-inspecting proxies)."""
    env_passthrough: list[str] = Field(default_factory=list)
    """Host environment variables passed into the sandbox; no others are."""
    memory: str = Field(default="2g", pattern=r"^\d+[bkmg]?$")
    """a memory size such as 512m or 2g (bytes, k, m or g)."""
    cpus: float = Field(default=2.0, gt=0)
    """CPU limit, in cores."""
    pids_limit: int = Field(default=512, ge=16)
    """Maximum number of processes in the sandbox (fork bombs stop here)."""
    user: str | None = Field(default=None, pattern=r"^[1-9]\d*(:\d+)?$")
    """a numeric uid or uid:gid other than root (0); default: the workspace's owner, so the
    files the sandbox writes stay yours."""
    pool_size: int = Field(default=0, ge=0, le=32)
    """Pre-started sandboxes kept warm so a new session does not wait for one."""


MAX_YIELD_SECONDS = 50.0
"""The longest an MCP tool call waits before it returns a running process (clients cut calls
off after about a minute)."""


class McpSettings(Section):
    """``agent-runner mcp``: what the MCP server's tools may do and how long they wait."""

    mode: ExecutionMode | None = None
    """Mode of a session a client opens without asking for one (default: execution.mode)."""
    allowed_modes: list[ExecutionMode] = Field(
        default_factory=lambda: list(ExecutionMode), min_length=1
    )
    """Modes a client may ask for; e.g. sandbox,auto keeps clients off the bare host."""
    default_yield: Seconds = 10.0
    """How long run_command waits before it returns a still-running command's process_id."""
    max_processes: int = Field(default=16, ge=1, le=1024)
    """Running processes a session may have at once; run_command refuses more."""
