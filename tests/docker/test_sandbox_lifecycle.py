"""Sandboxes come and go with their sessions: no leaks on close, error, cancel, crash or TTL."""

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from agent_runner import Runner, Settings
from agent_runner.backends.docker import DockerBackend
from agent_runner.backends.docker.engine import Engine
from agent_runner.errors import ImageNotFound, SandboxUnavailable, SessionClosed
from tests.conftest import ROOT, cli_environment, run_cli, sandbox_workspace

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "ws")


def settings_for(image: str, **options) -> Settings:
    options.setdefault("auto_pull", False)
    return Settings.defaults(mode="sandbox", sandbox_image=image, **options)


def containers(api, **labels) -> list[dict]:
    filters = [
        "stigmer.sandbox=1",
        *(f"stigmer.{k.replace('_', '-')}={v}" for k, v in labels.items()),
    ]
    return api.containers(all=True, filters={"label": filters})


def wait_until(predicate, seconds: float = 15.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


async def test_container_is_labelled_and_removed_when_the_session_closes(
    docker_api, sandbox_image, workspace
):
    async with (
        Runner(settings_for(sandbox_image)) as runner,
        runner.session("lifecycle-1", cwd=workspace) as session,
    ):
        result = await session.run("true")
        (found,) = containers(docker_api, execution_id="lifecycle-1")
        assert found["Id"].startswith(result.sandbox_id)
        labels = found["Labels"]
        assert labels["stigmer.owner-pid"] == str(os.getpid())
        assert labels["stigmer.image"] == sandbox_image
        assert labels["stigmer.created-at"].endswith("Z")
        inspect = docker_api.inspect_container(found["Id"])["HostConfig"]
        assert inspect["CapDrop"] == ["ALL"]
        assert inspect["ReadonlyRootfs"] is True
        assert inspect["Init"] is True
        assert inspect["Privileged"] is False
        assert inspect["PidsLimit"] == 512
        assert inspect["Memory"] == 2 * 1024**3
        assert inspect["NanoCpus"] == 2 * 10**9
        assert inspect["SecurityOpt"] == ["no-new-privileges"]
        assert inspect["LogConfig"]["Type"] == "none"
        assert not any("docker.sock" in bind for bind in inspect["Binds"] or [])
    assert containers(docker_api, execution_id="lifecycle-1") == []


async def test_container_is_removed_when_the_session_body_raises(
    docker_api, sandbox_image, workspace
):
    async def failing_agent() -> None:
        async with (
            Runner(settings_for(sandbox_image)) as runner,
            runner.session("lifecycle-2", cwd=workspace) as s,
        ):
            await s.run("true")
            raise RuntimeError("agent failed")

    with pytest.raises(RuntimeError, match="agent failed"):
        await failing_agent()
    assert containers(docker_api, execution_id="lifecycle-2") == []


async def test_cancelled_session_task_leaves_nothing(docker_api, sandbox_image, workspace):
    async def agent() -> None:
        async with (
            Runner(settings_for(sandbox_image)) as runner,
            runner.session("lifecycle-3", cwd=workspace) as s,
        ):
            await s.run("sleep 60")

    task = asyncio.create_task(agent())
    assert await asyncio.to_thread(
        wait_until, lambda: containers(docker_api, execution_id="lifecycle-3")
    )
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert containers(docker_api, execution_id="lifecycle-3") == []


async def test_cleanup_false_keeps_the_container_for_inspection(
    docker_api, sandbox_image, workspace
):
    async with (
        Runner(settings_for(sandbox_image, cleanup=False)) as runner,
        runner.session("lifecycle-4", cwd=workspace) as session,
    ):
        await session.run("echo kept > /tmp/evidence")
    try:
        assert len(containers(docker_api, execution_id="lifecycle-4")) == 1, "it was removed"
    finally:
        for container in containers(docker_api, execution_id="lifecycle-4"):
            docker_api.remove_container(container["Id"], force=True)


async def test_idle_session_past_ttl_is_closed(docker_api, sandbox_image, workspace):
    async with Runner(settings_for(sandbox_image, ttl=1)) as runner:
        session = runner.session("lifecycle-5", cwd=workspace)
        await session.run("true")
        assert await asyncio.to_thread(
            wait_until, lambda: not containers(docker_api, execution_id="lifecycle-5"), 10
        )
        with pytest.raises(SessionClosed, match="idle for more than 1 s"):
            await session.run("true")


CRASHING_RUNNER = textwrap.dedent(
    """
    import asyncio, sys
    from agent_runner import Runner, Settings
    async def main():
        settings = Settings.defaults(mode="sandbox", sandbox_image=sys.argv[1], auto_pull=False)
        runner = Runner(settings)
        session = runner.session(sys.argv[2], cwd=sys.argv[3])
        await session.run("true")
        print("ready", flush=True)
        await asyncio.sleep(600)
    asyncio.run(main())
    """
)


def start_and_kill_runner(image: str, execution_id: str, workspace) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CRASHING_RUNNER, image, execution_id, str(workspace)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


async def test_sandbox_of_a_killed_runner_goes_away_by_itself(docker_api, sandbox_image, workspace):
    await asyncio.to_thread(start_and_kill_runner, sandbox_image, "crashed-1", workspace)
    assert await asyncio.to_thread(
        wait_until, lambda: not containers(docker_api, execution_id="crashed-1")
    )


NEXT_RUNNER = textwrap.dedent(
    """
    import asyncio, sys
    from agent_runner import Runner, Settings
    async def main():
        settings = Settings.defaults(mode="sandbox", sandbox_image=sys.argv[1], auto_pull=False)
        async with Runner(settings) as runner:
            await runner.run("true", cwd=sys.argv[2])
    asyncio.run(main())
    """
)


async def test_orphan_without_executor_is_pruned_by_the_next_runner_process(
    docker_api, image_without_python, workspace
):
    """A runner process sweeps its engine once, on its first connection: orphans only
    appear when a runner dies, and a one-off command must not pay a listing every time."""
    await asyncio.to_thread(start_and_kill_runner, image_without_python, "crashed-2", workspace)
    (orphan,) = containers(docker_api, execution_id="crashed-2")
    async with Runner(settings_for(image_without_python)) as runner:
        backend = await runner.backend(runner.settings.mode)
        listed = {s.sandbox_id: s for s in await backend.sandboxes()}
        assert listed[orphan["Id"]].orphaned
    next_runner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", NEXT_RUNNER, image_without_python, str(workspace), cwd=ROOT
    )
    assert await asyncio.wait_for(next_runner.wait(), 120) == 0
    assert containers(docker_api, execution_id="crashed-2") == []


async def test_a_removal_that_finds_one_under_way_returns_once_the_container_is_gone(
    docker_api, sandbox_image
):
    """Two removals of one running container: one of them finds the other's under way
    (the engine answers 409, as it does after an auto-remove), and neither may return while
    the container is still there, or a closed session could leave it listed."""
    engine = Engine(cleanup=True)
    for _ in range(5):
        created = docker_api.create_container(
            sandbox_image, "sleep 300", labels={"stigmer.test": "removal"}
        )
        docker_api.start(created)

        async def remove_then_look(container: str = created["Id"]) -> list[dict]:
            await engine.remove(container)
            return docker_api.containers(all=True, filters={"id": container})

        assert await asyncio.gather(remove_then_look(), remove_then_look()) == [[], []]
    await engine.close()


async def test_prune_never_touches_containers_without_our_label(docker_api, sandbox_image):
    stranger = docker_api.create_container(sandbox_image, "sleep 300", labels={"team": "other"})
    try:
        backend = DockerBackend(settings_for(sandbox_image))
        await backend.prune(everything=True)
        await backend.close()
        assert docker_api.inspect_container(stranger["Id"])["Id"] == stranger["Id"]
    finally:
        docker_api.remove_container(stranger["Id"], force=True)


async def test_warm_pool_serves_sessions_and_is_drained(
    docker_api, sandbox_image, workspace, monkeypatch
):
    monkeypatch.chdir(workspace)
    settings = settings_for(sandbox_image, sandbox={"pool_size": 2})
    async with Runner(settings) as runner:
        assert await asyncio.to_thread(
            wait_until, lambda: len(containers(docker_api, pooled="1")) == 2
        )
        pooled = {c["Id"][:12] for c in containers(docker_api, pooled="1")}
        async with runner.session(cwd=workspace) as session:
            result = await session.run("echo from-pool; pwd")
            assert result.stdout == "from-pool\n/workspace\n"
            assert result.sandbox_id in pooled
            assert await asyncio.to_thread(
                wait_until, lambda: len(containers(docker_api, pooled="1")) == 3
            )
        async with runner.session(cwd=workspace, env={"ONLY_HERE": "1"}) as other:
            result = await other.run('echo "$ONLY_HERE"; cat /tmp/marker 2>/dev/null || echo fresh')
            assert result.stdout == "1\nfresh\n"
    assert containers(docker_api, pooled="1") == []


async def test_engine_unreachable_is_one_actionable_line(monkeypatch, sandbox_image, workspace):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(SandboxUnavailable) as error:
        async with Runner(settings_for(sandbox_image)) as runner:
            await runner.run("true", cwd=workspace)
    message = str(error.value)
    assert message.startswith(
        "Docker engine not reachable at unix:///nonexistent/docker.sock: start Docker, or use --mode local"
    )
    assert "\n" not in message


async def test_missing_image_without_auto_pull_says_what_to_do(workspace):
    with pytest.raises(
        ImageNotFound, match="auto_pull is off: run `agent-runner image pull stigmer/nope:missing`"
    ):
        async with Runner(settings_for("stigmer/nope:missing")) as runner:
            await runner.run("true", cwd=workspace)


async def test_missing_image_that_cannot_be_pulled(workspace):
    settings = settings_for("127.0.0.1:9/stigmer/nope:missing", auto_pull=True)
    with pytest.raises(ImageNotFound, match=r"cannot pull 127.0.0.1:9/stigmer/nope:missing: .*"):
        async with Runner(settings) as runner:
            await runner.run("true", cwd=workspace)


def test_cli_exec_in_sandbox_and_sandbox_commands(sandbox_image, workspace, tmp_path):
    env = cli_environment(
        tmp_path, STIGMER_SANDBOX_IMAGE=sandbox_image, STIGMER_SANDBOX_AUTO_PULL="false"
    )
    done = run_cli(
        "exec",
        "--mode",
        "sandbox",
        "id -u; touch /workspace/x; python3 --version",
        env=env,
        cwd=workspace,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == str(workspace.stat().st_uid) != "0"
    assert lines[1].startswith("Python 3")
    assert (workspace / "x").stat().st_uid == workspace.stat().st_uid
    as_json = json.loads(
        run_cli(
            "exec",
            "--mode",
            "sandbox",
            "--backend",
            "docker",
            "--json",
            "exit 4",
            env=env,
            cwd=workspace,
        ).stdout
    )
    assert (as_json["exit_code"], as_json["mode"], as_json["backend"]) == (4, "sandbox", "docker")
    assert as_json["sandbox_id"]
    listing = run_cli("sandbox", "ls", "--backend", "docker", "--json", env=env)
    assert listing.returncode == 0
    assert isinstance(json.loads(listing.stdout), list)
    pruned = run_cli("sandbox", "prune", env=env)
    assert pruned.returncode == 0
    assert "removed" in pruned.stdout


def test_cli_engine_error_is_exit_2_one_line(workspace, tmp_path):
    env = cli_environment(tmp_path, DOCKER_HOST="unix:///nonexistent.sock")
    done = run_cli("exec", "--mode", "sandbox", "true", env=env, cwd=workspace)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Docker engine not reachable" in done.stderr
