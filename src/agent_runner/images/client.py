"""The engine as the image functions see it: docker-py's low-level client and its errors.

Everything in :mod:`agent_runner.images` is plain blocking code over this pair, so it can
be tested and reasoned about without asyncio; the Docker backend runs it on its engine's
worker threads (``Engine.call``), never on the event loop.
"""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Client:
    api: Any
    """``docker.APIClient``, connected."""
    errors: Any
    """``docker.errors``."""

    def inspect(self, reference: str) -> dict[str, Any] | None:
        """The image's inspect data, or ``None`` when the engine does not have it."""
        try:
            found: dict[str, Any] = self.api.inspect_image(reference)
        except self.errors.ImageNotFound:
            return None
        return found

    def present(self, reference: str) -> bool:
        return self.inspect(reference) is not None

    def image_id(self, reference: str) -> str | None:
        found = self.inspect(reference)
        return str(found["Id"]) if found is not None else None

    def remove_quietly(self, reference: str) -> bool:
        """Remove an image if nothing holds it (a container, a child image); say if it went."""
        with suppress(self.errors.APIError):
            self.api.remove_image(reference)
            return True
        return False


def short_id(image_id: str) -> str:
    """``sha256:0123456789ab...`` as the 12 characters ``docker images`` shows."""
    return image_id.removeprefix("sha256:")[:12]


def megabytes(size: int) -> str:
    return f"{size / 1e6:.0f} MB"
