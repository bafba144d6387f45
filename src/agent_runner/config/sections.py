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

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    model_validator,
)

from agent_runner.modes import ExecutionMode

DEFAULT_SANDBOX_IMAGE = "ghcr.io/stigmer/agent-sandbox:latest"
LOCAL_BUILD_TAG = "stigmer/agent-sandbox:local"
MIB = 1024 * 1024
SANDBOX_BACKENDS = ("docker", "daytona", "kubernetes")
"""Names accepted by ``execution.sandbox.backend``; the registry maps each to its package."""
SandboxBackendName = Literal["docker", "daytona", "kubernetes"]

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


Seconds = Annotated[float, BeforeValidator(_parse_duration), Field(gt=0, allow_inf_nan=False)]
"""A duration: finite and above 0 (the same rule as every timeout)."""

_SIZE = re.compile(r"^(\d+)([bkmg]?)$")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def size_in_bytes(text: str) -> int:
    """``512m`` -> bytes (units as Docker's: b, k, m, g, powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size such as 512m or 2g")
    return int(match.group(1)) * _UNITS[match.group(2)]


def _at_least(floor: str) -> Any:
    def check(value: str) -> str:
        if _SIZE.match(value) and size_in_bytes(value) < size_in_bytes(floor):
            raise ValueError(f"must be at least {floor} (0 does not mean unlimited here)")
        return value

    return check


MemorySize = Annotated[str, Field(pattern=r"^\d+[bkmg]?$"), AfterValidator(_at_least("64m"))]
"""A memory size, 64 MiB at the least: Docker reads 0 as no limit at all."""
TmpfsSize = Annotated[str, Field(pattern=r"^\d+[bkmg]?$"), AfterValidator(_at_least("1m"))]


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


QUANTITY = r"^\d+(\.\d+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
"""A Kubernetes resource quantity such as 500m, 2, 512Mi or 10Gi."""


def _parse_mapping(value: Any) -> Any:
    """Accept ``key=value,key2=value2`` (an environment variable or a flag) for a mapping."""
    if not isinstance(value, str):
        return value
    pairs = [item.strip() for item in value.split(",") if item.strip()]
    if any("=" not in pair for pair in pairs):
        raise ValueError("expected key=value pairs separated by commas")
    return dict(pair.split("=", 1) for pair in pairs)


class Toleration(Section):
    """A pod toleration; from text in the kubectl taint syntax ``key[=value]:Effect``."""

    key: str | None = None
    """The taint key (none: every taint, with operator Exists)."""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    """The taint effect it tolerates (none: every effect)."""
    toleration_seconds: int | None = Field(default=None, ge=0)
    """With NoExecute: how long the pod stays once the taint appears."""

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        key, _, effect = value.partition(":")
        key, equals, tolerated = key.partition("=")
        found: dict[str, Any] = {"key": key.strip() or None}
        found["operator"] = "Equal" if equals else "Exists"
        if equals:
            found["value"] = tolerated.strip()
        if effect.strip():
            found["effect"] = effect.strip()
        return found


class KubernetesSettings(Section):
    """How Kubernetes sandboxes are made (``execution.sandbox.kubernetes.*``)."""

    kubeconfig: Path | None = None
    """Kubeconfig file; default: $KUBECONFIG, else ~/.kube/config."""
    context: str | None = None
    """Kubeconfig context to use; default: its current context."""
    in_cluster: bool = False
    """Use the pod's service account (the runner itself runs in the cluster)."""
    namespace: str = Field(default="stigmer-sandboxes", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """a namespace name: where sandbox pods, the runner's Lease and its NetworkPolicies live."""
    image: str | None = None
    """Image of the sandbox pods (it needs bash and python3); default: execution.sandbox_image."""
    image_pull_secrets: list[str] = Field(default_factory=list)
    """Secrets in the namespace the kubelet pulls the image with."""
    service_account: str | None = None
    """Service account of the pods (its token is never mounted); default: the namespace's."""
    runtime_class: str | None = None
    """RuntimeClass of the pods, such as gvisor or kata (stronger isolation than runc)."""
    node_selector: Annotated[dict[str, str], BeforeValidator(_parse_mapping)] = Field(
        default_factory=dict
    )
    """Node labels the pods must land on (key=value,...)."""
    tolerations: list[Toleration] = Field(default_factory=list)
    """Taints the pods tolerate (key[=value]:Effect,...)."""
    cpu: str = Field(default="2", pattern=QUANTITY)
    """a CPU quantity such as 500m or 2: the pod's request and limit."""
    memory: str = Field(default="2Gi", pattern=QUANTITY)
    """a memory quantity such as 512Mi or 2Gi: the pod's request and limit."""
    ephemeral_storage: str = Field(default="8Gi", pattern=QUANTITY)
    """a disk quantity such as 8Gi: the pod's local disk in all (its emptyDirs count)."""
    workspace_size: str = Field(default="4Gi", pattern=QUANTITY)
    """a disk quantity such as 4Gi: the size limit of /workspace."""
    network: Literal["none", "egress-public", "unrestricted"] = "egress-public"
    """none, egress-public (the internet, but no private, link-local or cluster address) or
    unrestricted; the first two are NetworkPolicies, which need a CNI that enforces them."""
    max_lifetime: Seconds = 6 * 3600.0
    """Longest life of a pod, whoever is left to watch it (activeDeadlineSeconds)."""
    pool_size: int = Field(default=0, ge=0, le=32)
    """Warm pods kept ready so a new session does not wait for one (provisioner pod)."""
    provisioner: Literal["pod", "agent-sandbox"] = "pod"
    """pod (the runner makes plain pods) or agent-sandbox (SandboxClaims on warm_pool)."""
    warm_pool: str | None = None
    """The SandboxWarmPool sessions claim from (provisioner agent-sandbox)."""
    user: str = Field(default="1000:1000", pattern=r"^[1-9]\d*(:\d+)?$")
    """a numeric uid or uid:gid other than root (0): the user the pods run as."""
    start_timeout: Seconds = 300.0
    """How long a pod may take to start (schedule, pull, run) before the session fails."""
    connect_timeout: Seconds = 30.0
    """How long the exec stream's websocket upgrade may take."""
    heartbeat: Seconds = 30.0
    """Seconds between heartbeats on the exec stream (kubelets cut idle streams)."""
    lease_duration: Seconds = 60.0
    """The runner's Lease; its pods are removed once it goes unrenewed for twice that."""


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
    """Where SANDBOX runs: docker (default; Podman through its Docker-compatible socket),
    daytona (cloud sandboxes from a snapshot, settings under execution.sandbox.daytona) or
    kubernetes (one restricted pod per session, settings under execution.sandbox.kubernetes)."""
    network: Literal["bridge", "none", "host"] = "bridge"
    """Container network: bridge (default; package installs work), none, or host."""
    workspace: Literal["bind", "copy", "none"] = "bind"
    """How the workspace reaches /workspace: bind-mounted, copied in once, or not at all
    (Daytona: copy unless set; a cloud sandbox cannot bind-mount)."""
    ca_bundle: Path | None = None
    """Host CA bundle to trust inside the sandbox (TLS-inspecting proxies) and while image
    layers with custom requirements are built (default for those: the host's own bundle)."""
    registry_timeout: Seconds = 20.0
    """How long a pull waits for the registry's first answer before it counts as unreachable
    (once the registry answers, a download may pause for up to 2 minutes)."""
    env_passthrough: list[str] = Field(default_factory=list)
    """Host environment variables passed into the sandbox; no others are."""
    memory: MemorySize = "2g"
    """a memory size such as 512m or 2g (bytes, k, m or g), 64m at the least."""
    tmp_size: TmpfsSize = "256m"
    """a size for each of /tmp and $HOME in the sandbox (in memory, so it counts against
    the memory limit); filling one is "No space left on device", not an OOM kill."""
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
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)

    @property
    def warm_pool_size(self) -> int:
        """How many sandboxes the chosen backend keeps warm: its own section's
        ``pool_size`` where it has one, else this section's (Docker's)."""
        section = getattr(self, self.backend, self)
        return int(getattr(section, "pool_size", 0))


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
