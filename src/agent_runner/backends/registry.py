"""Which backend serves a mode, imported only when first needed.

A sandbox backend is a module plus a settings class; its SDK is imported when the backend
is first used, so the base install stays small and a missing extra becomes an install hint.
"""

from __future__ import annotations

from agent_runner.backends.base import Backend
from agent_runner.config import Settings


def local_backend(settings: Settings) -> Backend:
    from agent_runner.backends.local import LocalBackend

    return LocalBackend()


def sandbox_backend(settings: Settings) -> Backend:
    from agent_runner.backends.docker import DockerBackend

    return DockerBackend(settings)
