"""Our sandboxes on the engine: listing them and removing the orphans.

Only containers labelled ``stigmer.sandbox`` are ever looked at. A sandbox is orphaned
when the runner that made it is gone (see :mod:`agent_runner.backends.owner`).
"""

from __future__ import annotations

import asyncio

from agent_runner.backends.base import SandboxInfo
from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.spec import LABEL
from agent_runner.backends.owner import CREATED_LABEL, EXECUTION_LABEL, IMAGE_LABEL, Owner


async def list_sandboxes(engine: Engine) -> list[SandboxInfo]:
    """Containers labelled ``stigmer.sandbox`` (never anyone else's)."""
    api = await engine.api()
    containers = await engine.call(api.containers, all=True, filters={"label": f"{LABEL}=1"})
    found = []
    for container in containers:
        labels = container.get("Labels") or {}
        names = container.get("Names") or ["?"]
        found.append(
            SandboxInfo(
                sandbox_id=container["Id"],
                name=names[0].lstrip("/"),
                execution_id=labels.get(EXECUTION_LABEL, ""),
                state=container.get("State", ""),
                image=labels.get(IMAGE_LABEL, container.get("Image", "")),
                created_at=labels.get(CREATED_LABEL, ""),
                owner=Owner.from_labels(labels),
            )
        )
    return found


async def prune_orphans(engine: Engine, *, everything: bool = False) -> list[SandboxInfo]:
    """Remove our containers whose runner is gone (or, with ``everything``, all of ours)."""
    doomed = [s for s in await list_sandboxes(engine) if everything or s.orphaned]
    await asyncio.gather(*(engine.remove(s.sandbox_id) for s in doomed), return_exceptions=True)
    return doomed
