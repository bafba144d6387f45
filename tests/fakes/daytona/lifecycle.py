"""Activity and the automatic lifecycle: auto-stop, auto-archive, auto-delete.

What counts as activity in real Daytona (v0.190, and the docs' "What resets the timer"):

- every state change (``sandbox.repository.ts`` upserts ``lastActivityAt``);
- ``POST /sandbox/{id}/last-activity`` (the SDK's ``refresh_activity``), throttled by the
  API to one update per 5 s (``SANDBOX_ACTIVITY_THROTTLE_TTL_SECONDS``);
- every toolbox request through the proxy, which calls that endpoint when the request
  arrives and *again every 50 s while the request stays open* (websocket log streams
  included), with its own 45 s cache in front (``apps/proxy/pkg/proxy/get_sandbox_target.go``).

What does not: processes running in the sandbox (issues #2007, #3193; "auto-stop triggers
even if there are internal processes running"), and plain API reads such as ``get`` or
``list`` ("SDK requests that are not toolbox actions").

Every 10 s the API stops started sandboxes whose activity is older than
``autoStopInterval`` minutes (deleting ephemeral ones), archives stopped ones older than
``autoArchiveInterval`` and deletes stopped ones older than ``autoDeleteInterval`` (>= 0)
(``sandbox.manager.ts``). All these times are scaled by ``minute_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from tests.fakes.daytona.containers import INSTANCE_LABEL, LABEL, LABEL_VALUE
from tests.fakes.daytona.errors import ApiError
from tests.fakes.daytona.models import Desired, SandboxRecord, State
from tests.fakes.daytona.sandboxes import SandboxService

CHECK_MINUTES = 10 / 60
API_THROTTLE_MINUTES = 5 / 60
PROXY_CACHE_MINUTES = 45 / 60
PROXY_POLL_MINUTES = 50 / 60


@dataclass
class _Throttle:
    api_until: dict[str, float] = field(default_factory=dict)
    proxy_until: dict[str, float] = field(default_factory=dict)


class Lifecycle:
    """Records activity and runs the periodic lifecycle checks of one instance."""

    def __init__(self, service: SandboxService) -> None:
        self.service = service
        self._throttle = _Throttle()
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def _minute(self) -> float:
        return self.service.config.minute_seconds

    # -- activity ------------------------------------------------------------------
    def api_activity(self, record: SandboxRecord) -> None:
        """``POST /sandbox/{id}/last-activity``: at most one update per 5 s."""
        now = time.monotonic()
        if now < self._throttle.api_until.get(record.id, 0.0):
            return
        self._throttle.api_until[record.id] = now + API_THROTTLE_MINUTES * self._minute
        self.service.touch(record)

    def proxy_activity(self, record: SandboxRecord) -> None:
        """A toolbox request passing the proxy (behind its 45 s cache)."""
        now = time.monotonic()
        if now < self._throttle.proxy_until.get(record.id, 0.0):
            return
        self._throttle.proxy_until[record.id] = now + PROXY_CACHE_MINUTES * self._minute
        self.api_activity(record)

    @contextlib.asynccontextmanager
    async def open_request(self, record: SandboxRecord):  # type: ignore[no-untyped-def]
        """Activity at the start of a toolbox request and every 50 s while it is open."""
        self.proxy_activity(record)

        async def keep_alive() -> None:
            while True:
                await asyncio.sleep(PROXY_POLL_MINUTES * self._minute)
                self.proxy_activity(record)

        poller = asyncio.create_task(keep_alive())
        try:
            yield
        finally:
            poller.cancel()

    # -- periodic checks -----------------------------------------------------------
    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._check_forever()))
        self._tasks.append(asyncio.create_task(self._watch_containers()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(CHECK_MINUTES * self._minute)
            try:
                await self.check()
            except Exception:  # a failed pass must not end the checks
                continue

    async def check(self) -> None:
        """One pass of the auto-stop, auto-archive and auto-delete checks."""
        now = time.monotonic()
        for record in list(self.service.records.values()):
            idle_minutes = (now - record.activity_clock) / self._minute
            if record.pending:
                continue
            try:
                if (
                    record.state is State.STARTED
                    and record.desired is Desired.STARTED
                    and record.auto_stop_interval != 0
                    and idle_minutes > record.auto_stop_interval
                ):
                    await self.service.stop(record.id)
                elif record.state is State.STOPPED and record.desired is Desired.STOPPED:
                    if 0 <= record.auto_delete_interval < idle_minutes:
                        await self.service.delete(record.id)
                    elif idle_minutes > record.auto_archive_interval:
                        await self.service.archive(record.id)
            except ApiError:
                continue

    async def _watch_containers(self) -> None:
        """Container deaths the service did not cause: crash, OOM kill, ``docker rm``."""
        labels = {LABEL: LABEL_VALUE, INSTANCE_LABEL: self.service.containers.instance_id}
        while True:
            try:
                async for event in self.service.containers.engine.events(labels):
                    action = str(event.get("Action") or event.get("status") or "")
                    if action in ("die", "destroy"):
                        container_id = str(event.get("id") or event.get("Actor", {}).get("ID"))
                        await self.service.container_exited(
                            container_id, removed=action == "destroy"
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                await asyncio.sleep(1.0)
