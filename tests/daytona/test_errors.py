"""Every Daytona failure a user meets is one line that says what to do, and leaves nothing.

Faults are the emulator's (the real API's status codes and messages, the SDK's own
exception classes); each test clears them again, and checks that a failed or abandoned
create left no sandbox behind. No line ever carries the API key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_runner import ProcessStatus, Runner
from agent_runner.errors import AgentRunnerError, ImageNotFound, InvalidSetting, SandboxUnavailable
from daytona import AsyncDaytona, ListSandboxesQuery
from tests.daytona.test_backend import settings_for, until
from tests.fakes.daytona import DaytonaEmulator

pytestmark = pytest.mark.docker


@pytest.fixture
def faults(daytona_emulator: DaytonaEmulator) -> Iterator[Any]:
    try:
        yield daytona_emulator.faults
    finally:
        daytona_emulator.faults.clear()


async def ours(client: AsyncDaytona, execution_id: str) -> list[Any]:
    query = ListSandboxesQuery(labels={"stigmer.execution-id": execution_id})
    return [s async for s in client.list(query)]


async def failure(settings: Any, execution_id: str, command: str = "true") -> AgentRunnerError:
    """What opening ``execution_id`` and running ``command`` fails with."""
    with pytest.raises(AgentRunnerError) as raised:
        async with Runner(settings) as runner, runner.session(execution_id) as session:
            await session.run(command)
    return raised.value


async def test_a_missing_api_key_says_where_to_set_one(daytona_emulator):
    settings = settings_for(daytona_emulator, api_key=None)
    error = await failure(settings, "exec-nokey")
    assert isinstance(error, InvalidSetting)
    assert str(error).startswith("the Daytona backend needs an API key: set DAYTONA_API_KEY")


async def test_a_wrong_key_is_a_401_line_without_the_key(daytona_emulator, daytona_client):
    settings = settings_for(daytona_emulator, api_key="dtn_secret_but_wrong")
    error = await failure(settings, "exec-401")
    assert isinstance(error, SandboxUnavailable)
    assert "Daytona rejected the API key (401 Invalid credentials)" in str(error)
    assert "check DAYTONA_API_KEY" in str(error)
    assert "dtn_secret_but_wrong" not in str(error)


async def test_a_forbidden_key_is_a_403_line(daytona_emulator, daytona_client):
    forbidden = next(iter(daytona_emulator.config.forbidden_keys))
    error = await failure(settings_for(daytona_emulator, api_key=forbidden), "exec-403")
    assert "Daytona refused to list sandboxes (403 Forbidden resource)" in str(error)
    assert "lacks the permission" in str(error)


async def test_an_unknown_snapshot_lists_the_available_ones(daytona_emulator, daytona_client):
    error = await failure(settings_for(daytona_emulator, snapshot="nope"), "exec-404")
    assert isinstance(error, ImageNotFound)
    assert str(error).startswith("Daytona snapshot 'nope' not found; available: stigmer-dev-tools")
    assert await ours(daytona_client, "exec-404") == []


async def test_a_500_on_create_is_one_line_and_leaves_nothing(
    daytona_emulator, daytona_client, faults
):
    faults.fail_next_create(status=500)
    error = await failure(settings_for(daytona_emulator), "exec-500")
    assert str(error) == ("Daytona could not create a sandbox: 500 An unexpected error occurred.")
    assert await ours(daytona_client, "exec-500") == []


async def test_an_exceeded_quota_quotes_daytona(daytona_emulator, daytona_client, faults):
    faults.quota_exceeded("memory", limit=8)
    error = await failure(settings_for(daytona_emulator), "exec-quota")
    assert str(error).startswith(
        "Daytona quota exceeded, could not create a sandbox: Total memory limit exceeded. "
        "Maximum allowed: 8"
    )


async def test_a_rate_limit_says_when_to_retry(daytona_emulator, faults):
    faults.rate_limited(times=5, retry_after=7)
    error = await failure(settings_for(daytona_emulator), "exec-429")
    assert str(error) == "Daytona rate limit reached, could not list sandboxes; retry after 7 s"


async def test_an_unreachable_api_names_its_url(daytona_emulator, faults):
    faults.unreachable("api")
    error = await failure(settings_for(daytona_emulator), "exec-unreachable")
    assert str(error).startswith(
        f"cannot reach the Daytona API at {daytona_emulator.api_url} to list sandboxes"
    )


async def test_a_sandbox_that_fails_to_start_gives_daytonas_reason_and_is_deleted(
    daytona_emulator, daytona_client, faults
):
    faults.fail_next_start("no space left on runner")
    error = await failure(settings_for(daytona_emulator), "exec-nostart")
    assert "Sandbox failed to start: no space left on runner" in str(error)
    assert await ours(daytona_client, "exec-nostart") == []


async def test_a_create_that_times_out_deletes_what_it_made(
    daytona_emulator, daytona_client, faults
):
    faults.delay_start(6)
    error = await failure(settings_for(daytona_emulator, create_timeout=2), "exec-slow")
    assert str(error).startswith("Daytona did not create a sandbox in time")
    assert await ours(daytona_client, "exec-slow") == []


async def test_a_create_abandoned_by_cancellation_is_deleted(
    daytona_emulator, daytona_client, faults
):
    faults.delay_start(3)
    async with Runner(settings_for(daytona_emulator)) as runner:
        session = runner.session("exec-cancelled")
        task = asyncio.create_task(session.run("true"))

        async def creating() -> bool:
            return bool(await ours(daytona_client, "exec-cancelled"))

        await until(creating, "the create to reach Daytona")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await ours(daytona_client, "exec-cancelled") == []


async def test_a_sandbox_in_error_mid_session_gives_its_error_reason(daytona_emulator):
    async with Runner(settings_for(daytona_emulator)) as runner, runner.session() as session:
        sandbox_id = await session.open()
        daytona_emulator.put_in_error(sandbox_id, "kernel panic", recoverable=False)
        with pytest.raises(SandboxUnavailable) as raised:
            await session.run("true")
    assert str(raised.value) == f"the Daytona sandbox {sandbox_id} is in error: kernel panic"


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_sandbox_deleted_mid_command_is_sandbox_unavailable(daytona_emulator, streamed):
    listener = (lambda chunk: None) if streamed else None
    async with Runner(settings_for(daytona_emulator)) as runner, runner.session() as session:
        sandbox_id = await session.open()
        running = asyncio.create_task(session.run("echo begun; sleep 60", on_output=listener))
        probe = await session.start("sleep 0.5")
        await probe.wait(timeout=60)
        daytona_emulator.destroy_container(sandbox_id)
        with pytest.raises(SandboxUnavailable) as raised:
            await asyncio.wait_for(running, 60)
    assert str(raised.value) == f"the Daytona sandbox {sandbox_id} is gone (deleted)"


async def test_a_process_whose_sandbox_is_deleted_fails_with_the_reason(daytona_emulator):
    async with Runner(settings_for(daytona_emulator)) as runner, runner.session() as session:
        process = await session.start("echo up; sleep 60")

        async def up() -> bool:
            return b"up" in process.read().data

        await until(up, "the process to start")
        daytona_emulator.destroy_container(await session.open())
        await process.wait(timeout=60)
    assert process.status is ProcessStatus.FAILED
    assert "is gone (deleted)" in (process.error or "")


async def test_bind_mounting_the_workspace_is_refused(daytona_emulator, tmp_path: Path):
    settings = settings_for(daytona_emulator)
    bind = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"workspace": "bind"})}
    )
    async with Runner(bind) as runner:
        with pytest.raises(InvalidSetting, match="cannot bind-mount the host's workspace"):
            await runner.run("true", cwd=tmp_path)
