"""What a create request means: the body of ``POST /sandbox`` turned into a record.

From a snapshot (``createFromSnapshot``): the snapshot must exist (else 400 "Snapshot X
not found. Did you add it through the Daytona Dashboard?"), its resources are the
sandbox's, and a body that names resources is refused. From an image (``buildInfo``,
what ``CreateSandboxFromImageParams`` sends as ``FROM <image>``): a Dockerfile that is
only ``FROM`` uses that local image as it is; anything more is built locally with no
context. Defaults are the entity's: auto-stop 15 min, auto-archive 7 days (0 means the
30-day maximum), auto-delete off (-1), user ``daytona`` unless the image names another.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.fakes.daytona.config import EmulatorConfig, SnapshotSpec
from tests.fakes.daytona.containers import FALLBACK_USER, Containers, ImageMissing
from tests.fakes.daytona.errors import ApiError
from tests.fakes.daytona.models import MAX_AUTO_ARCHIVE, SandboxRecord, State


async def new_record(
    body: dict[str, Any],
    config: EmulatorConfig,
    snapshots: dict[str, SnapshotSpec],
    containers: Containers,
) -> tuple[SandboxRecord, str | None]:
    """The record a create body describes, and the user it asked for (if any)."""
    build = body.get("buildInfo")
    snapshot_name: str | None = None
    dockerfile: str | None = None
    if build:
        if build.get("contextHashes"):
            raise ApiError(400, "Build contexts are not supported by the Daytona emulator")
        dockerfile = str(build.get("dockerfileContent") or "")
        image = _base_image(dockerfile)
        cpu, memory = int(body.get("cpu") or 1), int(body.get("memory") or 1)
        disk = int(body.get("disk") or 3)
        spec_user = None
    else:
        snapshot_name = body.get("snapshot") or config.default_snapshot_name()
        spec = snapshots.get(str(snapshot_name or ""))
        if spec is None:
            raise ApiError(
                400,
                f"Snapshot {snapshot_name} not found. Did you add it through the Daytona Dashboard?",
            )
        image, cpu, memory, disk, spec_user = (
            spec.image,
            spec.cpu,
            spec.memory,
            spec.disk,
            spec.user,
        )
    explicit_user = body.get("user") or spec_user
    sandbox_id = str(uuid.uuid4())
    record = SandboxRecord(
        id=sandbox_id,
        name=body.get("name") or sandbox_id,
        organization_id=config.organization_id,
        snapshot=snapshot_name,
        image=image or "",
        user=explicit_user or await _image_user(containers, image),
        target=body.get("target") or config.target,
        cpu=cpu,
        memory=memory,
        disk=disk,
        env=dict(body.get("env") or {}),
        labels=dict(body.get("labels") or {}),
        public=bool(body.get("public")),
        network_block_all=bool(body.get("networkBlockAll")),
        network_allow_list=body.get("networkAllowList"),
        domain_allow_list=body.get("domainAllowList"),
        build_dockerfile=dockerfile,
        state=State.PENDING_BUILD if dockerfile and not image else State.UNKNOWN,
    )
    if body.get("autoStopInterval") is not None:
        record.auto_stop_interval = int(body["autoStopInterval"])
    if body.get("autoArchiveInterval") is not None:
        record.auto_archive_interval = archive_interval(int(body["autoArchiveInterval"]))
    if body.get("autoDeleteInterval") is not None:
        record.auto_delete_interval = int(body["autoDeleteInterval"])
    return record, explicit_user


async def _image_user(containers: Containers, image: str | None) -> str:
    if not image:
        return FALLBACK_USER
    try:
        info = await containers.image_info(image)
    except ImageMissing:
        return FALLBACK_USER
    return FALLBACK_USER if info.user in ("", "root", "0", "0:0") else info.user


def archive_interval(value: int) -> int:
    return MAX_AUTO_ARCHIVE if value <= 0 else min(value, MAX_AUTO_ARCHIVE)


def _base_image(dockerfile: str) -> str | None:
    """The image of a Dockerfile that is only ``FROM <image>``; ``None`` if it needs a build."""
    lines = [
        line.strip()
        for line in dockerfile.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    if len(lines) == 1 and lines[0].upper().startswith("FROM "):
        return lines[0].split()[1]
    return None
