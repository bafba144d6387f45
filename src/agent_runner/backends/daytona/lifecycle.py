"""Where a session's Daytona sandbox comes from: found again, revived, or made.

A sandbox carries the runner's labels (:mod:`agent_runner.backends.owner`): the execution
id and the runner that made it. A runner that restarts and opens the same execution finds
it by those labels and takes it over instead of paying for another; the Stigmer worker's
:class:`~agent_runner.compat.stigmer.SandboxManager` finds it by id. Either way the state
decides, as the worker's own chain does: ``started`` is used, ``stopped``/``archived`` are
started, a recoverable ``error`` is recovered, a transition is waited out, anything else is
deleted and replaced. A create that fails, times out or is cancelled deletes what it made.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Mapping
from typing import Any

from agent_runner.backends.daytona.client import (
    REQUEST_TIMEOUT,
    explain,
    is_missing_snapshot,
    missing_snapshot,
)
from agent_runner.backends.owner import EXECUTION_LABEL, OWNER_PREFIX, SANDBOX_LABEL, Owner
from agent_runner.config.sections import DaytonaSettings
from agent_runner.errors import SandboxUnavailable
from daytona import (
    AsyncDaytona,
    AsyncSandbox,
    CreateSandboxFromImageParams,
    CreateSandboxFromSnapshotParams,
    DaytonaConflictError,
    DaytonaError,
    DaytonaNotFoundError,
    DaytonaTimeoutError,
    ListSandboxesQuery,
    Resources,
)

logger = logging.getLogger("agent_runner")

TOOLBOX_LANGUAGE_LABEL = "code-toolbox-language"
"""The SDK adds it to every create; ``set_labels`` replaces all labels, so it is kept."""
STARTING = frozenset(
    {"starting", "restoring", "creating", "pending_build", "building_snapshot", "pulling_snapshot"}
)
STOPPING = frozenset({"stopping", "archiving"})
SETTLE_SECONDS = 1.0


def state_of(sandbox: AsyncSandbox) -> str:
    state = sandbox.state
    return str(getattr(state, "value", state) or "unknown").lower()


def sandbox_name(execution_id: str) -> str:
    """A unique name, so a create whose answer never came can still be found and deleted."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", execution_id.lower()).strip("-")[:40] or "session"
    return f"stigmer-{cleaned}-{secrets.token_hex(3)}"


class Lifecycle:
    """Finds, revives, creates and deletes the sandboxes of one client and settings."""

    def __init__(
        self, client: AsyncDaytona, settings: DaytonaSettings, owner: Owner, *, cleanup: bool
    ) -> None:
        self.client = client
        self.settings = settings
        self.owner = owner
        self.cleanup = cleanup
        self._background: set[asyncio.Task[None]] = set()

    @property
    def source(self) -> str:
        """What sandboxes start from, as the labels and messages name it."""
        return self.settings.image or self.settings.snapshot or "default snapshot"

    # -- finding and reviving ----------------------------------------------------------

    async def find(self, execution_id: str) -> list[AsyncSandbox]:
        """Our sandboxes of ``execution_id``, newest first."""
        query = ListSandboxesQuery(labels={SANDBOX_LABEL: "1", EXECUTION_LABEL: execution_id})
        try:
            return [s async for s in self.client.list(query, request_timeout=REQUEST_TIMEOUT)]
        except DaytonaError as error:
            raise explain(error, "list sandboxes", self.settings) from None

    async def get(self, sandbox_id: str) -> AsyncSandbox | None:
        try:
            return await self.client.get(sandbox_id, request_timeout=REQUEST_TIMEOUT)
        except DaytonaNotFoundError:
            return None
        except DaytonaError as error:
            raise explain(error, f"look up sandbox {sandbox_id}", self.settings) from None

    async def revive(self, sandbox: AsyncSandbox) -> bool:
        """Bring ``sandbox`` to ``started``; ``False`` when it cannot be (replace it)."""
        timeout = self.settings.create_timeout
        try:
            state = state_of(sandbox)
            if state in STOPPING:
                state = await self._settle(sandbox)
            if state == "started":
                return True
            if state in ("stopped", "archived"):
                logger.info("starting Daytona sandbox %s (it was %s)", sandbox.id, state)
                await sandbox.start(timeout=timeout)
            elif state == "error" and sandbox.recoverable:
                logger.info("recovering Daytona sandbox %s: %s", sandbox.id, sandbox.error_reason)
                await sandbox.recover(timeout=timeout)
            elif state in STARTING:
                await sandbox.wait_for_sandbox_start(timeout=timeout)
            else:
                reason = f": {sandbox.error_reason}" if sandbox.error_reason else ""
                logger.warning(
                    "Daytona sandbox %s is %s%s; replacing it", sandbox.id, state, reason
                )
                return False
        except DaytonaError as error:
            logger.warning("could not revive Daytona sandbox %s: %s", sandbox.id, error)
            return False
        return state_of(sandbox) == "started"

    async def _settle(self, sandbox: AsyncSandbox) -> str:
        """Wait out a stop or an archive in progress (actions answer 409 meanwhile)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.create_timeout
        while state_of(sandbox) in STOPPING and loop.time() < deadline:
            await asyncio.sleep(SETTLE_SECONDS)
            await sandbox.refresh_data(request_timeout=REQUEST_TIMEOUT)
        return state_of(sandbox)

    async def adopt(self, sandbox: AsyncSandbox, execution_id: str) -> None:
        """Write this runner on a sandbox another runner made (one request, only if needed)."""
        current = dict(sandbox.labels or {})
        if Owner.from_labels(current) == self.owner:
            return
        mine = self.owner.labels(execution_id, self.source)
        owner = {k: v for k, v in mine.items() if k not in current or k.startswith(OWNER_PREFIX)}
        try:
            await sandbox.set_labels({**current, **owner}, request_timeout=REQUEST_TIMEOUT)
        except DaytonaError as error:
            logger.warning("could not relabel Daytona sandbox %s: %s", sandbox.id, error)

    # -- creating and deleting ---------------------------------------------------------

    async def create(
        self, execution_id: str, *, labels: Mapping[str, str] | None = None, **overrides: Any
    ) -> AsyncSandbox:
        """A new started sandbox for ``execution_id``.

        Shielded from cancellation: the create finishes in the background and what it made
        is deleted, since a create abandoned half-way leaves a sandbox nobody knows.
        """
        name = sandbox_name(execution_id)
        task = asyncio.ensure_future(self._create(execution_id, name, labels or {}, overrides))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            self._spawn(self._discard_created(task, name))
            raise

    async def _create(
        self, execution_id: str, name: str, labels: Mapping[str, str], overrides: dict[str, Any]
    ) -> AsyncSandbox:
        params = self._params(execution_id, name, labels, overrides)
        try:
            return await self.client.create(params, timeout=self.settings.create_timeout)
        except DaytonaTimeoutError as error:
            self._spawn(self._delete_by(error.sandbox_id or name))
            raise explain(error, "create a sandbox", self.settings) from None
        except DaytonaError as error:
            self._spawn(self._delete_by(name))
            if is_missing_snapshot(error):
                raise await missing_snapshot(self.client, self.settings.snapshot) from None
            raise explain(error, "create a sandbox", self.settings) from None

    def _params(
        self, execution_id: str, name: str, labels: Mapping[str, str], overrides: dict[str, Any]
    ) -> CreateSandboxFromSnapshotParams | CreateSandboxFromImageParams:
        settings = self.settings
        auto_delete = settings.auto_delete_interval
        if auto_delete is None:
            auto_delete = 60 if self.cleanup else -1
        common: dict[str, Any] = {
            "name": name,
            "labels": {
                **settings.labels,
                **labels,
                **self.owner.labels(execution_id, self.source),
            },
            "auto_stop_interval": settings.auto_stop_interval,
            "auto_archive_interval": settings.auto_archive_interval,
            "auto_delete_interval": None if settings.ephemeral else auto_delete,
            "ephemeral": settings.ephemeral or None,
            "network_block_all": settings.network_block_all or None,
            "network_allow_list": settings.network_allow_list,
            **overrides,
        }
        if settings.image:
            sized = any((settings.cpu, settings.memory, settings.disk))
            resources = (
                Resources(cpu=settings.cpu, memory=settings.memory, disk=settings.disk)
                if sized
                else None
            )
            return CreateSandboxFromImageParams(image=settings.image, resources=resources, **common)
        return CreateSandboxFromSnapshotParams(snapshot=settings.snapshot, **common)

    async def _discard_created(self, task: asyncio.Future[AsyncSandbox], name: str) -> None:
        try:
            sandbox = await task
        except BaseException:
            return  # the create failed, and deleted what it made itself
        await self._delete_quietly(sandbox)

    async def _delete_by(self, id_or_name: str) -> None:
        """Delete what a failed create may have left (it may not exist). A sandbox still
        starting refuses (409) until it is done, so this waits it out, within bounds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.create_timeout + REQUEST_TIMEOUT
        while True:
            try:
                sandbox = await self.client.get(id_or_name, request_timeout=REQUEST_TIMEOUT)
                await sandbox.delete(timeout=REQUEST_TIMEOUT, wait=True)
                logger.info("deleted Daytona sandbox %s left by a failed create", sandbox.id)
                return
            except DaytonaNotFoundError:
                return
            except DaytonaConflictError:
                if loop.time() > deadline:
                    break
                await asyncio.sleep(SETTLE_SECONDS)
            except DaytonaError as error:
                logger.warning("could not delete Daytona sandbox %s: %s", id_or_name, error)
                return
        logger.warning("could not delete Daytona sandbox %s: it stayed busy", id_or_name)

    async def delete(self, sandbox: AsyncSandbox, *, wait: bool = False) -> None:
        """Delete ``sandbox``: one request, and with ``wait`` until Daytona says it is
        destroyed (what a closing backend does, so nothing is left half-removed)."""
        try:
            await sandbox.delete(timeout=self.settings.create_timeout, wait=wait)
        except DaytonaNotFoundError:
            return
        except DaytonaError as error:
            raise explain(error, f"delete sandbox {sandbox.id}", self.settings) from None

    def delete_later(self, sandbox: AsyncSandbox) -> None:
        """Delete in the background (a closing shell does not wait); :meth:`close` waits
        until it is destroyed."""
        self._spawn(self._delete_quietly(sandbox))

    async def _delete_quietly(self, sandbox: AsyncSandbox) -> None:
        try:
            await self.delete(sandbox, wait=True)
        except SandboxUnavailable as error:
            logger.warning("%s", error)

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Wait for the deletions still under way."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
