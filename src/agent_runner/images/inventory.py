"""Our images on the engine, and removing the layers nobody needs any more.

Only images we made are looked at: the tiers carry ``stigmer.sandbox.tier`` (from our
Dockerfiles, wherever they were built or pulled from), layers ``stigmer.image=layer``.
``prune`` only ever removes layers, never a tier, never the configured image, never an
image a container uses. A layer is stale when it can no longer be what a sandbox asks
for: its requirements file is gone or has changed, its base reference now names another
image, or this runner's recipe or CA bundle would make another one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent_runner.config import Settings
from agent_runner.errors import RequirementsError
from agent_runner.images.client import Client, short_id
from agent_runner.images.layers import (
    BASE_LABEL,
    BASE_REFERENCE_LABEL,
    CA_SHA_LABEL,
    KEY_LABEL,
    KIND_LABEL,
    REQUIREMENTS_LABEL,
    REQUIREMENTS_SHA_LABEL,
    ca_bundle,
    layer_key,
)
from agent_runner.requirements import Requirements

TIER_LABEL = "stigmer.sandbox.tier"


@dataclass(frozen=True)
class ImageInfo:
    """One of our images, as ``agent-runner image ls`` shows it."""

    image_id: str
    tags: tuple[str, ...]
    kind: str
    """``basic``, ``full`` (a tier) or ``layer``."""
    size: int
    created: int
    """Seconds since the epoch."""
    labels: dict[str, str] = field(default_factory=dict)
    used_by: tuple[str, ...] = ()
    """Containers (short ids) made from it, running or not."""
    stale: str | None = None
    """Why a layer is no longer what any sandbox would ask for."""
    configured: bool = False
    base_present: bool = True
    """A layer's base is still on the engine (it may be an image of someone else's)."""

    @property
    def base(self) -> str | None:
        return self.labels.get(BASE_LABEL)

    @property
    def base_reference(self) -> str | None:
        return self.labels.get(BASE_REFERENCE_LABEL)

    @property
    def requirements(self) -> str | None:
        return self.labels.get(REQUIREMENTS_LABEL)

    @property
    def name(self) -> str:
        return self.tags[0] if self.tags else short_id(self.image_id)


def list_images(client: Client, settings: Settings) -> list[ImageInfo]:
    """Our tiers and layers, tiers first, each layer after the image it derives from."""
    raw: dict[str, dict[str, Any]] = {}
    for label in (TIER_LABEL, KIND_LABEL):
        for entry in client.api.images(filters={"label": label}):
            raw[entry["Id"]] = entry
    users: dict[str, list[str]] = {}
    for container in client.api.containers(all=True):
        users.setdefault(container.get("ImageID", ""), []).append(container["Id"][:12])
    configured = client.image_id(settings.sandbox_image)
    found = []
    for image_id, entry in raw.items():
        labels = entry.get("Labels") or {}
        layer = labels.get(KIND_LABEL) == "layer"
        tags = tuple(t for t in entry.get("RepoTags") or () if t != "<none>:<none>")
        if not tags and not layer:
            continue  # a tier's older build, replaced under its tag: not ours to manage
        found.append(
            ImageInfo(
                image_id=image_id,
                tags=tags,
                kind="layer" if layer else labels.get(TIER_LABEL, "?"),
                size=int(entry.get("Size") or 0),
                created=int(entry.get("Created") or 0),
                labels=labels,
                used_by=tuple(users.get(image_id, ())),
                stale=_staleness(client, settings, labels) if layer else None,
                configured=image_id == configured,
                base_present=not layer or client.present(labels.get(BASE_LABEL, "")),
            )
        )
    return _ordered(found)


def _ordered(images: list[ImageInfo]) -> list[ImageInfo]:
    """Tiers by name, each followed by the layers built on it; orphaned layers last."""
    bases = sorted((i for i in images if i.kind != "layer"), key=lambda i: i.name)
    layers = sorted((i for i in images if i.kind == "layer"), key=lambda i: -i.created)
    ordered: list[ImageInfo] = []
    for base in bases:
        ordered.append(base)
        ordered.extend(layer for layer in layers if layer.base == base.image_id)
    placed = {i.image_id for i in ordered}
    return ordered + [layer for layer in layers if layer.image_id not in placed]


def _staleness(client: Client, settings: Settings, labels: dict[str, str]) -> str | None:
    path = labels.get(REQUIREMENTS_LABEL, "")
    try:
        current = Requirements.read(Path(path)) if path else None
    except RequirementsError:
        current = None
    if current is None:
        return f"its requirements file {path or '(unknown)'} is gone or unusable"
    if current.sha256 != labels.get(REQUIREMENTS_SHA_LABEL):
        return f"{path} has changed since"
    reference = labels.get(BASE_REFERENCE_LABEL, "")
    if client.image_id(reference) != labels.get(BASE_LABEL):
        return f"{reference or 'its base'} now names another image"
    bundle = ca_bundle(settings)
    ca_sha = _sha_of(bundle) if bundle is not None else None
    if labels.get(CA_SHA_LABEL) != (ca_sha or "none"):
        return "the CA bundle has changed since"
    if layer_key(labels.get(BASE_LABEL, ""), current.sha256, ca_sha) != labels.get(KEY_LABEL):
        return "this runner builds layers another way"
    return None


def _sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Pruned:
    image: ImageInfo
    removed: bool
    why: str


def prune_layers(
    client: Client, settings: Settings, *, everything: bool = False, dry_run: bool = False
) -> list[Pruned]:
    """Remove stale layers (``everything``: all layers) that no container uses and that are
    not the configured image; say for each what happened and why."""
    outcome = []
    for image in list_images(client, settings):
        if image.kind != "layer" or not (everything or image.stale):
            continue
        if image.configured:
            outcome.append(Pruned(image, False, "kept: it is execution.sandbox_image"))
        elif image.used_by:
            outcome.append(Pruned(image, False, f"kept: used by {', '.join(image.used_by)}"))
        else:
            why = image.stale or "not needed (--all)"
            removed = dry_run or _remove(client, image)
            outcome.append(Pruned(image, removed, why if removed else f"kept: {why}, in use"))
    return outcome


def _remove(client: Client, image: ImageInfo) -> bool:
    """Untag and delete it (its untagged parents, the build's ``COPY`` step, go with it)."""
    return (
        all(client.remove_quietly(tag) for tag in image.tags)
        if image.tags
        else (client.remove_quietly(image.image_id))
    )
