"""Our sandboxes on the engine: listing them and removing the orphans.

Only containers labelled ``stigmer.sandbox`` are ever looked at. A sandbox is orphaned
when the runner that made it is gone: its owner pid is dead, or alive but started at
another time (a reused pid); a sandbox made on another host is never judged from here.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent_runner.backends.docker_spec import LABEL, Owner

if TYPE_CHECKING:
    from agent_runner.backends.docker import DockerBackend


@dataclass(frozen=True)
class SandboxInfo:
    """One of our containers, as ``agent-runner sandbox ls`` shows it."""

    container_id: str
    name: str
    execution_id: str
    state: str
    image: str
    created_at: str
    owner: Owner

    @property
    def orphaned(self) -> bool:
        return not self.owner.is_alive()


async def list_sandboxes(backend: DockerBackend) -> list[SandboxInfo]:
    """Containers labelled ``stigmer.sandbox`` (never anyone else's)."""
    api = await backend.api()
    containers = await backend.call(api.containers, all=True, filters={"label": f"{LABEL}=1"})
    found = []
    for container in containers:
        labels = container.get("Labels") or {}
        owner = Owner(
            int(labels.get("stigmer.owner-pid", "0") or 0),
            labels.get("stigmer.owner-host", ""),
            labels.get("stigmer.owner-started", ""),
        )
        names = container.get("Names") or ["?"]
        found.append(
            SandboxInfo(
                container["Id"],
                names[0].lstrip("/"),
                labels.get("stigmer.execution-id", ""),
                container.get("State", ""),
                labels.get("stigmer.image", container.get("Image", "")),
                labels.get("stigmer.created-at", ""),
                owner,
            )
        )
    return found


async def prune_orphans(backend: DockerBackend, *, everything: bool = False) -> list[SandboxInfo]:
    """Remove our containers whose runner is gone (or, with ``everything``, all of ours)."""
    doomed = [s for s in await list_sandboxes(backend) if everything or s.orphaned]
    await asyncio.gather(*(backend.remove(s.container_id) for s in doomed), return_exceptions=True)
    return doomed
