"""The sandbox service: records, the state machine, and the containers behind it.

It follows ``apps/api/src/sandbox/services/sandbox.service.ts`` (v0.190): the same
preconditions and messages for each action, the same ``state``/``desired``/``pending``
bookkeeping, and the same lifecycle:

- create: ``creating`` (``pending_build``/``building_snapshot`` when built from an image)
  -> ``started``; the create call itself waits up to 30 s for ``started`` when it is from
  a snapshot, and answers 400 "Sandbox failed to start: <reason>" if it lands in error;
- stop: ``stopping`` -> ``stopped`` (container stopped, filesystem kept); an ephemeral
  sandbox (``autoDeleteInterval`` 0) is deleted instead;
- archive (only from ``stopped``): ``archiving`` -> ``archived``; start revives stopped
  and archived sandboxes (``restoring`` first for the latter) and waits up to 30 s too;
- error: ``errorReason`` + ``recoverable``; recover (only when recoverable) goes back to
  stopped and starts; start/stop/archive of an errored sandbox is 400;
- delete: ``destroying`` -> ``destroyed`` (container removed); a destroyed sandbox is 404.
  A sandbox in the middle of a transition (``pending``) answers 409 to stop/start/delete.

Every state change is also activity (``sandbox.repository.ts``) and is published to the
notification gateway as ``sandbox.state.updated``. What a create body means lives in
:mod:`creation`, lookups and the list in :mod:`listing`, the containers in :mod:`fleet`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.fakes.daytona import creation, listing
from tests.fakes.daytona.config import EmulatorConfig, SnapshotSpec
from tests.fakes.daytona.containers import Containers, ImageMissing, SandboxContainer
from tests.fakes.daytona.errors import ApiError
from tests.fakes.daytona.faults import Faults
from tests.fakes.daytona.fleet import Fleet
from tests.fakes.daytona.models import Desired, SandboxRecord, State
from tests.fakes.daytona.runtime import Runtime

Publisher = Callable[[str, dict[str, Any], str], Awaitable[None]]
START_WAIT_SECONDS = 30.0
ERRORED = listing.ERRORED
IN_PROGRESS = "Sandbox state change in progress"


class SandboxService:
    """All sandboxes of one emulator instance."""

    def __init__(
        self,
        config: EmulatorConfig,
        containers: Containers,
        faults: Faults,
        toolbox_url: Callable[[], str],
    ) -> None:
        self.config = config
        self.containers = containers
        self.faults = faults
        self.toolbox_url = toolbox_url
        self.snapshots: dict[str, SnapshotSpec] = config.snapshot_specs()
        self.records: dict[str, SandboxRecord] = {}
        self.build_logs: dict[str, list[str]] = {}
        self.fleet = Fleet(containers)
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Condition()
        self.publish: Publisher | None = None

    # -- lookups -------------------------------------------------------------------
    def find(self, id_or_name: str) -> SandboxRecord:
        return listing.find(self.records, id_or_name)

    def runtime(self, sandbox_id: str) -> Runtime | None:
        return self.fleet.runtime(sandbox_id)

    def container(self, sandbox_id: str) -> SandboxContainer | None:
        return self.fleet.container(sandbox_id)

    def dto(self, record: SandboxRecord) -> dict[str, Any]:
        return record.to_dto(self.toolbox_url())

    def list(self, query: dict[str, str], states: list[str]) -> dict[str, Any]:
        return listing.page(self.records.values(), query, states, self.toolbox_url())

    # -- actions -------------------------------------------------------------------
    async def create(self, body: dict[str, Any]) -> SandboxRecord:
        if body.get("buildInfo") and body.get("snapshot"):
            raise ApiError(400, "Cannot specify a snapshot when using a build info entry")
        if not body.get("buildInfo") and any(body.get(k) for k in ("cpu", "gpu", "memory", "disk")):
            raise ApiError(400, "Cannot specify Sandbox resources when using a snapshot")
        self._check_quota()
        name = body.get("name")
        if name and any(
            r.name == name and r.state is not State.DESTROYED for r in self.records.values()
        ):
            raise ApiError(409, f"Sandbox with name {name} already exists")
        record, explicit_user = await creation.new_record(
            body, self.config, self.snapshots, self.containers
        )
        self.records[record.id] = record
        await self._publish("sandbox.created", self.dto(record))
        self._spawn(self._provision(record, explicit_user))
        if not record.build_dockerfile:
            await self._wait_started(record)
        return record

    async def start(self, id_or_name: str) -> SandboxRecord:
        record = self.find(id_or_name)
        if record.state is State.STARTED and record.desired is Desired.STARTED:
            return record
        self._assert_not_errored(record)
        if record.state.value != record.desired.value and not (
            record.desired is Desired.ARCHIVED and record.state in (State.STOPPED, State.ARCHIVING)
        ):
            raise ApiError(409, IN_PROGRESS)
        if record.state not in (State.STOPPED, State.ARCHIVED, State.ARCHIVING):
            raise ApiError(400, "Sandbox is not in valid state")
        if record.pending:
            raise ApiError(409, IN_PROGRESS)
        self._check_quota()
        restoring = record.state is not State.STOPPED
        await self._update(record, desired=Desired.STARTED, pending=True)
        self._spawn(self._start(record))
        if not restoring:
            await self._wait_started(record)
        return record

    async def stop(self, id_or_name: str, *, force: bool = False) -> SandboxRecord:
        record = self.find(id_or_name)
        self._assert_not_errored(record)
        if record.state.value != record.desired.value:
            raise ApiError(409, IN_PROGRESS)
        if record.state is not State.STARTED:
            raise ApiError(400, "Sandbox is not in a stoppable state")
        if record.pending:
            raise ApiError(409, IN_PROGRESS)
        if record.ephemeral:
            return await self._destroy(record)
        await self._update(record, desired=Desired.STOPPED, pending=True)
        self._spawn(self._stop(record, force=force))
        return record

    async def archive(self, id_or_name: str) -> SandboxRecord:
        record = self.find(id_or_name)
        self._assert_not_errored(record)
        if record.state.value != record.desired.value:
            raise ApiError(409, IN_PROGRESS)
        if record.state is not State.STOPPED:
            raise ApiError(400, "Sandbox is not stopped")
        if record.pending:
            raise ApiError(409, IN_PROGRESS)
        if record.ephemeral:
            raise ApiError(400, "Ephemeral sandboxes cannot be archived")
        await self._update(record, state=State.ARCHIVING, desired=Desired.ARCHIVED)
        self._spawn(self._archive(record))
        return record

    async def recover(self, id_or_name: str) -> SandboxRecord:
        record = self.find(id_or_name)
        if not record.recoverable:
            raise ApiError(400, "Sandbox is not in a recoverable state")
        if record.state is not State.ERROR:
            raise ApiError(400, "Sandbox must be in error state to recover")
        await self.fleet.halt(record.id)
        await self._update(
            record,
            state=State.STOPPED,
            desired=Desired.STARTED,
            pending=True,
            error_reason=None,
            recoverable=False,
        )
        self._spawn(self._start(record))
        return record

    async def delete(self, id_or_name: str) -> SandboxRecord:
        record = self.find(id_or_name)
        if record.pending and record.state is not State.PENDING_BUILD:
            raise ApiError(409, IN_PROGRESS)
        return await self._destroy(record)

    def set_interval(self, id_or_name: str, kind: str, value: int) -> SandboxRecord:
        record = self.find(id_or_name)
        if kind == "autostop":
            if value < 0:
                raise ApiError(400, "Auto-stop interval must be a non-negative integer")
            record.auto_stop_interval = value
        elif kind == "autoarchive":
            record.auto_archive_interval = creation.archive_interval(value)
        else:
            record.auto_delete_interval = value
        record.updated_at = time.time()
        return record

    def replace_labels(self, id_or_name: str, labels: dict[str, str]) -> dict[str, str]:
        record = self.find(id_or_name)
        record.labels = dict(labels)
        record.updated_at = time.time()
        return record.labels

    def set_public(self, id_or_name: str, public: bool) -> SandboxRecord:
        record = self.find(id_or_name)
        record.public = public
        return record

    # -- faults and surprises -------------------------------------------------------
    async def put_in_error(
        self, sandbox_id: str, reason: str, *, recoverable: bool, stop_container: bool
    ) -> None:
        record = self.records[sandbox_id]
        if stop_container:
            await self.fleet.halt(sandbox_id)
        await self._update(
            record, state=State.ERROR, pending=False, error_reason=reason, recoverable=recoverable
        )

    async def destroy_container(self, sandbox_id: str) -> None:
        """The container disappears under the sandbox; the runner then reports it destroyed."""
        if self.fleet.container(sandbox_id) is None:
            return
        await self.fleet.remove(sandbox_id)
        await self._update(
            self.records[sandbox_id],
            state=State.DESTROYED,
            desired=Desired.DESTROYED,
            pending=False,
        )

    async def container_exited(self, container_id: str, removed: bool) -> None:
        """A container stopped or vanished unasked (crash, OOM, ``docker rm``): the runner's
        ``getSandboxState`` maps exit 0/137/143/255 to stopped, others to error, gone to
        destroyed."""
        sandbox_id = self.fleet.sandbox_of(container_id)
        if sandbox_id is None:
            return
        record = self.records[sandbox_id]
        if record.state is not State.STARTED or record.pending:
            return
        if removed:
            await self.destroy_container(sandbox_id)
            return
        await self.fleet.close_runtime(sandbox_id)
        engine_state = await self.containers.state(container_id) or {}
        code = int(str(engine_state.get("ExitCode", 0)))
        if code in (0, 137, 143, 255):
            await self._update(record, state=State.STOPPED, desired=Desired.STOPPED)
        else:
            reason = f"sandbox exited with code {code}, reason: {engine_state.get('Error', '')}"
            await self._update(record, state=State.ERROR, error_reason=reason)

    # -- transitions (background) --------------------------------------------------
    async def _provision(self, record: SandboxRecord, explicit_user: str | None) -> None:
        log = self.build_logs.setdefault(record.id, [])
        try:
            await self._start_gate(record)
            image = record.image
            if record.build_dockerfile and not image:
                await self._update(record, state=State.BUILDING_SNAPSHOT)
                image = await self.containers.build(record.build_dockerfile, log)
                record.image = image
            elif record.build_dockerfile:
                log.append(f"Using local image {image}\n")
            container = await self.fleet.create(record, image, explicit_user)
        except _StartRefused:
            return
        except ImageMissing as missing:
            state = State.BUILD_FAILED if record.build_dockerfile else State.ERROR
            await self._update(
                record, state=state, pending=False, error_reason=f"Image {missing} not found"
            )
            return
        except Exception as error:
            state = State.BUILD_FAILED if record.state is State.BUILDING_SNAPSHOT else State.ERROR
            await self._update(record, state=state, pending=False, error_reason=str(error))
            return
        if not explicit_user:
            record.user = container.identity.name
        await self._update(record, state=State.STARTED, pending=False)

    async def _start(self, record: SandboxRecord) -> None:
        try:
            if record.state in (State.ARCHIVED, State.ARCHIVING):
                await self._update(record, state=State.RESTORING)
                await asyncio.sleep(self.config.restore_seconds)
            await self._start_gate(record)
            await self.fleet.start(record.id)
        except _StartRefused:
            return
        except Exception as error:
            await self._update(record, state=State.ERROR, pending=False, error_reason=str(error))
            return
        await self._update(record, state=State.STARTED, desired=Desired.STARTED, pending=False)

    async def _stop(self, record: SandboxRecord, *, force: bool) -> None:
        await self.fleet.halt(record.id, force=force)
        await self._update(record, state=State.STOPPED, pending=False)

    async def _archive(self, record: SandboxRecord) -> None:
        await asyncio.sleep(0)
        await self._update(record, state=State.ARCHIVED, pending=False)

    async def _destroy(self, record: SandboxRecord) -> SandboxRecord:
        await self._update(record, desired=Desired.DESTROYED, pending=True, backup_state="None")
        self._spawn(self._remove(record))
        return record

    async def _remove(self, record: SandboxRecord) -> None:
        await self.fleet.remove(record.id)
        await self._update(record, state=State.DESTROYED, pending=False)

    async def _start_gate(self, record: SandboxRecord) -> None:
        delay = self.faults.start_delay()
        if delay:
            await asyncio.sleep(delay)
        failure = self.faults.take_start_failure()
        if failure is not None:
            await self._update(
                record,
                state=State.ERROR,
                pending=False,
                error_reason=failure.reason,
                recoverable=failure.recoverable,
            )
            raise _StartRefused

    # -- plumbing ------------------------------------------------------------------
    def _check_quota(self) -> None:
        message = self.faults.quota_message()
        if message:
            raise ApiError(400, message)

    @staticmethod
    def _assert_not_errored(record: SandboxRecord) -> None:
        if record.state in ERRORED:
            raise ApiError(400, "Sandbox is in an errored state")

    async def _wait_started(self, record: SandboxRecord) -> None:
        """The controller's ``waitForSandboxStarted``: up to 30 s, error -> 400."""
        async with self._changed:
            try:
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: record.state in (State.STARTED, *ERRORED)),
                    START_WAIT_SECONDS,
                )
            except TimeoutError:
                return
        if record.state in ERRORED:
            raise ApiError(400, f"Sandbox failed to start: {record.error_reason}")

    async def _update(self, record: SandboxRecord, **changes: Any) -> None:
        old_state = record.state
        old_desired = record.desired
        for key, value in changes.items():
            setattr(record, key, value)
        record.updated_at = time.time()
        if record.state is State.ERROR or record.state is State.BUILD_FAILED:
            record.pending = False
        if old_state is not record.state:
            self.touch(record)
            await self._publish(
                "sandbox.state.updated",
                {
                    "sandbox": self.dto(record),
                    "oldState": old_state.value,
                    "newState": record.state.value,
                },
            )
        if old_desired is not record.desired:
            await self._publish(
                "sandbox.desired-state.updated",
                {
                    "sandbox": self.dto(record),
                    "oldDesiredState": old_desired.value,
                    "newDesiredState": record.desired.value,
                },
            )
        async with self._changed:
            self._changed.notify_all()

    def touch(self, record: SandboxRecord) -> None:
        record.activity_clock = time.monotonic()
        record.activity_wall = time.time()

    async def _publish(self, event: str, payload: dict[str, Any]) -> None:
        if self.publish is not None:
            await self.publish(event, payload, self.config.organization_id)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def shutdown(self) -> None:
        """Remove every container of this instance."""
        for task in list(self._tasks):
            task.cancel()
        await self.fleet.shutdown()


class _StartRefused(Exception):
    """A start fault put the sandbox in error; nothing more to do."""
