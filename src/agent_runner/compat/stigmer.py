"""The Stigmer worker's ``SandboxManager``, on the Daytona backend's lifecycle.

The worker calls ``SandboxManager(daytona_api_key=..., volume_id=...)``, then
``await get_or_create_daytona_sandbox(sandbox_config, session_id, session_client,
heartbeat_fn)`` and later ``await cleanup_daytona_sandbox(sandbox_id)``; the code after
those calls uses the returned object as the SDK's own **sync** ``daytona.Sandbox``
(``sandbox.id``, ``sandbox.process.exec(...)``, ``sandbox.fs...``), so that is what comes
back. Everything before it is :class:`~agent_runner.backends.daytona.lifecycle.Lifecycle`
on ``AsyncDaytona``: the sandbox the session stored (``session.spec.sandbox_id``), else
the one labelled with the session's id, revived as the worker revives it (started,
stopped, archived, recoverable error) and health-checked with ``echo``; else a new one
from ``sandbox_config["snapshot_id"]`` with the worker's intervals, whose id is stored
with ``session_client.update_sandbox_id``. A create that fails deletes what it made.

``{"type": "filesystem", "root_dir": ...}`` configs run on the host instead:
:meth:`SandboxManager.open_session` gives a :class:`~agent_runner.Session` in LOCAL mode
rooted there (and a SANDBOX one on Daytona for a Daytona config).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from agent_runner.backends.daytona.client import api_key, api_url, connect
from agent_runner.backends.daytona.lifecycle import Lifecycle
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings, current_settings
from agent_runner.config.sections import DaytonaSettings
from agent_runner.errors import InvalidSetting, SandboxUnavailable
from agent_runner.modes import ExecutionMode
from agent_runner.runner import Runner
from agent_runner.session import Session
from daytona import AsyncDaytona, AsyncSandbox, Daytona, DaytonaConfig, DaytonaError, Sandbox

logger = logging.getLogger("agent_runner")

HEARTBEAT_SECONDS = 30.0
"""How often ``heartbeat_fn`` hears from a create that is still under way (the worker's)."""
READY_SECONDS = 180.0
READY_POLL_SECONDS = 2.0
WORKER_INTERVALS = {"auto_stop_interval": 5, "auto_archive_interval": 5, "auto_delete_interval": -1}
"""Minutes: the worker's sandboxes stop after 5 idle minutes, archive 5 minutes later and are
never deleted by Daytona (the session may come back to them)."""


class SandboxConfigError(InvalidSetting, ValueError):
    """A ``sandbox_config`` or key the worker would reject with ``ValueError`` too."""


class SandboxCreationError(SandboxUnavailable, RuntimeError):
    """What the worker raised as ``RuntimeError`` when a sandbox could not be had."""


class SandboxManager:
    """Daytona sandboxes for the Stigmer worker: reuse, revival, creation, cleanup."""

    def __init__(self, daytona_api_key: str | None = None, volume_id: str | None = None) -> None:
        self._api_key = daytona_api_key
        self._volume_id = volume_id
        """Kept for the signature; the worker's volume mounts are disabled too (FUSE+S3
        volumes write about a file a second)."""
        self._owner = Owner.current()
        self._client: AsyncDaytona | None = None
        self._lifecycles: dict[str | None, Lifecycle] = {}
        self._sync: Daytona | None = None
        self._runner: Runner | None = None

    def _settings(self, snapshot: str | None = None) -> DaytonaSettings:
        daytona = current_settings().sandbox.daytona
        update: dict[str, Any] = {}
        if self._api_key:
            update["api_key"] = self._api_key
        if snapshot:
            update.update(snapshot=snapshot, image=None)
        settings = DaytonaSettings.model_validate(
            {**daytona.model_dump(exclude_unset=True), **update, **WORKER_INTERVALS}
        )
        try:
            api_key(settings)
        except InvalidSetting as error:
            raise SandboxConfigError(f"DAYTONA_API_KEY required for cloud mode: {error}") from None
        return settings

    def _lifecycle(self, snapshot: str | None = None) -> Lifecycle:
        """One per snapshot, on one client; each owns its background deletions."""
        if snapshot not in self._lifecycles:
            settings = self._settings(snapshot)
            if self._client is None:
                self._client = connect(settings)
            self._lifecycles[snapshot] = Lifecycle(
                self._client, settings, self._owner, cleanup=False
            )
        return self._lifecycles[snapshot]

    # -- the worker's calls -----------------------------------------------------------

    async def get_or_create_daytona_sandbox(
        self,
        sandbox_config: dict[str, Any],
        session_id: str | None,
        session_client: Any | None,
        heartbeat_fn: Callable[[str], None] | None = None,
    ) -> tuple[Sandbox, bool]:
        """``(sandbox, is_new)``: the session's sandbox, revived, or a new one."""
        snapshot = _daytona_snapshot(sandbox_config)
        lifecycle = self._lifecycle(snapshot)
        if session_id and session_client:
            existing = await self._reusable(lifecycle, session_id, session_client)
            if existing is not None:
                return await self._sync_sandbox(lifecycle, existing.id), False
        execution_id = session_id or f"ephemeral-{uuid.uuid4().hex[:12]}"
        async with _heartbeats(heartbeat_fn) as phase:
            sandbox = await lifecycle.create(execution_id, labels={"stigmer.client": "worker"})
            phase[0] = f"sandbox_polling:{sandbox.id}"
            if heartbeat_fn is not None:
                heartbeat_fn(f"sandbox_created:{sandbox.id}")
            try:
                await self._until_ready(sandbox)
            except BaseException:
                lifecycle.delete_later(sandbox)
                raise
        if session_id and session_client:
            try:
                await session_client.update_sandbox_id(session_id, sandbox.id)
            except Exception as error:  # the worker continues without it too
                logger.error(
                    "could not store sandbox %s in session %s: %s", sandbox.id, session_id, error
                )
        return await self._sync_sandbox(lifecycle, sandbox.id), True

    async def cleanup_daytona_sandbox(self, sandbox_id: str) -> None:
        """Delete ``sandbox_id``, best effort (a failure is logged, never raised)."""
        try:
            lifecycle = self._lifecycle()
            sandbox = await lifecycle.get(sandbox_id)
            if sandbox is not None:
                await lifecycle.delete(sandbox)
        except Exception as error:
            logger.error("could not delete Daytona sandbox %s: %s", sandbox_id, error)

    # -- reuse ---------------------------------------------------------------------------

    async def _reusable(
        self, lifecycle: Lifecycle, session_id: str, session_client: Any
    ) -> AsyncSandbox | None:
        """The sandbox the session stored, else the one labelled with its id, if it can be
        brought back and answers."""
        candidates: list[AsyncSandbox] = []
        try:
            session = await session_client.get(session_id)
            stored = getattr(getattr(session, "spec", None), "sandbox_id", None)
            if stored:
                found = await lifecycle.get(str(stored))
                candidates += [found] if found is not None else []
        except Exception as error:
            logger.error("could not read session %s: %s", session_id, error)
        if not candidates:
            with contextlib.suppress(SandboxUnavailable):
                candidates = await lifecycle.find(session_id)
        for sandbox in candidates:
            if await lifecycle.revive(sandbox) and await _answers(sandbox):
                await lifecycle.adopt(sandbox, session_id)
                return sandbox
            logger.warning("Daytona sandbox %s cannot be reused; creating another", sandbox.id)
        return None

    async def _until_ready(self, sandbox: AsyncSandbox) -> None:
        """Until ``echo ready`` works in it, as the worker waits (at most 180 s)."""
        deadline = time.monotonic() + READY_SECONDS
        while not await _answers(sandbox):
            if time.monotonic() > deadline:
                raise SandboxCreationError(
                    f"Daytona sandbox {sandbox.id} failed to start within {READY_SECONDS:g} seconds"
                )
            await asyncio.sleep(READY_POLL_SECONDS)

    async def _sync_sandbox(self, lifecycle: Lifecycle, sandbox_id: str) -> Sandbox:
        """The SDK's sync object for ``sandbox_id``, which the worker's code goes on using."""
        settings = lifecycle.settings
        if self._sync is None:
            config = DaytonaConfig(
                api_key=api_key(settings), api_url=api_url(settings), target=settings.target
            )
            self._sync = await asyncio.to_thread(Daytona, config)
        try:
            return await asyncio.to_thread(self._sync.get, sandbox_id)
        except DaytonaError as error:
            raise SandboxCreationError(
                f"could not hand over Daytona sandbox {sandbox_id}: {error}"
            ) from None

    # -- host or sandbox, by config ------------------------------------------------------

    async def open_session(self, sandbox_config: Mapping[str, Any], session_id: str) -> Session:
        """A :class:`~agent_runner.Session` for ``sandbox_config``: ``filesystem`` is LOCAL
        in its ``root_dir``, ``daytona`` is SANDBOX on Daytona from its snapshot."""
        kind = sandbox_config.get("type")
        if kind == "filesystem":
            root = sandbox_config.get("root_dir")
            if not root:
                raise SandboxConfigError("a filesystem sandbox_config needs root_dir")
            runner = await self._runner_for(Settings(mode="local"))
            return runner.session(session_id, mode=ExecutionMode.LOCAL, cwd=str(root))
        snapshot = _daytona_snapshot(dict(sandbox_config))
        daytona = self._settings(snapshot)
        runner = await self._runner_for(
            Settings(mode="sandbox", sandbox={"backend": "daytona", "daytona": daytona})
        )
        return runner.session(session_id, mode=ExecutionMode.SANDBOX)

    async def _runner_for(self, settings: Settings) -> Runner:
        if self._runner is None or self._runner.settings != settings:
            if self._runner is not None:
                await self._runner.close()
            self._runner = Runner(settings)
        return self._runner

    async def close(self) -> None:
        """Release the clients (not in the worker's interface; the worker never closed its)."""
        if self._runner is not None:
            await self._runner.close()
        for lifecycle in self._lifecycles.values():
            await lifecycle.close()
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]  # the SDK leaves it bare
            self._client = None
        dispatcher = getattr(self._sync, "_event_dispatcher", None)
        if dispatcher is not None:
            await asyncio.to_thread(dispatcher.disconnect)
        self._sync = None


def _daytona_snapshot(sandbox_config: Any) -> str | None:
    if not isinstance(sandbox_config, dict):
        raise SandboxConfigError(
            f"sandbox_config must be a dictionary, got {type(sandbox_config).__name__}"
        )
    kind = sandbox_config.get("type")
    if kind != "daytona":
        raise SandboxConfigError(f"Only 'daytona' sandbox type supported, got: {kind}")
    snapshot = sandbox_config.get("snapshot_id")
    return str(snapshot) if snapshot else None


async def _answers(sandbox: AsyncSandbox) -> bool:
    """The worker's health check: ``echo`` answers with exit code 0."""
    try:
        result = await sandbox.process.exec("echo ready", timeout=5)
    except DaytonaError as error:
        logger.debug("Daytona sandbox %s not ready: %s", sandbox.id, error)
        return False
    return result.exit_code == 0


@contextlib.asynccontextmanager
async def _heartbeats(heartbeat_fn: Callable[[str], None] | None) -> AsyncIterator[list[str]]:
    """Call ``heartbeat_fn`` every :data:`HEARTBEAT_SECONDS` while inside, with the phase
    the caller keeps in the yielded list (and the seconds so far)."""
    phase = ["sandbox_creating"]
    if heartbeat_fn is None:
        yield phase
        return
    beat = heartbeat_fn
    started = time.monotonic()

    async def tick() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            beat(f"{phase[0]}:{time.monotonic() - started:.0f}s")

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield phase
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
