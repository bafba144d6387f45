"""The Docker backend's images: :mod:`agent_runner.images` on the engine's worker threads.

The image functions are plain blocking code; this runs them off the event loop
(``Engine.call``) and keeps what a backend holds between sessions: the resolved image
(one resolution per backend, so a failed pull is asked about once). ``agent-runner
image`` uses the same object.
"""

from __future__ import annotations

import asyncio

from agent_runner.backends.docker.engine import Engine
from agent_runner.config import Settings
from agent_runner.images import (
    Client,
    ProgressCallback,
    Reporter,
    Resolution,
    build_tier,
    ensure_image,
    pull_image,
)


class DockerImages:
    """Sandbox images on one engine, for one set of settings."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._resolution: Resolution | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        return Client(await self.engine.api(), self.engine.errors)

    async def resolve(
        self, *, refresh: bool = False, on_progress: ProgressCallback | None = None
    ) -> Resolution:
        """The image sandboxes start from, made present (once per backend unless ``refresh``)."""
        if self._resolution is None or refresh:
            async with self._lock:
                if self._resolution is None or refresh:
                    self._resolution = await self.engine.call(
                        ensure_image,
                        await self.client(),
                        self.settings,
                        Reporter(on_progress),
                        refresh=refresh,
                    )
        return self._resolution

    async def pull(self, image: str, *, on_progress: ProgressCallback | None = None) -> Resolution:
        client = await self.client()
        return await self.engine.call(
            pull_image, client, self.settings, image, Reporter(on_progress)
        )

    async def build_tier(self, tier: str, *, on_progress: ProgressCallback | None = None) -> str:
        client = await self.client()
        return await self.engine.call(
            build_tier, client, self.settings, Reporter(on_progress), tier
        )
