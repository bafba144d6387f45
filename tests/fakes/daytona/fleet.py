"""The runner's half of the emulator: which container and daemon back each sandbox.

The API (:mod:`sandboxes`) decides states; a runner creates, starts, stops and removes
containers and notices when one dies on its own. This module is that runner: it keeps
each sandbox's :class:`SandboxContainer` and, while the container runs, its
:class:`Runtime` (the daemon side the toolbox talks to). Stopping a container always
closes its runtime first, so whatever was open in it fails as a dead daemon does.
"""

from __future__ import annotations

import contextlib

from tests.fakes.daytona.containers import Containers, SandboxContainer
from tests.fakes.daytona.models import SandboxRecord
from tests.fakes.daytona.runtime import Runtime


class Fleet:
    """Containers and runtimes of one emulator instance, by sandbox id."""

    def __init__(self, containers: Containers) -> None:
        self.containers = containers
        self._containers: dict[str, SandboxContainer] = {}
        self._runtimes: dict[str, Runtime] = {}
        self._ours: set[str] = set()
        """Container ids this fleet is stopping or removing itself (not crashes)."""

    def container(self, sandbox_id: str) -> SandboxContainer | None:
        return self._containers.get(sandbox_id)

    def runtime(self, sandbox_id: str) -> Runtime | None:
        return self._runtimes.get(sandbox_id)

    def sandbox_of(self, container_id: str) -> str | None:
        """The sandbox a container serves, unless the fleet itself is ending it."""
        if container_id in self._ours:
            return None
        return next((s for s, c in self._containers.items() if c.id == container_id), None)

    async def create(self, record: SandboxRecord, image: str, user: str | None) -> SandboxContainer:
        container = await self.containers.create(
            record.id,
            image,
            env=record.env,
            memory_gib=record.memory,
            cpu=record.cpu,
            user=user,
            snapshot=record.snapshot or image,
        )
        self._containers[record.id] = container
        self._runtimes[record.id] = Runtime(self.containers, container)
        return container

    async def start(self, sandbox_id: str) -> None:
        container = self._containers[sandbox_id]
        self._ours.discard(container.id)
        await self.containers.start(container.id)
        self._runtimes[sandbox_id] = Runtime(self.containers, container)

    async def halt(self, sandbox_id: str, *, force: bool = False) -> None:
        """Stop the sandbox's container, if it has one, after closing its daemon."""
        await self.close_runtime(sandbox_id)
        container = self._containers.get(sandbox_id)
        if container is not None:
            self._ours.add(container.id)
            await self.containers.stop(container.id, force=force)

    async def remove(self, sandbox_id: str) -> None:
        """Remove the sandbox's container and its share of the host."""
        await self.close_runtime(sandbox_id)
        container = self._containers.pop(sandbox_id, None)
        if container is None:
            return
        self._ours.add(container.id)
        try:
            await self.containers.remove(container.id)
        finally:
            self.containers.forget(container)

    async def close_runtime(self, sandbox_id: str) -> None:
        runtime = self._runtimes.pop(sandbox_id, None)
        if runtime is not None:
            await runtime.close()

    async def shutdown(self) -> None:
        for sandbox_id in list(self._containers):
            with contextlib.suppress(Exception):
                await self.remove(sandbox_id)
        for sandbox_id in list(self._runtimes):
            await self.close_runtime(sandbox_id)
