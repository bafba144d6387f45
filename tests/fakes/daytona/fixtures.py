"""pytest fixtures for the Daytona emulator (registered by ``tests/conftest.py``).

- ``daytona_emulator`` (session): one running emulator with the snapshot
  ``stigmer-dev-tools`` mapped to the test image; after the session it checks that none
  of its containers is left.
- ``daytona_config`` / ``daytona_client``: an SDK configuration, and an ``AsyncDaytona``
  on the test's own event loop (closed after the test).

Imports of the emulator and the SDK happen inside the fixtures, so collecting the other
tests does not need the ``daytona`` extra.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tests.fakes.daytona.server import DaytonaEmulator

DEV_TOOLS_SNAPSHOT = "stigmer-dev-tools"


def emulator_containers(instance_id: str | None = None) -> list[dict[str, Any]]:
    """Containers labelled ``stigmer.test-fake=daytona`` made by this process (or instance)."""
    import docker
    from tests.fakes.daytona.containers import INSTANCE_LABEL, LABEL, LABEL_VALUE, OWNER_PID_LABEL

    label = f"{INSTANCE_LABEL}={instance_id}" if instance_id else f"{LABEL}={LABEL_VALUE}"
    client = docker.APIClient(version="auto")
    try:
        found = client.containers(all=True, filters={"label": label})
    finally:
        client.close()
    return [c for c in found if c["Labels"].get(OWNER_PID_LABEL) == str(os.getpid())]


@pytest.fixture(scope="session")
def daytona_emulator(sandbox_image: str) -> Iterator[DaytonaEmulator]:
    from tests.fakes.daytona import DaytonaEmulator, EmulatorConfig

    emulator = DaytonaEmulator(EmulatorConfig(snapshots={DEV_TOOLS_SNAPSHOT: sandbox_image}))
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()
    left = emulator_containers(emulator.instance_id)
    assert not left, f"the Daytona emulator left containers: {[c['Id'][:12] for c in left]}"


@pytest.fixture
def daytona_config(daytona_emulator: DaytonaEmulator) -> Any:
    from daytona import DaytonaConfig

    return DaytonaConfig(api_key=daytona_emulator.api_key, api_url=daytona_emulator.api_url)


@pytest.fixture
async def daytona_client(daytona_config: Any) -> AsyncIterator[Any]:
    from daytona import AsyncDaytona

    async with AsyncDaytona(daytona_config) as client:
        yield client
