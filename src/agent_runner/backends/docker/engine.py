"""The Docker engine as the backend and its shells use it.

docker-py's calls block, so they run on a small thread pool of this engine's own; streams
to processes in containers are upgraded on asyncio instead (:mod:`.stream`). Removals run
in the background, off the caller's path; :meth:`Engine.close` waits for all of them, so a
closed backend has left nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, TypeVar

from agent_runner.backends.channel import Receiver
from agent_runner.backends.docker.sandbox import Sandbox
from agent_runner.backends.docker.spec import ContainerPlan
from agent_runner.backends.docker.stream import (
    EngineAddress,
    EngineStream,
    engine_url_from_environment,
    open_stream,
)
from agent_runner.errors import MissingExtra, SandboxUnavailable, first_line

T = TypeVar("T")
REMOVAL_SECONDS = 60
"""How long a removal the engine already has under way may take before we stop waiting."""


class ImageGone(Exception):
    """The image a sandbox was planned on left the engine (removed since it was resolved)."""


def docker_module() -> Any:
    """docker-py, imported when a Docker sandbox is first needed."""
    try:
        import docker
    except ImportError:
        raise MissingExtra(
            "the Docker backend needs docker-py: pip install 'stigmer-agent-runner'"
        ) from None
    return docker


_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="stigmer-docker")
"""docker-py blocks: its calls run here, for every engine and event loop of the process."""
_CLIENTS: dict[tuple[int, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(url: str) -> Any:
    """The process's docker-py client for ``url`` (blocking: call it on the thread pool).

    Shared by every backend of the process, so that its kept-alive connections and the API
    version it negotiated serve the next one-off command too. It lives as long as the
    process (a new one after a fork).
    """
    key = (os.getpid(), url)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = docker_module().APIClient(base_url=url, version="auto")
        return client


class Engine:
    """The engine as one backend uses it: the shared client, and its pending removals."""

    def __init__(self, *, cleanup: bool) -> None:
        self.cleanup = cleanup
        """Remove a sandbox when its session is done with it (``execution.cleanup``)."""
        self._api: Any = None
        self._address: EngineAddress | None = None
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def errors(self) -> Any:
        """docker-py's exception types."""
        return docker_module().errors

    async def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_THREADS, lambda: function(*args, **kwargs))

    async def api(self) -> Any:
        """The docker-py client, connected on first use."""
        async with self._lock:
            if self._api is None:
                url = engine_url_from_environment()
                try:
                    self._api = await self.call(_client, url)
                except Exception as error:
                    raise SandboxUnavailable(
                        f"Docker engine not reachable at {url}: start Docker, or use --mode local"
                        f" ({first_line(error)})"
                    ) from None
                self._address = EngineAddress.parse(url)
        return self._api

    async def open_stream(
        self, path: str, body: dict[str, Any] | None, receiver: Receiver
    ) -> EngineStream:
        """An upgraded Engine API connection for ``path`` (attach, exec start), its output
        handed to ``receiver`` as it arrives."""
        api = await self.api()
        if self._address is None:
            raise SandboxUnavailable(
                f"cannot stream from sandboxes through {engine_url_from_environment()}: "
                "use a unix socket or a plain tcp:// DOCKER_HOST"
            )
        return await open_stream(self._address, f"/v{api.api_version}{path}", body, receiver)

    async def create(self, plan: ContainerPlan, execution_id: str) -> str:
        """Create the container ``plan`` describes; its id. A caller cancelled meanwhile
        does not leave it behind: an engine call abandoned half-way would make a container
        nobody knows the id of, so the call finishes and what it made is removed.
        ``ImageGone`` when the plan's image is no longer on the engine."""
        api = await self.api()
        errors = self.errors
        name = f"stigmer-{execution_id}-{secrets.token_hex(3)}"
        call = asyncio.ensure_future(
            self.call(
                api.create_container,
                **plan.create,
                host_config=api.create_host_config(**plan.host),
                name=name,
            )
        )
        try:
            created = await asyncio.shield(call)
        except asyncio.CancelledError:
            with suppress(Exception):
                self.remove_later((await call)["Id"])
            raise
        except errors.ImageNotFound:
            raise ImageGone(plan.create["image"]) from None
        except errors.APIError as error:
            raise SandboxUnavailable(f"could not create a sandbox: {first_line(error)}") from None
        container_id: str = created["Id"]
        return container_id

    def discard(self, sandbox: Sandbox, *, broken: bool = False) -> None:
        """Hang up and remove the container, off the caller's path; a broken sandbox is
        removed even with ``cleanup`` off, as there is nothing left to inspect in it."""
        sandbox.channel.close()
        if self.cleanup or broken:
            self.remove_later(sandbox.container_id)

    def remove_later(self, container_id: str) -> None:
        self.spawn(self.remove(container_id))

    async def remove(self, container_id: str) -> None:
        api = await self.api()
        errors = self.errors
        try:
            await self.call(api.remove_container, container_id, force=True, v=True)
        except errors.NotFound:
            return
        except errors.APIError as error:
            if error.status_code != 409:
                raise
            # Already being removed (auto-remove after the hang-up): done once it is gone,
            # so that whoever waits for this removal never finds the container still there.
            with suppress(errors.NotFound):
                await self.call(
                    api.wait, container_id, timeout=REMOVAL_SECONDS, condition="removed"
                )

    def spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Run ``work`` in the background; :meth:`close` waits for it."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def close(self) -> None:
        """Wait for every removal this backend started (the client stays the process's)."""
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
