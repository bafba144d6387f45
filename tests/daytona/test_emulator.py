"""The Daytona emulator, driven by the real SDK (``AsyncDaytona``, 0.226.x).

Each test shows one behaviour of real Daytona that the emulator reproduces, so a Daytona
backend tested against it meets the same behaviour in production. Waits are bounded
polls or events, never fixed sleeps; nothing asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from daytona_api_client_async import Sandbox as SandboxDto
from daytona_api_client_async import SandboxListItem

import docker
from daytona import (
    AsyncDaytona,
    CreateSandboxFromSnapshotParams,
    DaytonaAuthenticationError,
    DaytonaBadGatewayError,
    DaytonaBadRequestError,
    DaytonaConfig,
    DaytonaConnectionError,
    DaytonaError,
    DaytonaFileNotFoundError,
    DaytonaForbiddenError,
    DaytonaInternalServerError,
    DaytonaNotFoundError,
    DaytonaProcessExecutionTimeoutError,
    DaytonaRateLimitError,
    DaytonaTimeoutError,
    FileDownloadRequest,
    FileUpload,
    ListSandboxesQuery,
    SessionExecuteRequest,
)
from tests.conftest import ROOT
from tests.fakes.daytona import INSTANCE_LABEL, LABEL, DaytonaEmulator, EmulatorConfig
from tests.fakes.daytona.fixtures import DEV_TOOLS_SNAPSHOT, emulator_containers

pytestmark = pytest.mark.docker

BOUND = 60.0


async def eventually(check: Callable[[], Awaitable[bool]], what: str, bound: float = BOUND) -> None:
    """Poll ``check`` until it holds; fail with ``what`` after ``bound`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def snapshot(**options: Any) -> CreateSandboxFromSnapshotParams:
    return CreateSandboxFromSnapshotParams(snapshot=DEV_TOOLS_SNAPSHOT, **options)


def inspect(container_id: str) -> dict[str, Any]:
    client = docker.APIClient(version="auto")
    try:
        return client.inspect_container(container_id)
    finally:
        client.close()


def container_exists(container_id: str) -> bool:
    try:
        inspect(container_id)
    except docker.errors.NotFound:
        return False
    return True


@pytest.fixture(scope="module")
def shared_sandbox(daytona_emulator: DaytonaEmulator) -> Iterator[str]:
    """One started sandbox that the toolbox tests share (each test on its own client)."""
    config = DaytonaConfig(api_key=daytona_emulator.api_key, api_url=daytona_emulator.api_url)

    async def create() -> str:
        async with AsyncDaytona(config) as client:
            return (await client.create(snapshot(labels={"purpose": "toolbox-tests"}))).id

    async def delete(sandbox_id: str) -> None:
        async with AsyncDaytona(config) as client:
            await (await client.get(sandbox_id)).delete(wait=True)

    sandbox_id = asyncio.run(create())
    yield sandbox_id
    asyncio.run(delete(sandbox_id))


# -- lifecycle ------------------------------------------------------------------------


async def test_create_from_snapshot_echoes_labels_into_a_real_container(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    labels = {"stigmer.execution": "exec-42", "owner": "tests"}
    sandbox = await daytona_client.create(
        snapshot(labels=dict(labels), env_vars={"GREETING": "hi"})
    )
    try:
        assert sandbox.state == "started"
        assert sandbox.labels == {**labels, "code-toolbox-language": "python"}
        assert (sandbox.snapshot, sandbox.user, sandbox.memory) == (
            DEV_TOOLS_SNAPSHOT,
            "daytona",
            1,
        )
        assert sandbox.toolbox_proxy_url == daytona_emulator.toolbox_url
        container = inspect(daytona_emulator.container_of(sandbox.id) or "")
        assert container["Config"]["Labels"][LABEL] == "daytona"
        assert container["Config"]["Labels"][INSTANCE_LABEL] == daytona_emulator.instance_id
        assert container["HostConfig"]["Memory"] == 1024**3
        result = await sandbox.process.exec('id -u; id -un; echo "$GREETING $DAYTONA_SANDBOX_ID"')
        uid, name, line = result.result.splitlines()
        assert (uid != "0", name, line) == (True, "daytona", f"hi {sandbox.id}")
    finally:
        await sandbox.delete(wait=True)


async def test_records_validate_in_the_strict_sdk_models(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator, shared_sandbox: str
) -> None:
    record = daytona_emulator.service.records[shared_sandbox]
    SandboxDto.from_dict(daytona_emulator.service.dto(record))
    SandboxListItem.from_dict(record.to_list_item(daytona_emulator.toolbox_url))
    sandbox = await daytona_client.get(shared_sandbox)
    assert isinstance(sandbox.cpu, int)
    assert isinstance(sandbox.disk, int)
    assert (sandbox.error_reason, sandbox.recoverable, sandbox.backup_state) == (
        None,
        False,
        "None",
    )
    assert sandbox.auto_stop_interval == 15
    assert sandbox.auto_delete_interval == -1


async def test_list_by_labels_follows_the_cursor_across_pages(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    run = {"run": uuid.uuid4().hex}
    created = [await daytona_client.create(snapshot(labels=dict(run))) for _ in range(3)]
    try:
        daytona_emulator.reset_requests()
        found = [s async for s in daytona_client.list(ListSandboxesQuery(labels=run, limit=2))]
        assert sorted(s.id for s in found) == sorted(s.id for s in created)
        assert daytona_emulator.request_count("GET /api/sandbox") == 2
        by_name = await daytona_client.get(created[0].name)
        assert by_name.id == created[0].id
    finally:
        for sandbox in created:
            await sandbox.delete()


async def test_stop_keeps_the_filesystem_and_start_revives(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    sandbox = await daytona_client.create(snapshot())
    try:
        await sandbox.process.exec("echo kept > ~/mark")
        await sandbox.stop()
        assert sandbox.state == "stopped"
        assert not inspect(daytona_emulator.container_of(sandbox.id) or "")["State"]["Running"]
        with pytest.raises(DaytonaBadRequestError, match="Is the Sandbox started"):
            await sandbox.process.exec("true")
        with pytest.raises(DaytonaBadRequestError, match="Sandbox is not in a stoppable state"):
            await sandbox.stop()
        await sandbox.start()
        assert sandbox.state == "started"
        assert (await sandbox.process.exec("cat ~/mark")).result == "kept\n"
    finally:
        await sandbox.delete(wait=True)


async def test_archive_needs_stopped_and_start_restores_it(daytona_client: AsyncDaytona) -> None:
    sandbox = await daytona_client.create(snapshot())
    try:
        await sandbox.process.exec("echo kept > ~/mark")
        with pytest.raises(DaytonaBadRequestError, match="Sandbox is not stopped"):
            await sandbox.archive()
        await sandbox.stop()
        await sandbox.archive()

        async def archived() -> bool:
            await sandbox.refresh_data()
            return sandbox.state == "archived"

        await eventually(archived, "the sandbox to be archived")
        await sandbox.start()
        assert sandbox.state == "started"
        assert (await sandbox.process.exec("cat ~/mark")).result == "kept\n"
    finally:
        await sandbox.delete(wait=True)


async def test_error_state_carries_the_reason_and_recover_brings_it_back(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    sandbox = await daytona_client.create(snapshot())
    try:
        daytona_emulator.put_in_error(sandbox.id, "disk quota exceeded", recoverable=True)
        await sandbox.refresh_data()
        assert (sandbox.state, sandbox.error_reason, sandbox.recoverable) == (
            "error",
            "disk quota exceeded",
            True,
        )
        with pytest.raises(DaytonaBadRequestError, match="errored state"):
            await sandbox.start()
        await sandbox.recover()
        assert sandbox.state == "started"
        assert (await sandbox.process.exec("echo back")).result == "back\n"
        daytona_emulator.put_in_error(sandbox.id, "runner lost", recoverable=False)
        with pytest.raises(DaytonaBadRequestError, match="not in a recoverable state"):
            await sandbox.recover()
    finally:
        await sandbox.delete(wait=True)


async def test_delete_removes_the_container(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    sandbox = await daytona_client.create(snapshot())
    container_id = daytona_emulator.container_of(sandbox.id) or ""
    await sandbox.delete(wait=True)
    assert sandbox.state == "destroyed"
    assert not container_exists(container_id)
    with pytest.raises(DaytonaNotFoundError, match="not found"):
        await daytona_client.get(sandbox.id)


# -- toolbox --------------------------------------------------------------------------


async def test_exec_returns_combined_output_and_the_exit_code_in_one_request(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    daytona_emulator.reset_requests()
    result = await sandbox.process.exec("echo out; echo err >&2; echo more; exit 7")
    assert (result.exit_code, result.result) == (7, "out\nerr\nmore\n")
    assert daytona_emulator.request_count("* /toolbox/*") == 1
    moved = await sandbox.process.exec("pwd; echo $ONE", cwd="/tmp", env={"ONE": "1"})
    assert moved.result == "/tmp\n1\n"
    with pytest.raises(DaytonaProcessExecutionTimeoutError, match="command execution timeout"):
        await sandbox.process.exec("sleep 30", timeout=1)


async def test_session_keeps_cwd_env_and_variables_like_the_daemons_one_shell(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    session = f"s-{uuid.uuid4().hex[:8]}"
    await sandbox.process.create_session(session)
    try:
        first = await sandbox.process.execute_session_command(
            session,
            SessionExecuteRequest(
                command="mkdir -p /tmp/deep && cd /tmp/deep && export E=1 && P=2; printf tail"
            ),
        )
        assert (first.exit_code, first.stdout, first.stderr) == (0, "tail\n", "")
        second = await sandbox.process.execute_session_command(
            session, SessionExecuteRequest(command='pwd; echo "$E $P"; echo oops >&2; false')
        )
        assert (second.exit_code, second.stdout, second.stderr) == (1, "/tmp/deep\n1 2\n", "oops\n")
        assert "\x01\x01\x01" in (second.output or "")
        listed = await sandbox.process.get_session(session)
        assert [c.exit_code for c in listed.commands] == [0, 1]
    finally:
        await sandbox.process.delete_session(session)
    with pytest.raises(DaytonaNotFoundError, match="session not found"):
        await sandbox.process.get_session(session)


async def test_exit_in_a_session_command_ends_the_session_shell(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    session = f"s-{uuid.uuid4().hex[:8]}"
    await sandbox.process.create_session(session)
    with pytest.raises(DaytonaTimeoutError):
        await sandbox.process.execute_session_command(
            session, SessionExecuteRequest(command="exit 3"), timeout=1
        )
    with pytest.raises(DaytonaBadRequestError, match="session shell has exited"):
        await sandbox.process.execute_session_command(
            session, SessionExecuteRequest(command="true")
        )
    commands = (await sandbox.process.get_session(session)).commands
    assert [(c.command, c.exit_code) for c in commands] == [("exit 3", None)]
    await sandbox.process.delete_session(session)


async def test_async_command_streams_stdout_and_stderr_apart_while_it_runs(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    session, gate = f"s-{uuid.uuid4().hex[:8]}", f"/tmp/gate-{uuid.uuid4().hex}"
    await sandbox.process.create_session(session)
    script = f"echo first; echo warn >&2; while [ ! -e {gate} ]; do sleep 0.05; done; echo second >&2; echo third"
    started = await sandbox.process.execute_session_command(
        session, SessionExecuteRequest(command=script, run_async=True)
    )
    events: list[tuple[str, str]] = []
    first_seen = asyncio.Event()

    def on(stream: str) -> Callable[[str], None]:
        def record(text: str) -> None:
            events.append((stream, text))
            if "first" in text:
                first_seen.set()

        return record

    streaming = asyncio.create_task(
        sandbox.process.get_session_command_logs_async(
            session, started.cmd_id, on("stdout"), on("stderr")
        )
    )
    await asyncio.wait_for(first_seen.wait(), BOUND)
    running = await sandbox.process.get_session_command(session, started.cmd_id)
    assert running.exit_code is None
    assert not streaming.done()
    await sandbox.process.exec(f"touch {gate}")
    await asyncio.wait_for(streaming, BOUND)
    stdout = "".join(text for stream, text in events if stream == "stdout")
    stderr = "".join(text for stream, text in events if stream == "stderr")
    assert (stdout, stderr) == ("first\nthird\n", "warn\nsecond\n")
    finished = await sandbox.process.get_session_command(session, started.cmd_id)
    assert finished.exit_code == 0
    logs = await sandbox.process.get_session_command_logs(session, started.cmd_id)
    assert (logs.stdout, logs.stderr) == ("first\nthird\n", "warn\nsecond\n")
    await sandbox.process.delete_session(session)


async def test_an_async_command_keeps_stdin_open_and_holds_the_session(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    session = f"s-{uuid.uuid4().hex[:8]}"
    await sandbox.process.create_session(session)
    reader = await sandbox.process.execute_session_command(
        session, SessionExecuteRequest(command="cat > /dev/null; echo eof", run_async=True)
    )
    queued = await sandbox.process.execute_session_command(
        session, SessionExecuteRequest(command="echo next", run_async=True)
    )

    async def cat_waits() -> bool:
        return (await sandbox.process.exec("pgrep -x cat")).exit_code == 0

    await eventually(cat_waits, "the async cat to wait on its open stdin")
    assert (await sandbox.process.get_session_command(session, queued.cmd_id)).exit_code is None
    await sandbox.process.exec("pkill -x cat")

    async def queued_ran() -> bool:
        return (await sandbox.process.get_session_command(session, queued.cmd_id)).exit_code == 0

    await eventually(queued_ran, "the queued command to run once the first ended")
    logs = await sandbox.process.get_session_command_logs(session, reader.cmd_id)
    assert logs.stdout == "eof\n"
    await sandbox.process.delete_session(session)


async def test_a_command_in_its_own_process_group_can_be_killed_as_a_tree(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    """The recipe the README gives the backend: no kill endpoint, so setsid + one exec."""
    sandbox = await daytona_client.get(shared_sandbox)
    session, mark = f"s-{uuid.uuid4().hex[:8]}", f"/tmp/pgid-{uuid.uuid4().hex}"
    await sandbox.process.create_session(session)
    child = "cat; sleep 301 & sleep 302; echo never"
    started = await sandbox.process.execute_session_command(
        session,
        SessionExecuteRequest(
            command=f"setsid bash -c 'echo $$ > {mark}; exec bash -c \"$1\" </dev/null' stigmer '{child}'",
            run_async=True,
        ),
    )

    async def tree_running() -> bool:
        return (
            await sandbox.process.exec("pgrep -f '^sleep 30[12]$' | wc -l")
        ).result.strip() == "2"

    await eventually(tree_running, "both sleeps of the command to run (cat saw EOF)")
    await sandbox.process.exec(f"kill -KILL -- -$(cat {mark})")

    async def ended() -> bool:
        command = await sandbox.process.get_session_command(session, started.cmd_id)
        return command.exit_code is not None

    await eventually(ended, "the killed command to end")
    command = await sandbox.process.get_session_command(session, started.cmd_id)
    assert command.exit_code == 137
    assert (await sandbox.process.exec("pgrep -f '^sleep 30[12]$' || echo none")).result == "none\n"
    alive = await sandbox.process.execute_session_command(
        session, SessionExecuteRequest(command="echo alive")
    )
    assert alive.stdout == "alive\n"
    await sandbox.process.delete_session(session)


async def test_input_reaches_a_running_async_command(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    session = f"s-{uuid.uuid4().hex[:8]}"
    await sandbox.process.create_session(session)
    started = await sandbox.process.execute_session_command(
        session,
        SessionExecuteRequest(command="echo ready; read answer; echo got:$answer", run_async=True),
    )

    async def reading() -> bool:  # input sent before the command reads stdin fails, as in Daytona
        logs = await sandbox.process.get_session_command_logs(session, started.cmd_id)
        return "ready" in (logs.stdout or "")

    await eventually(reading, "the command to wait for input")
    await sandbox.process.send_session_command_input(session, started.cmd_id, "yes")

    async def finished() -> bool:
        command = await sandbox.process.get_session_command(session, started.cmd_id)
        return command.exit_code is not None

    await eventually(finished, "the command that read its input to end")
    logs = await sandbox.process.get_session_command_logs(session, started.cmd_id)
    # The daemon echoes the input into stdout, racing the command's own output.
    assert sorted((logs.stdout or "").splitlines()) == ["got:yes", "ready", "yes"]
    await sandbox.process.delete_session(session)


async def test_files_round_trip_byte_exact(
    daytona_client: AsyncDaytona, shared_sandbox: str
) -> None:
    sandbox = await daytona_client.get(shared_sandbox)
    base = f"/tmp/files-{uuid.uuid4().hex[:8]}"
    blob = bytes(range(256)) * 1200 + os.urandom(4096)
    await sandbox.fs.create_folder(base, "755")
    await sandbox.fs.upload_files(
        [FileUpload(blob, f"{base}/blob.bin"), FileUpload(b"no newline", f"{base}/sub/t.txt")]
    )
    assert await sandbox.fs.download_file(f"{base}/blob.bin") == blob
    both = await sandbox.fs.download_files(
        [FileDownloadRequest(f"{base}/sub/t.txt"), FileDownloadRequest(f"{base}/missing")]
    )
    assert (both[0].result, both[1].result) == (b"no newline", None)
    assert "file not found" in (both[1].error or "")
    info = await sandbox.fs.get_file_info(f"{base}/blob.bin")
    assert (info.size, info.is_dir, info.owner, info.permissions) == (
        len(blob),
        False,
        "1000",
        "0644",
    )
    assert sorted(f.name for f in await sandbox.fs.list_files(base)) == ["blob.bin", "sub"]
    with pytest.raises(DaytonaFileNotFoundError, match="file not found"):
        await sandbox.fs.download_file(f"{base}/missing")
    with pytest.raises(DaytonaBadRequestError, match="without recursive flag"):
        await sandbox.fs.delete_file(f"{base}/sub")
    await sandbox.fs.delete_file(base, recursive=True)
    with pytest.raises(DaytonaFileNotFoundError):
        await sandbox.fs.get_file_info(base)


# -- errors ---------------------------------------------------------------------------


async def test_wrong_and_forbidden_keys_are_the_sdks_own_errors(
    daytona_emulator: DaytonaEmulator,
) -> None:
    wrong = DaytonaConfig(api_key="dtn_not_a_key", api_url=daytona_emulator.api_url)
    async with AsyncDaytona(wrong) as client:
        with pytest.raises(DaytonaAuthenticationError, match="Invalid credentials"):
            _ = [s async for s in client.list()]
    forbidden = DaytonaConfig(
        api_key=next(iter(daytona_emulator.config.forbidden_keys)), api_url=daytona_emulator.api_url
    )
    async with AsyncDaytona(forbidden) as client:
        with pytest.raises(DaytonaForbiddenError, match="Forbidden resource"):
            await client.create(snapshot())


async def test_unknown_snapshot_names_the_snapshot(daytona_client: AsyncDaytona) -> None:
    with pytest.raises(DaytonaBadRequestError, match="Snapshot nope not found"):
        await daytona_client.create(CreateSandboxFromSnapshotParams(snapshot="nope"))
    with pytest.raises(DaytonaNotFoundError, match="Snapshot with ID or name nope not found"):
        await daytona_client.snapshot.get("nope")
    available = await daytona_client.snapshot.list()
    assert [s.name for s in available.items] == [DEV_TOOLS_SNAPSHOT]
    assert (await daytona_client.snapshot.get(DEV_TOOLS_SNAPSHOT)).state == "active"


async def test_injected_faults_surface_as_the_sdks_exceptions(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    faults = daytona_emulator.faults
    try:
        faults.fail_next_create()
        with pytest.raises(DaytonaInternalServerError, match="An unexpected error occurred"):
            await daytona_client.create(snapshot())
        faults.quota_exceeded("cpu", limit=4)
        with pytest.raises(
            DaytonaBadRequestError, match="Total CPU limit exceeded. Maximum allowed: 4"
        ):
            await daytona_client.create(snapshot())
        faults.clear()
        faults.rate_limited(retry_after=7)
        with pytest.raises(DaytonaRateLimitError, match="Too Many Requests") as limited:
            _ = [s async for s in daytona_client.list()]
        assert limited.value.headers.get("Retry-After") == "7"
        faults.unreachable("api")
        with pytest.raises(DaytonaConnectionError):
            _ = [s async for s in daytona_client.list()]
        faults.reachable()
        _ = [s async for s in daytona_client.list()]
    finally:
        faults.clear()


async def test_a_sandbox_destroyed_mid_command_fails_the_call(
    daytona_client: AsyncDaytona, daytona_emulator: DaytonaEmulator
) -> None:
    sandbox = await daytona_client.create(snapshot())
    await sandbox.process.create_session("work")
    streamed = await sandbox.process.execute_session_command(
        "work", SessionExecuteRequest(command="echo begun; sleep 60", run_async=True)
    )
    waiting = asyncio.create_task(
        sandbox.process.execute_session_command("work", SessionExecuteRequest(command="sleep 60"))
    )
    began = asyncio.Event()
    following = asyncio.create_task(
        sandbox.process.get_session_command_logs_async(
            "work", streamed.cmd_id, lambda text: began.set(), lambda text: None
        )
    )
    await asyncio.wait_for(began.wait(), BOUND)

    async def both_running() -> bool:
        return len((await sandbox.process.get_session("work")).commands) == 2

    await eventually(both_running, "both commands to be in the session")
    daytona_emulator.destroy_container(sandbox.id)
    with pytest.raises(DaytonaBadGatewayError):
        await asyncio.wait_for(waiting, BOUND)
    with pytest.raises(DaytonaError, match="close code 1006"):
        await asyncio.wait_for(following, BOUND)
    with pytest.raises(DaytonaNotFoundError):
        await sandbox.process.get_session_command("work", streamed.cmd_id)
    with pytest.raises(DaytonaNotFoundError):
        await daytona_client.get(sandbox.id)


# -- auto-stop --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_clock(sandbox_image: str) -> Iterator[DaytonaEmulator]:
    """An emulator whose minute lasts 3 s, for auto-stop."""
    config = EmulatorConfig(snapshots={DEV_TOOLS_SNAPSHOT: sandbox_image}, minute_seconds=3.0)
    with DaytonaEmulator(config) as emulator:
        yield emulator


async def test_auto_stop_fires_during_a_long_command_without_api_activity(
    fast_clock: DaytonaEmulator,
) -> None:
    config = DaytonaConfig(api_key=fast_clock.api_key, api_url=fast_clock.api_url)
    async with AsyncDaytona(config) as client:
        sandbox = await client.create(snapshot(auto_stop_interval=1))
        try:
            await sandbox.process.create_session("long")
            await sandbox.process.execute_session_command(
                "long", SessionExecuteRequest(command="sleep 600", run_async=True)
            )

            async def stopped() -> bool:  # a plain GET is not activity
                await sandbox.refresh_data()
                return sandbox.state == "stopped"

            await eventually(stopped, "auto-stop with a command still running")
            assert not inspect(fast_clock.container_of(sandbox.id) or "")["State"]["Running"]
        finally:
            await sandbox.delete(wait=True)


async def test_toolbox_calls_and_open_requests_keep_the_sandbox_running(
    fast_clock: DaytonaEmulator,
) -> None:
    config = DaytonaConfig(api_key=fast_clock.api_key, api_url=fast_clock.api_url)
    async with AsyncDaytona(config) as client:
        sandbox = await client.create(snapshot(auto_stop_interval=2))
        try:
            await sandbox.process.create_session("poll")
            started = await sandbox.process.execute_session_command(
                "poll", SessionExecuteRequest(command="sleep 13", run_async=True)
            )

            async def finished() -> bool:  # polling the command is toolbox activity
                fast_clock.run_lifecycle_check()
                command = await sandbox.process.get_session_command("poll", started.cmd_id)
                return command.exit_code is not None

            await eventually(finished, "the polled command to end")
            assert fast_clock.sandbox_state(sandbox.id) == "started"
            held = await sandbox.process.exec("sleep 13; echo held")  # one long open request
            fast_clock.run_lifecycle_check()
            assert (held.result, fast_clock.sandbox_state(sandbox.id)) == ("held\n", "started")
        finally:
            await sandbox.delete(wait=True)


# -- ownership and the shell ------------------------------------------------------------


def test_stopping_the_emulator_removes_its_containers(sandbox_image: str) -> None:
    emulator = DaytonaEmulator(EmulatorConfig(snapshots={"dev": sandbox_image})).start()
    try:

        async def create() -> str:
            config = DaytonaConfig(api_key=emulator.api_key, api_url=emulator.api_url)
            async with AsyncDaytona(config) as client:
                return (await client.create(CreateSandboxFromSnapshotParams(snapshot="dev"))).id

        sandbox_id = asyncio.run(create())
        assert emulator.container_of(sandbox_id)
        assert emulator_containers(emulator.instance_id)
    finally:
        emulator.stop()
    assert emulator_containers(emulator.instance_id) == []


_KILLED_OWNER = """
import asyncio, sys
from daytona import AsyncDaytona, CreateSandboxFromSnapshotParams, DaytonaConfig
from tests.fakes.daytona import DaytonaEmulator, EmulatorConfig

emulator = DaytonaEmulator(EmulatorConfig(snapshots={"dev": sys.argv[1]})).start()

async def create():
    config = DaytonaConfig(api_key=emulator.api_key, api_url=emulator.api_url)
    async with AsyncDaytona(config) as client:
        return (await client.create(CreateSandboxFromSnapshotParams(snapshot="dev"))).id

print(emulator.container_of(asyncio.run(create())), flush=True)
sys.stdin.read()
"""


def test_containers_of_a_killed_emulator_are_removed_by_the_next_one(sandbox_image: str) -> None:
    owner = subprocess.Popen(
        [sys.executable, "-c", _KILLED_OWNER, sandbox_image],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert owner.stdout is not None
    container_id = owner.stdout.readline().strip()
    owner.kill()
    owner.wait(timeout=BOUND)
    assert container_exists(container_id), "a SIGKILLed emulator cannot clean up after itself"
    DaytonaEmulator(EmulatorConfig(snapshots={"dev": sandbox_image})).start().stop()
    assert not container_exists(container_id)


def test_runs_from_a_shell_until_interrupted(sandbox_image: str) -> None:
    shell = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.daytona",
            "--port",
            "0",
            "--snapshot",
            f"dev={sandbox_image}",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert shell.stdout is not None
        url = shell.stdout.readline().strip().removeprefix("DAYTONA_API_URL=")
        key = shell.stdout.readline().strip().removeprefix("DAYTONA_API_KEY=")

        async def listed() -> int:
            async with AsyncDaytona(DaytonaConfig(api_key=key, api_url=url)) as client:
                return len([s async for s in client.list()])

        assert asyncio.run(listed()) == 0
    finally:
        shell.send_signal(signal.SIGINT)
        assert shell.wait(timeout=BOUND) == 0
