"""``agent-runner`` on Daytona as a user runs it: a separate process, the emulator's URL and
key in its environment; and the workspace copied in and changes downloaded back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_runner import Runner
from agent_runner.backends.owner import Owner
from daytona import CreateSandboxFromSnapshotParams
from tests.conftest import cli_environment, run_cli
from tests.daytona.test_backend import settings_for
from tests.fakes.daytona import DaytonaEmulator
from tests.fakes.daytona.fixtures import DEV_TOOLS_SNAPSHOT

pytestmark = pytest.mark.docker


@pytest.fixture
def env(tmp_path: Path, daytona_emulator: DaytonaEmulator) -> dict[str, str]:
    return cli_environment(
        tmp_path,
        DAYTONA_API_URL=daytona_emulator.api_url,
        DAYTONA_API_KEY=daytona_emulator.api_key,
        DAYTONA_DEV_TOOLS_SNAPSHOT_ID=DEV_TOOLS_SNAPSHOT,
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    (path / "src").mkdir(parents=True)
    (path / "src" / "app.py").write_text("print('v1')\n")
    (path / "README").write_text("unchanged\n")
    return path


def test_exec_prints_stdout_and_stderr_apart(env, workspace):
    done = run_cli(
        "exec", "--backend", "daytona", "--mode", "sandbox", "echo out; echo err >&2",
        env=env, cwd=workspace,
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "out\n", "err\n")


def test_exec_runs_in_a_copy_of_the_workspace_and_download_brings_changes_back(env, workspace):
    command = "cat src/app.py; echo \"print('v2')\" > src/app.py; mkdir -p out; echo new > out/made"
    done = run_cli(
        "exec", "--backend", "daytona", "--mode", "sandbox", "--download", command,
        env=env, cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "print('v1')\n"
    assert done.stderr == "agent-runner: downloaded 2 changed file(s)\n"
    assert (workspace / "src" / "app.py").read_text() == "print('v2')\n"
    assert (workspace / "out" / "made").read_text() == "new\n"
    assert (workspace / "README").read_text() == "unchanged\n"


def test_without_download_the_host_workspace_is_never_written(env, workspace):
    done = run_cli(
        "exec", "--backend", "daytona", "--mode", "sandbox", "echo changed > README",
        env=env, cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (workspace / "README").read_text() == "unchanged\n"


async def test_download_from_python_returns_the_changed_paths(daytona_emulator, workspace):
    settings = settings_for(daytona_emulator)
    copy = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"workspace": "copy"})}
    )
    async with Runner(copy) as runner, runner.session(cwd=workspace) as session:
        assert (await session.run("ls; pwd")).stdout.splitlines()[:2] == ["README", "src"]
        assert await session.download() == []
        await session.run("echo edited >> README")
        assert await session.download() == ["README"]
    assert (workspace / "README").read_text() == "unchanged\nedited\n"


async def test_sandbox_ls_and_prune_follow_the_owner_rules(env, daytona_client):
    alive = Owner.current()
    dead = Owner(2**22 + 1, alive.host, "1")
    made = {}
    for name, owner in (("alive", alive), ("dead", dead)):
        labels = owner.labels(f"exec-{name}-ls", DEV_TOOLS_SNAPSHOT)
        params = CreateSandboxFromSnapshotParams(snapshot=DEV_TOOLS_SNAPSHOT, labels=labels)
        made[name] = await daytona_client.create(params)
    try:
        listed = run_cli("sandbox", "ls", "--backend", "daytona", "--json", env=env)
        rows = {row["execution_id"]: row for row in json.loads(listed.stdout)}
        assert rows["exec-alive-ls"]["orphaned"] is False
        assert rows["exec-dead-ls"]["orphaned"] is True
        assert rows["exec-dead-ls"]["image"] == DEV_TOOLS_SNAPSHOT
        pruned = run_cli("sandbox", "prune", "--backend", "daytona", env=env)
        assert pruned.returncode == 0, pruned.stderr
        assert f"removed {made['dead'].id[:12]} (exec-dead-ls" in pruned.stdout
        assert made["alive"].id[:12] not in pruned.stdout
        after = run_cli("sandbox", "ls", "--backend", "daytona", "--json", env=env)
        assert [row["execution_id"] for row in json.loads(after.stdout)] == ["exec-alive-ls"]
    finally:
        await made["alive"].delete(wait=True)
