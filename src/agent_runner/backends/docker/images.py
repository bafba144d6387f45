"""The Docker backend's images: :mod:`agent_runner.images` on the engine's worker threads.

The image functions are plain blocking code; this runs them off the event loop
(``Engine.call``) and keeps what a backend holds between sessions: the resolved image
(one resolution per backend, so a failed pull is asked about once) and the layer builds
in flight, so sessions of this backend that need the same layer at the same time await
one build (other runners wait on the layer's lock file instead). ``agent-runner image``
uses the same object.
"""

from __future__ import annotations

import asyncio

from agent_runner.backends.docker.engine import Engine
from agent_runner.backends.docker.stream import engine_url_from_environment
from agent_runner.config import Settings
from agent_runner.images import (
    Client,
    ImageInfo,
    Layer,
    ProgressCallback,
    Pruned,
    Reporter,
    Resolution,
    build_tier,
    ensure_image,
    ensure_layer,
    list_images,
    prune_layers,
    pull_image,
)
from agent_runner.requirements import Requirements

_RESOLVED: dict[tuple[str, str, bool], Resolution] = {}
"""Resolutions this process made, by engine, configured image and auto_pull: a one-off
command does not ask the engine about the image every time (one that left the engine since
is noticed when a create fails, and :meth:`DockerImages.forget` drops it)."""


class DockerImages:
    """Sandbox images on one engine, for one set of settings."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self._key = (engine_url_from_environment(), settings.sandbox_image, settings.auto_pull)
        self._resolution: Resolution | None = _RESOLVED.get(self._key)
        self._lock = asyncio.Lock()
        self._building: dict[str, asyncio.Future[Layer]] = {}

    async def client(self) -> Client:
        return Client(await self.engine.api(), self.engine.errors)

    async def resolve(
        self, *, refresh: bool = False, on_progress: ProgressCallback | None = None
    ) -> Resolution:
        """The image sandboxes start from, made present (once per backend unless ``refresh``)."""
        if self._resolution is None or refresh:
            async with self._lock:
                if self._resolution is None or refresh:
                    self._resolution = _RESOLVED[self._key] = await self.engine.call(
                        ensure_image,
                        await self.client(),
                        self.settings,
                        Reporter(on_progress),
                        refresh=refresh,
                    )
        return self._resolution

    def forget(self) -> None:
        """The resolved image left the engine: resolve it again next time."""
        self._resolution = None
        _RESOLVED.pop(self._key, None)

    async def layer(
        self,
        requirements: Requirements,
        *,
        base: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Layer:
        """The sandbox image (or ``base``) with ``requirements`` installed, built on first use."""
        base = base or (await self.resolve(on_progress=on_progress)).image
        key = f"{base}\0{requirements.sha256}"
        building = self._building.get(key)
        if building is None:
            client = await self.client()
            building = asyncio.ensure_future(
                self.engine.call(
                    ensure_layer, client, self.settings, base, requirements, Reporter(on_progress)
                )
            )
            self._building[key] = building

            def done(finished: asyncio.Future[Layer]) -> None:
                self._building.pop(key, None)
                if not finished.cancelled():
                    finished.exception()  # each awaiter gets it; nobody awaiting is fine

            building.add_done_callback(done)
        # A session that gives up waiting must not cancel the build the others wait for.
        return await asyncio.shield(building)

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

    async def inventory(self) -> list[ImageInfo]:
        return await self.engine.call(list_images, await self.client(), self.settings)

    async def prune(self, *, everything: bool = False, dry_run: bool = False) -> list[Pruned]:
        client = await self.client()
        return await self.engine.call(
            prune_layers, client, self.settings, everything=everything, dry_run=dry_run
        )
