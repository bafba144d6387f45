"""Our sandboxes in the Daytona organization: listing them and removing the orphans.

Only sandboxes labelled ``stigmer.sandbox=1`` are ever looked at. The orphan rule is the
Docker backend's (:mod:`agent_runner.backends.owner`): a sandbox whose runner is gone. A
runner does not sweep orphans by itself here, unlike Docker: a cloud sandbox outlives its
runner on purpose (``cleanup=false``, or a crash) so that a restarted runner can take it
over, and Daytona's own auto-stop and auto-delete already bound what one costs.
"""

from __future__ import annotations

import asyncio

from agent_runner.backends.base import SandboxInfo
from agent_runner.backends.daytona.client import REQUEST_TIMEOUT, explain
from agent_runner.backends.daytona.lifecycle import Lifecycle, state_of
from agent_runner.backends.owner import (
    CREATED_LABEL,
    EXECUTION_LABEL,
    IMAGE_LABEL,
    SANDBOX_LABEL,
    Owner,
)
from agent_runner.config.sections import DaytonaSettings
from daytona import AsyncDaytona, AsyncSandbox, DaytonaError, ListSandboxesQuery


def describe(sandbox: AsyncSandbox) -> SandboxInfo:
    labels = dict(sandbox.labels or {})
    return SandboxInfo(
        sandbox_id=str(sandbox.id),
        name=str(sandbox.name or sandbox.id),
        execution_id=labels.get(EXECUTION_LABEL, ""),
        state=state_of(sandbox),
        image=labels.get(IMAGE_LABEL, str(sandbox.snapshot or "")),
        created_at=labels.get(CREATED_LABEL, str(sandbox.created_at or "")),
        owner=Owner.from_labels(labels),
    )


async def our_sandboxes(
    client: AsyncDaytona, settings: DaytonaSettings
) -> list[tuple[AsyncSandbox, SandboxInfo]]:
    """Every sandbox labelled ours, with what ``agent-runner sandbox ls`` shows of it."""
    query = ListSandboxesQuery(labels={SANDBOX_LABEL: "1"})
    try:
        found = [s async for s in client.list(query, request_timeout=REQUEST_TIMEOUT)]
    except DaytonaError as error:
        raise explain(error, "list sandboxes", settings) from None
    return [(sandbox, describe(sandbox)) for sandbox in found]


async def prune(lifecycle: Lifecycle, *, everything: bool = False) -> list[SandboxInfo]:
    """Delete our sandboxes whose runner is gone (with ``everything``, all of ours)."""
    found = await our_sandboxes(lifecycle.client, lifecycle.settings)
    doomed = [(s, info) for s, info in found if everything or info.orphaned]
    await asyncio.gather(*(lifecycle.delete(s, wait=True) for s, _ in doomed))
    return [info for _, info in doomed]
