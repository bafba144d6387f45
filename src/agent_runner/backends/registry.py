"""Which backend serves a mode, imported only when first needed.

A sandbox backend is a package plus a settings section, registered here by name with the
optional SDK it needs and the extra that installs it. Nothing is imported until a backend
is first used, so the base install stays small, and a missing SDK becomes the one line
that says what to install.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from typing import cast

from agent_runner.backends.base import Backend
from agent_runner.config import SANDBOX_BACKENDS, Settings
from agent_runner.errors import InvalidSetting, MissingExtra


@dataclass(frozen=True)
class BackendEntry:
    """Where a sandbox backend lives and what it needs installed."""

    module: str
    attribute: str
    requires: tuple[str, ...] = ()
    """Top-level modules of the SDK it is built on."""
    extra: str | None = None
    """The ``stigmer-agent-runner[...]`` extra that installs them."""


BACKENDS: dict[str, BackendEntry] = {
    "docker": BackendEntry("agent_runner.backends.docker", "DockerBackend", ("docker",)),
    "daytona": BackendEntry(
        "agent_runner.backends.daytona", "DaytonaBackend", ("daytona",), "daytona"
    ),
    "kubernetes": BackendEntry(
        "agent_runner.backends.kubernetes",
        "KubernetesBackend",
        ("kubernetes_asyncio",),
        "kubernetes",
    ),
}
assert set(BACKENDS) == set(SANDBOX_BACKENDS), "the settings and the registry disagree"


def local_backend(settings: Settings) -> Backend:
    from agent_runner.backends.local import LocalBackend

    return LocalBackend()


def sandbox_backend(settings: Settings, name: str | None = None) -> Backend:
    """The sandbox backend called ``name`` (default: ``execution.sandbox.backend``)."""
    name = name or settings.sandbox.backend
    entry = BACKENDS.get(name)
    if entry is None:
        accepted = ", ".join(BACKENDS)
        raise InvalidSetting(f"unknown sandbox backend {name!r}: expected one of {accepted}")
    missing = [module for module in entry.requires if importlib.util.find_spec(module) is None]
    if missing:
        target = f"stigmer-agent-runner[{entry.extra}]" if entry.extra else "stigmer-agent-runner"
        raise MissingExtra(f"the {name} backend needs {', '.join(missing)}: pip install '{target}'")
    factory = getattr(importlib.import_module(entry.module), entry.attribute)
    return cast(Backend, factory(settings))
