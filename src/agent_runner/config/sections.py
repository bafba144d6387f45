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

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr

from agent_runner.modes import ExecutionMode

DEFAULT_SANDBOX_IMAGE = "ghcr.io/stigmer/agent-sandbox:latest"
LOCAL_BUILD_TAG = "stigmer/agent-sandbox:local"
MIB = 1024 * 1024
SANDBOX_BACKENDS = ("docker", "daytona")
"""Names accepted by ``execution.sandbox.backend``; the registry maps each to its package."""
SandboxBackendName = Literal["docker", "daytona"]

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


class DaytonaSettings(Section):
    """Daytona cloud sandboxes (``execution.sandbox.daytona.*``): one per session, from a
    snapshot (or an image), through the ``daytona`` SDK."""

    api_key: SecretStr | None = None
    """Daytona API key (never printed); required."""
    api_url: str | None = None
    """Daytona API URL; default: the SDK's (https://app.daytona.io/api)."""
    target: str | None = None
    """Region sandboxes are created in; default: the organization's."""
    snapshot: str | None = None
    """Snapshot sandboxes start from (the dev-tools snapshot); default: Daytona's own."""
    image: str | None = None
    """An image to start from instead of a snapshot (Daytona builds it first)."""
    cpu: int | None = Field(default=None, ge=1)
    """vCPUs, for sandboxes made from ``image`` (a snapshot fixes its own)."""
    memory: int | None = Field(default=None, ge=1)
    """Memory in GiB, for sandboxes made from ``image``."""
    disk: int | None = Field(default=None, ge=1)
    """Disk in GiB, for sandboxes made from ``image``."""
    auto_stop_interval: int = Field(default=15, ge=0)
    """Minutes without activity after which Daytona stops a sandbox (0: never); running
    commands keep it alive, a stopped one is started again by the next command."""
    auto_archive_interval: int | None = Field(default=None, ge=0)
    """Minutes a stopped sandbox waits before it is archived; default: Daytona's (7 days)."""
    auto_delete_interval: int | None = None
    """Minutes a stopped sandbox waits before Daytona deletes it (-1: never); default: 60
    when cleanup is on (a crashed runner's sandbox goes away by itself), else never."""
    ephemeral: bool = False
    """Delete sandboxes as soon as they stop."""
    labels: dict[str, str] = Field(default_factory=dict)
    """Extra labels for every sandbox (as key=value,key=value in a variable)."""
    network_block_all: bool = False
    """Block all network access from the sandbox."""
    network_allow_list: str | None = None
    """Comma-separated CIDR ranges the sandbox may reach (all others blocked)."""
    keepalive: Seconds | None = None
    """Seconds between activity refreshes while a command or process runs; default: a
    quarter of auto_stop_interval, at most 60."""
    create_timeout: Seconds = 180.0
    """How long creating (or starting) a sandbox may take."""


class SandboxSettings(Section):
    """Which backend runs sandboxes, and how Docker sandboxes are made."""

    backend: SandboxBackendName = "docker"
    """Where SANDBOX runs: docker (default; Podman through its Docker-compatible socket) or
    daytona (cloud sandboxes from a snapshot)."""
    network: Literal["bridge", "none", "host"] = "bridge"
    """Container network: bridge (default; package installs work), none, or host."""
    workspace: Literal["bind", "copy", "none"] = "bind"
    """How the workspace reaches /workspace: bind-mounted, copied in once, or not at all
    (Daytona: copy unless set; a cloud sandbox cannot bind-mount)."""
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
    daytona: DaytonaSettings = Field(default_factory=DaytonaSettings)
