"""The sandbox record, and the two shapes the API shows it in.

Like the real entity (``apps/api/src/sandbox/entities/sandbox.entity.ts``) a record keeps
a raw ``state``, a ``desired_state`` and a ``pending`` flag; the single-sandbox DTO shows a
state derived from the pair (started + desired stopped = ``stopping``, stopped + desired
started = ``starting``, ...: ``SandboxDto.getSandboxState``), while list items show the raw
state (``sandbox-typeorm-search.adapter.ts``). Both dicts validate in SDK 0.226.1's strict
``Sandbox`` / ``SandboxListItem`` models; ``env`` and other single-read fields are left out
of list items, as the real list leaves them out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    UNKNOWN = "unknown"
    CREATING = "creating"
    PENDING_BUILD = "pending_build"
    BUILDING_SNAPSHOT = "building_snapshot"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    RESTORING = "restoring"
    DESTROYING = "destroying"
    DESTROYED = "destroyed"
    ERROR = "error"
    BUILD_FAILED = "build_failed"


class Desired(StrEnum):
    STARTED = "started"
    STOPPED = "stopped"
    ARCHIVED = "archived"
    DESTROYED = "destroyed"


DEFAULT_AUTO_STOP = 15
DEFAULT_AUTO_ARCHIVE = 7 * 24 * 60
MAX_AUTO_ARCHIVE = 30 * 24 * 60
DEFAULT_AUTO_DELETE = -1


def iso(epoch: float) -> str:
    return (
        datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


@dataclass
class SandboxRecord:
    """What the API knows about one sandbox."""

    id: str
    name: str
    organization_id: str
    snapshot: str | None
    image: str
    user: str
    target: str
    cpu: int
    memory: int
    disk: int
    env: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    public: bool = False
    network_block_all: bool = False
    network_allow_list: str | None = None
    domain_allow_list: str | None = None
    state: State = State.UNKNOWN
    desired: Desired = Desired.STARTED
    pending: bool = True
    error_reason: str | None = None
    recoverable: bool = False
    backup_state: str = "None"
    auto_stop_interval: int = DEFAULT_AUTO_STOP
    auto_archive_interval: int = DEFAULT_AUTO_ARCHIVE
    auto_delete_interval: int = DEFAULT_AUTO_DELETE
    build_dockerfile: str | None = None
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    activity_wall: float = field(default_factory=time.time)
    activity_clock: float = field(default_factory=time.monotonic)
    """When the last activity happened, on the monotonic clock the lifecycle checks use."""

    @property
    def ephemeral(self) -> bool:
        return self.auto_delete_interval == 0

    def shown_state(self) -> State:
        """The state a single-sandbox read reports (``SandboxDto.getSandboxState``)."""
        if self.state is State.STARTED:
            if self.desired is Desired.STOPPED:
                return State.STOPPING
            if self.desired is Desired.DESTROYED:
                return State.DESTROYING
        elif self.state is State.STOPPED:
            if self.desired is Desired.STARTED:
                return State.STARTING
            if self.desired is Desired.DESTROYED:
                return State.DESTROYING
            if self.desired is Desired.ARCHIVED:
                return State.ARCHIVING
        elif self.state is State.UNKNOWN and self.desired is Desired.STARTED:
            return State.CREATING
        return self.state

    def _common(self, toolbox_url: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "organizationId": self.organization_id,
            "name": self.name,
            "target": self.target,
            "snapshot": self.snapshot,
            "user": self.user,
            "labels": dict(self.labels),
            "public": self.public,
            "networkBlockAll": self.network_block_all,
            "networkAllowList": self.network_allow_list,
            "domainAllowList": self.domain_allow_list,
            "cpu": self.cpu,
            "gpu": 0,
            "memory": self.memory,
            "disk": self.disk,
            "desiredState": self.desired.value,
            "errorReason": self.error_reason,
            "recoverable": self.recoverable,
            "backupState": self.backup_state,
            "autoStopInterval": self.auto_stop_interval,
            "autoArchiveInterval": self.auto_archive_interval,
            "autoDeleteInterval": self.auto_delete_interval,
            "autoPauseInterval": 0,
            "sandboxClass": "container",
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.updated_at),
            "lastActivityAt": iso(self.activity_wall),
            "daemonVersion": "0.0.0-emulator",
            "runnerId": "emulator-runner",
            "toolboxProxyUrl": toolbox_url,
        }

    def to_dto(self, toolbox_url: str) -> dict[str, Any]:
        """``SandboxDto``: one sandbox, as create/get/start/stop/delete return it."""
        body = self._common(toolbox_url)
        body.update(
            state=self.shown_state().value,
            env=dict(self.env),
            kvm=False,
            volumes=[],
            buildInfo=self._build_info(),
        )
        return body

    def to_list_item(self, toolbox_url: str) -> dict[str, Any]:
        """``SandboxListItemDto``: one row of ``GET /sandbox`` (raw state, no env)."""
        body = self._common(toolbox_url)
        body["state"] = self.state.value
        return body

    def _build_info(self) -> dict[str, Any] | None:
        if self.build_dockerfile is None:
            return None
        return {
            "dockerfileContent": self.build_dockerfile,
            "contextHashes": [],
            "createdAt": iso(self.created_at),
            "updatedAt": iso(self.created_at),
            "snapshotRef": self.image,
        }
