"""The Daytona backend's own behaviour, beyond the contract suite, through the real SDK.

Lifecycle (labels, reuse after a restart, revival, deletion), what each command costs in
requests, keeping a sandbox up during a long command, and every failure a user must be
able to act on, each as one line. Against the emulator (``tests/fakes/daytona``); waits
are bounded polls, nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from agent_runner import Runner, Settings
from daytona import AsyncDaytona, DaytonaNotFoundError, ListSandboxesQuery
from tests.conftest import ROOT
from tests.fakes.daytona import DaytonaEmulator, EmulatorConfig
from tests.fakes.daytona.fixtures import DEV_TOOLS_SNAPSHOT

pytestmark = pytest.mark.docker

BOUND = 60.0


def settings_for(
    emulator: DaytonaEmulator, *, top: dict[str, Any] | None = None, **daytona: Any
) -> Settings:
    options = {
        "api_key": emulator.api_key,
        "api_url": emulator.api_url,
        "snapshot": DEV_TOOLS_SNAPSHOT,
        **daytona,
    }
    sandbox = {"backend": "daytona", "workspace": "none", "daytona": options}
    return Settings.defaults(mode="sandbox", sandbox=sandbox, **(top or {}))


async def ours(client: AsyncDaytona, execution_id: str) -> list[Any]:
    query = ListSandboxesQuery(labels={"stigmer.execution-id": execution_id})
    return [s async for s in client.list(query)]


async def until(check: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BOUND
    while not await check():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


# -- requests per command -----------------------------------------------------------------


async def test_a_warm_command_costs_one_request_or_two_when_streamed(daytona_emulator):
    async with Runner(settings_for(daytona_emulator)) as runner, runner.session() as session:
        await session.run("true")
        daytona_emulator.reset_requests()
        result = await session.run("echo out; echo err >&2; exit 3")
        assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
        assert daytona_emulator.requests == {
            "POST /toolbox/{sandbox_id}/process/session/{session_id}/exec": 1
        }
        daytona_emulator.reset_requests()
        chunks: list[str] = []
        result = await session.run("echo live", on_output=lambda c: chunks.append(c.text))
        assert (result.stdout, chunks) == ("live\n", ["live\n"])
        assert daytona_emulator.request_count("* /toolbox/*") == 2
        assert daytona_emulator.request_count("* /api/*") == 0


# -- lifecycle ----------------------------------------------------------------------------


async def test_the_sandbox_is_labelled_with_the_session_and_deleted_when_it_closes(
    daytona_emulator, daytona_client
):
    settings = settings_for(daytona_emulator, labels={"team": "agents"})
    async with Runner(settings) as runner, runner.session("exec-labels") as session:
        sandbox_id = await session.open()
        sandbox = await daytona_client.get(sandbox_id)
        labels = sandbox.labels
        assert labels["stigmer.sandbox"] == "1"
        assert labels["stigmer.execution-id"] == "exec-labels"
        assert labels["stigmer.owner-pid"] == str(os.getpid())
        assert (labels["team"], labels["code-toolbox-language"]) == ("agents", "python")
        assert sandbox.auto_stop_interval == 15
        assert sandbox.auto_delete_interval == 60
    with pytest.raises(DaytonaNotFoundError):
        await daytona_client.get(sandbox_id)


async def test_with_cleanup_off_the_sandbox_stays_and_the_same_session_gets_it_back(
    daytona_emulator, daytona_client
):
    settings = settings_for(daytona_emulator, top={"cleanup": False})
    try:
        async with Runner(settings) as runner, runner.session("exec-kept") as session:
            first = await session.run("echo kept > ~/mark")
            await session.start("sleep 302.5")
        async with Runner(settings) as runner, runner.session("exec-kept") as session:
            again = await session.run("cat ~/mark; pgrep -f 'slee[p] 302.5' || echo none")
        assert again.stdout == "kept\nnone\n", "closing the session ended its process"
        assert again.sandbox_id == first.sandbox_id
        assert len(await ours(daytona_client, "exec-kept")) == 1
    finally:
        for sandbox in await ours(daytona_client, "exec-kept"):
            await sandbox.delete(wait=True)


_FIRST_RUNNER = """
import asyncio, json, sys
from agent_runner import Runner, Settings

async def main():
    settings = Settings.defaults(**json.loads(sys.argv[1]))
    runner = Runner(settings)
    session = runner.session(sys.argv[2])
    result = await session.run("echo kept > ~/mark")
    await session.start("sleep 301.5")
    print(result.sandbox_id, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_restarted_runner_takes_over_the_sandbox_of_its_session(
    daytona_emulator, daytona_client
):
    settings = settings_for(daytona_emulator)
    plain = settings.model_dump(mode="python")
    plain["sandbox"]["daytona"]["api_key"] = daytona_emulator.api_key
    first = await asyncio.create_subprocess_exec(
        *[sys.executable, "-c", _FIRST_RUNNER, json.dumps(plain, default=str), "exec-restart"],
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert first.stdout is not None
        line = await asyncio.wait_for(first.stdout.readline(), BOUND)
        sandbox_id = line.decode()
    finally:
        first.send_signal(signal.SIGKILL)
        await asyncio.wait_for(first.wait(), BOUND)
    async with Runner(settings) as runner, runner.session("exec-restart") as session:
        result = await session.run("cat ~/mark")
        left = await session.run("pgrep -f 'slee[p] 301.5' || echo none")
        labels = (await daytona_client.get(sandbox_id.strip())).labels
    assert (result.stdout, result.sandbox_id) == ("kept\n", sandbox_id.strip())
    assert left.stdout == "none\n", "what the gone runner left running is ended"
    assert labels["stigmer.owner-pid"] == str(os.getpid())
    assert await ours(daytona_client, "exec-restart") == []


@pytest.mark.parametrize("state", ["stopped", "archived", "recoverable error"])
async def test_a_kept_sandbox_is_revived_from(state, daytona_emulator, daytona_client):
    settings = settings_for(daytona_emulator, top={"cleanup": False})
    async with Runner(settings) as runner, runner.session("exec-revive") as session:
        first = await session.run("echo kept > ~/mark")
    sandbox = await daytona_client.get(first.sandbox_id or "")
    try:
        if state == "recoverable error":
            daytona_emulator.put_in_error(sandbox.id, "runner restarted", recoverable=True)
        else:
            await sandbox.stop()
        if state == "archived":
            await sandbox.archive()

            async def archived() -> bool:
                await sandbox.refresh_data()
                return sandbox.state == "archived"

            await until(archived, "the sandbox to be archived")
        async with Runner(settings) as runner, runner.session("exec-revive") as session:
            again = await session.run("cat ~/mark")
        assert (again.stdout, again.sandbox_id) == ("kept\n", first.sandbox_id)
    finally:
        await sandbox.delete(wait=True)


async def test_a_broken_sandbox_of_the_session_is_replaced(daytona_emulator, daytona_client):
    settings = settings_for(daytona_emulator, top={"cleanup": False})
    async with Runner(settings) as runner, runner.session("exec-broken") as session:
        first = await session.run("true")
    daytona_emulator.put_in_error(first.sandbox_id or "", "disk failure", recoverable=False)
    try:
        async with Runner(settings) as runner, runner.session("exec-broken") as session:
            again = await session.run("echo fresh")
        assert again.stdout == "fresh\n"
        assert again.sandbox_id != first.sandbox_id
        assert [s.id for s in await ours(daytona_client, "exec-broken")] == [again.sandbox_id]
    finally:
        for sandbox in await ours(daytona_client, "exec-broken"):
            await sandbox.delete(wait=True)


@pytest.mark.parametrize("restarted", [False, True])
async def test_a_sandbox_stopped_between_commands_is_started_by_the_next(
    daytona_emulator, daytona_client, restarted
):
    """Stopped (auto-stop), or stopped and started by someone else, which loses the daemon's
    sessions: the next command gets it going again, cwd and variables kept."""
    async with Runner(settings_for(daytona_emulator)) as runner, runner.session() as session:
        await session.run("cd /tmp && export KEPT=yes")
        sandbox = await daytona_client.get(await session.open())
        await sandbox.stop()
        if restarted:
            await sandbox.start()
        result = await session.run('pwd; echo "$KEPT"')
        assert result.stdout == "/tmp\nyes\n"


# -- keeping it up ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_clock(sandbox_image: str) -> Iterator[DaytonaEmulator]:
    """An emulator whose minute lasts 2 s, so a 1-minute auto-stop fires in seconds."""
    config = EmulatorConfig(snapshots={DEV_TOOLS_SNAPSHOT: sandbox_image}, minute_seconds=2.0)
    with DaytonaEmulator(config) as emulator:
        yield emulator


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_command_longer_than_auto_stop_keeps_its_sandbox_up(fast_clock, streamed):
    settings = settings_for(fast_clock, auto_stop_interval=1, keepalive=0.5)
    listener = (lambda chunk: None) if streamed else None
    async with Runner(settings) as runner, runner.session() as session:
        await session.run("true")
        fast_clock.reset_requests()
        result = await session.run("sleep 7; echo held", on_output=listener)
        assert (result.exit_code, result.stdout) == (0, "held\n")
        assert fast_clock.sandbox_state(result.sandbox_id or "") == "started"
        assert fast_clock.request_count("POST /api/sandbox/*/last-activity") >= 3


async def test_a_process_keeps_its_sandbox_up_and_idle_sessions_let_it_stop(fast_clock):
    settings = settings_for(fast_clock, auto_stop_interval=1, keepalive=0.5)
    async with Runner(settings) as runner, runner.session() as session:
        process = await session.start("sleep 6; echo done")
        assert await process.wait(timeout=BOUND) == 0
        sandbox_id = await session.open()
        assert fast_clock.sandbox_state(sandbox_id) == "started"

        async def stopped() -> bool:
            return fast_clock.sandbox_state(sandbox_id) == "stopped"

        await until(stopped, "auto-stop of the idle sandbox")
        assert (await session.run("echo back")).stdout == "back\n"
