"""``agent_runner.compat.stigmer.SandboxManager``, called the way the Stigmer worker calls it.

The worker passes its gRPC session client (``await get(id)`` whose ``.spec.sandbox_id``
is the stored sandbox, ``await update_sandbox_id(id, sandbox_id)``) and a Temporal
``heartbeat_fn``; here a fake records both. What comes back must be the SDK's own sync
``daytona.Sandbox``, since the worker's code goes on with ``sandbox.process.exec(...)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from agent_runner import ExecutionMode
from agent_runner.compat import stigmer
from agent_runner.compat.stigmer import SandboxConfigError, SandboxManager
from daytona import DaytonaNotFoundError, Sandbox
from tests.fakes.daytona import DaytonaEmulator
from tests.fakes.daytona.fixtures import DEV_TOOLS_SNAPSHOT

pytestmark = pytest.mark.docker

CONFIG = {"type": "daytona", "snapshot_id": DEV_TOOLS_SNAPSHOT}


class SessionClient:
    """The worker's session client as far as the manager uses it."""

    def __init__(self) -> None:
        self.stored: dict[str, str] = {}
        self.updates: list[tuple[str, str]] = []

    async def get(self, session_id: str) -> Any:
        return SimpleNamespace(spec=SimpleNamespace(sandbox_id=self.stored.get(session_id, "")))

    async def update_sandbox_id(self, session_id: str, sandbox_id: str) -> None:
        self.updates.append((session_id, sandbox_id))
        self.stored[session_id] = sandbox_id


@pytest.fixture
async def manager(
    daytona_emulator: DaytonaEmulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> AsyncIterator[SandboxManager]:
    """A manager given only the key, as the worker does; the URL comes from the cascade."""
    monkeypatch.setenv("STIGMER_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.setenv("DAYTONA_API_URL", daytona_emulator.api_url)
    monkeypatch.delenv("DAYTONA_API_KEY", raising=False)
    made = SandboxManager(daytona_api_key=daytona_emulator.api_key)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def cleanup(daytona_client: Any) -> AsyncIterator[list[str]]:
    """Sandbox ids a test made, deleted after it."""
    ids: list[str] = []
    yield ids
    for sandbox_id in set(ids):
        with contextlib.suppress(DaytonaNotFoundError):
            await (await daytona_client.get(sandbox_id)).delete(wait=True)


def run(sandbox: Sandbox, command: str) -> str:
    """What the worker does next: the sync SDK, here off the event loop."""
    return str(sandbox.process.exec(command).result)


async def test_a_new_sandbox_is_made_stored_in_the_session_and_handed_over_as_the_sdks(
    manager, daytona_client, cleanup
):
    client = SessionClient()
    sandbox, is_new = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-new", client)
    cleanup.append(sandbox.id)
    assert is_new
    assert isinstance(sandbox, Sandbox)
    assert await asyncio.to_thread(run, sandbox, "echo ready") == "ready\n"
    assert client.updates == [("sess-new", sandbox.id)]
    record = await daytona_client.get(sandbox.id)
    assert (record.snapshot, record.auto_stop_interval, record.auto_archive_interval) == (
        DEV_TOOLS_SNAPSHOT,
        5,
        5,
    )
    assert record.auto_delete_interval == -1
    assert record.labels["stigmer.execution-id"] == "sess-new"


async def test_the_stored_sandbox_is_reused_and_a_stopped_one_started(
    manager, daytona_client, cleanup
):
    client = SessionClient()
    first, _ = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-reuse", client)
    cleanup.append(first.id)
    again, is_new = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-reuse", client)
    assert (again.id, is_new) == (first.id, False)
    await (await daytona_client.get(first.id)).stop()
    revived, is_new = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-reuse", client)
    assert (revived.id, is_new, revived.state) == (first.id, False, "started")
    assert client.updates == [("sess-reuse", first.id)]


async def test_a_gone_sandbox_is_replaced_and_the_new_id_stored(manager, daytona_client, cleanup):
    client = SessionClient()
    first, _ = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-gone", client)
    await manager.cleanup_daytona_sandbox(first.id)
    second, is_new = await manager.get_or_create_daytona_sandbox(CONFIG, "sess-gone", client)
    cleanup.append(second.id)
    assert is_new
    assert second.id != first.id
    assert client.updates == [("sess-gone", first.id), ("sess-gone", second.id)]


async def test_heartbeats_come_while_the_sandbox_is_made(
    manager, daytona_emulator, cleanup, monkeypatch
):
    monkeypatch.setattr(stigmer, "HEARTBEAT_SECONDS", 0.2)
    beats: list[str] = []
    daytona_emulator.faults.delay_start(2)
    try:
        sandbox, _ = await manager.get_or_create_daytona_sandbox(
            CONFIG, None, None, heartbeat_fn=beats.append
        )
    finally:
        daytona_emulator.faults.clear()
    cleanup.append(sandbox.id)
    assert f"sandbox_created:{sandbox.id}" in beats
    assert any(beat.startswith("sandbox_creating:") for beat in beats)


async def test_without_a_session_each_call_makes_an_ephemeral_sandbox(manager, cleanup):
    first, new_first = await manager.get_or_create_daytona_sandbox(CONFIG, None, None)
    second, new_second = await manager.get_or_create_daytona_sandbox(CONFIG, None, None)
    cleanup += [first.id, second.id]
    assert (new_first, new_second) == (True, True)
    assert first.id != second.id


async def test_cleanup_deletes_and_never_raises(manager, daytona_client):
    sandbox, _ = await manager.get_or_create_daytona_sandbox(CONFIG, None, None)
    await manager.cleanup_daytona_sandbox(sandbox.id)
    await manager.cleanup_daytona_sandbox("no-such-sandbox")
    record = None
    with contextlib.suppress(DaytonaNotFoundError):
        record = await daytona_client.get(sandbox.id)
    assert record is None or record.state in ("destroying", "destroyed")


async def test_configs_the_worker_rejects_are_value_errors(manager, monkeypatch):
    with pytest.raises(ValueError, match="Only 'daytona' sandbox type supported, got: docker"):
        await manager.get_or_create_daytona_sandbox({"type": "docker"}, None, None)
    keyless = SandboxManager()
    with pytest.raises(SandboxConfigError, match="DAYTONA_API_KEY required for cloud mode"):
        await keyless.get_or_create_daytona_sandbox(CONFIG, None, None)
    await keyless.close()


async def test_a_filesystem_config_runs_on_the_host_in_its_root_dir(manager, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    config = {"type": "filesystem", "root_dir": str(root)}
    async with await manager.open_session(config, "sess-local") as session:
        result = await session.run("pwd")
    assert (result.mode, result.stdout) == (ExecutionMode.LOCAL, f"{root}\n")


async def test_a_daytona_config_opens_a_sandbox_session(manager):
    async with await manager.open_session(CONFIG, "sess-sandbox") as session:
        result = await session.run("echo in; echo $DAYTONA_SANDBOX_SNAPSHOT")
    assert (result.backend, result.stdout) == ("daytona", f"in\n{DEV_TOOLS_SNAPSHOT}\n")
