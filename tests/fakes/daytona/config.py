"""What one emulator instance serves: its snapshots, keys and clock.

Real Daytona's snapshots are images its runners pulled; here a snapshot name maps to a
local Docker image (``snapshots={"stigmer-dev-tools": "stigmer/sandbox-base:bookworm"}``).
Lifecycle intervals are in minutes on the wire, as in the real API; ``minute_seconds``
says how long an emulated minute lasts, so a test can watch a 1-minute auto-stop happen
in a second or two.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_API_KEY = "dtn_emulator_valid_key"
DEFAULT_FORBIDDEN_KEY = "dtn_emulator_forbidden_key"


@dataclass(frozen=True)
class SnapshotSpec:
    """One snapshot: its name in the API and the local image behind it.

    The resources are the defaults of Daytona's own default snapshot (1 vCPU, 1 GiB,
    3 GiB disk); ``memory`` becomes the container's memory limit. ``user`` overrides the
    user the sandbox runs as (otherwise the image's non-root ``USER``, else ``daytona``).
    """

    name: str
    image: str
    cpu: int = 1
    memory: int = 1
    disk: int = 3
    user: str | None = None


@dataclass
class EmulatorConfig:
    """Everything an emulator instance needs to know before it starts."""

    snapshots: Mapping[str, str | SnapshotSpec] = field(default_factory=dict)
    api_key: str = DEFAULT_API_KEY
    """The one key the API accepts (``Authorization: Bearer <key>``); anything else is 401."""
    forbidden_keys: frozenset[str] = frozenset({DEFAULT_FORBIDDEN_KEY})
    """Keys that authenticate but may not act: every call answers 403."""
    minute_seconds: float = 60.0
    """Length of an emulated minute, for auto-stop/archive/delete and activity timing."""
    host: str = "127.0.0.1"
    port: int = 0
    organization_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    target: str = "us"
    default_snapshot: str | None = None
    """Used when a create names no snapshot (real Daytona: the organization's default)."""
    restore_seconds: float = 0.0
    """Extra time an archived sandbox spends in ``restoring`` when started."""

    def snapshot_specs(self) -> dict[str, SnapshotSpec]:
        specs: dict[str, SnapshotSpec] = {}
        for name, value in self.snapshots.items():
            specs[name] = value if isinstance(value, SnapshotSpec) else SnapshotSpec(name, value)
        return specs

    def default_snapshot_name(self) -> str | None:
        if self.default_snapshot:
            return self.default_snapshot
        return next(iter(self.snapshots), None)
