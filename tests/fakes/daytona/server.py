"""The emulator as an object: a server on its own thread and event loop.

Tests run on pytest-asyncio's function-scoped loops, so the server cannot live on a
test's loop; it gets a thread of its own, and everything a test asks of it (faults,
counters, peeking at containers) crosses over thread-safely. One instance owns its
containers: :meth:`DaytonaEmulator.stop` removes every one of them, and a sweep by label
at exit catches what a crash left.

Each request is counted under ``"METHOD /route"`` (the route's placeholders, e.g.
``"GET /toolbox/{sandbox_id}/process/session/{session_id}/command/{command_id}"``), so a
benchmark can report HTTP requests per command.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import shutil
import tempfile
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.daytona.config import EmulatorConfig, SnapshotSpec
from tests.fakes.daytona.containers import (
    INSTANCE_LABEL,
    LABEL,
    LABEL_VALUE,
    MOUNT,
    Containers,
    orphaned,
)
from tests.fakes.daytona.engine import Engine
from tests.fakes.daytona.errors import SOURCE_PROXY, ApiError, DaemonError, UpstreamGone
from tests.fakes.daytona.events import SOCKET_PATH, Gateway
from tests.fakes.daytona.faults import Failure, Faults
from tests.fakes.daytona.lifecycle import Lifecycle
from tests.fakes.daytona.rest import RestApi
from tests.fakes.daytona.sandboxes import SandboxService
from tests.fakes.daytona.toolbox import Toolbox

T = TypeVar("T")
log = logging.getLogger("daytona-emulator")
_PUBLIC = {"GET /api/config", f"GET {SOCKET_PATH}", f"POST {SOCKET_PATH}"}


class DaytonaEmulator:
    """A local stand-in for the Daytona API, toolbox proxy and notification gateway."""

    def __init__(self, config: EmulatorConfig | None = None, **settings: Any) -> None:
        self.config = config or EmulatorConfig(**settings)
        self.faults = Faults()
        self.instance_id = uuid.uuid4().hex[:12]
        self.api_url = ""
        self.toolbox_url = ""
        self._counts: Counter[str] = Counter()
        self._counts_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self._service: SandboxService | None = None
        self._lifecycle: Lifecycle | None = None
        self._state_root = Path(tempfile.mkdtemp(prefix=f"daytona-emulator-{self.instance_id}-"))

    # -- running -------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        return self.config.api_key

    def start(self, timeout: float = 60.0) -> DaytonaEmulator:
        """Serve on a thread of its own; return once the port is open."""
        atexit.register(self._sweep)
        self._sweep_orphans()
        self._thread = threading.Thread(
            target=self._run, name=f"daytona-emulator-{self.instance_id}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the Daytona emulator did not start in time")
        if self._failure is not None:
            raise RuntimeError(f"the Daytona emulator failed to start: {self._failure}")
        return self

    def stop(self, timeout: float = 120.0) -> None:
        """Stop serving and remove every container this instance made."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._sweep()
        atexit.unregister(self._sweep)

    def __enter__(self) -> DaytonaEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced by start() or logged after it
            self._failure = error
            self._ready.set()
            log.exception("the Daytona emulator stopped with an error")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        engine = Engine()
        containers = Containers(engine, self.instance_id, self._state_root)
        service = SandboxService(self.config, containers, self.faults, lambda: self.toolbox_url)
        lifecycle = Lifecycle(service)
        gateway = Gateway(self.config)
        service.publish = gateway.publish
        self._service, self._lifecycle = service, lifecycle
        app = web.Application(middlewares=[self._middleware], client_max_size=2**30)
        app.add_routes(RestApi(service, lifecycle, lambda: self.api_url).routes())
        app.add_routes(Toolbox(service, lifecycle).routes())
        gateway.attach(app)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port)
            await site.start()
            port = runner.addresses[0][1]
            base = f"http://{self.config.host}:{port}"
            self.api_url, self.toolbox_url = f"{base}/api", f"{base}/toolbox"
            lifecycle.start()
            self._ready.set()
            await self._stop.wait()
        finally:
            await lifecycle.stop()
            await service.shutdown()
            await runner.cleanup()
            await engine.close()

    @staticmethod
    def _sweep_orphans() -> None:
        """Remove containers of emulators whose process died without stopping them."""
        try:
            import docker

            client = docker.APIClient(version="auto")
            for container in client.containers(
                all=True, filters={"label": f"{LABEL}={LABEL_VALUE}"}
            ):
                if orphaned(container.get("Labels") or {}):
                    with contextlib.suppress(Exception):
                        client.remove_container(container["Id"], force=True, v=True)
                    for mount in container.get("Mounts") or []:
                        if mount.get("Destination") == MOUNT and mount.get("Source"):
                            shutil.rmtree(mount["Source"], ignore_errors=True)
                            with contextlib.suppress(OSError):
                                Path(mount["Source"]).parent.rmdir()
            client.close()
        except Exception:
            log.exception("could not sweep orphaned emulator containers")

    def _sweep(self) -> None:
        """Remove whatever containers of this instance are left, without the loop."""
        try:
            import docker

            client = docker.APIClient(version="auto")
            for container in client.containers(
                all=True, filters={"label": f"{INSTANCE_LABEL}={self.instance_id}"}
            ):
                with contextlib.suppress(Exception):
                    client.remove_container(container["Id"], force=True, v=True)
            client.close()
        except Exception:
            log.exception("could not sweep the emulator's containers")
        shutil.rmtree(self._state_root, ignore_errors=True)

    # -- requests ------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        resource = request.match_info.route.resource
        endpoint = (
            f"{request.method} {resource.canonical if resource is not None else request.path}"
        )
        with self._counts_lock:
            self._counts[endpoint] += 1
        toolbox = request.path.startswith("/toolbox/")
        if self.faults.is_unreachable(endpoint):
            if request.transport is not None:
                request.transport.abort()
            return web.Response(status=503)
        delay = self.faults.delay_for(endpoint)
        if delay:
            await asyncio.sleep(delay)
        try:
            if endpoint not in _PUBLIC:
                self._authenticate(request, toolbox)
            failure = self.faults.take_failure(endpoint)
            if failure is not None:
                return self._fail(request, failure, toolbox)
            return await handler(request)
        except ApiError as error:
            return error.response(request)
        except DaemonError as error:
            return error.response(request)
        except UpstreamGone:
            return web.Response(status=502)
        except web.HTTPException:
            raise
        except Exception:
            log.exception("emulator error on %s", endpoint)
            if toolbox:
                return DaemonError(500, "internal error", "INTERNAL_SERVER_ERROR").response(request)
            return ApiError(500, "An unexpected error occurred.").response(request)

    def _authenticate(self, request: web.Request, toolbox: bool) -> None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        if token in self.config.forbidden_keys:
            if toolbox:
                raise DaemonError(403, "authentication failed: forbidden", source=SOURCE_PROXY)
            raise ApiError(403, "Forbidden resource")
        if token != self.config.api_key:
            if toolbox:
                raise DaemonError(
                    401, "authentication failed: Bearer token is invalid", source=SOURCE_PROXY
                )
            raise ApiError(401, "Invalid credentials")

    @staticmethod
    def _fail(request: web.Request, failure: Failure, toolbox: bool) -> web.Response:
        if toolbox:
            response = DaemonError(failure.status, failure.message).response(request)
        else:
            response = ApiError(failure.status, failure.message).response(request)
        response.headers.update(failure.headers)
        return response

    @property
    def requests(self) -> dict[str, int]:
        """Requests served so far, per ``"METHOD /route"``."""
        with self._counts_lock:
            return dict(self._counts)

    def request_count(self, pattern: str = "*") -> int:
        """How many requests matched ``pattern`` (shell-style, e.g. ``"* /toolbox/*"``)."""
        with self._counts_lock:
            return sum(n for key, n in self._counts.items() if fnmatchcase(key, pattern))

    def reset_requests(self) -> None:
        with self._counts_lock:
            self._counts.clear()

    # -- looking inside and breaking things ----------------------------------------
    def _call(self, work: Coroutine[Any, Any, T], timeout: float = 120.0) -> T:
        if self._loop is None:
            raise RuntimeError("the emulator is not running")
        return asyncio.run_coroutine_threadsafe(work, self._loop).result(timeout)

    @property
    def service(self) -> SandboxService:
        if self._service is None:
            raise RuntimeError("the emulator is not running")
        return self._service

    def add_snapshot(self, name: str, image: str, **resources: Any) -> None:
        """Offer one more snapshot (as if someone added it in the dashboard)."""
        spec = SnapshotSpec(name, image, **resources)
        self._loop_call(lambda: self.service.snapshots.__setitem__(name, spec))

    def _loop_call(self, action: Callable[[], T]) -> T:
        async def run() -> T:
            return action()

        return self._call(run())

    def container_of(self, sandbox_id: str) -> str | None:
        """The Docker container id behind a sandbox (``None`` when it has none)."""
        container = self._loop_call(lambda: self.service.container(sandbox_id))
        return container.id if container is not None else None

    def sandbox_state(self, sandbox_id: str) -> str | None:
        """The raw state the API holds for a sandbox."""
        record = self._loop_call(lambda: self.service.records.get(sandbox_id))
        return record.state.value if record is not None else None

    def put_in_error(
        self,
        sandbox_id: str,
        reason: str = "Sandbox runner failure",
        *,
        recoverable: bool = True,
        stop_container: bool = True,
    ) -> None:
        """Move a sandbox to ``error`` with ``reason`` (its container stopped by default)."""
        self._call(
            self.service.put_in_error(
                sandbox_id, reason, recoverable=recoverable, stop_container=stop_container
            )
        )

    def destroy_container(self, sandbox_id: str) -> None:
        """Remove the sandbox's container from under it, as a crash or an outside delete."""
        self._call(self.service.destroy_container(sandbox_id))

    def run_lifecycle_check(self) -> None:
        """One pass of auto-stop/archive/delete now, instead of waiting for the next tick."""
        if self._lifecycle is None:
            raise RuntimeError("the emulator is not running")
        self._call(self._lifecycle.check())

    def set_minute_seconds(self, seconds: float) -> None:
        """Change how long an emulated minute lasts."""
        self._loop_call(lambda: setattr(self.config, "minute_seconds", seconds))

    def reset(self) -> None:
        """Delete every sandbox and clear faults and counters: a clean service."""
        self.faults.clear()

        async def wipe() -> None:
            await self.service.shutdown()
            self.service.records.clear()

        self._call(wipe())
        self.reset_requests()
