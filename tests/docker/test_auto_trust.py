"""AUTO on a real engine: what a sandboxed command writes or exports never runs on the host
until the user accepts it (the reproductions of the hardening issue, item 1).

Each test plants code from the sandbox that, if it ran on the host, would create a marker
file outside the workspace (under the test's own temporary directory, which the sandbox
cannot see), then runs an innocent local command, and checks the marker is not there.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest

from agent_runner import ExecutionMode, Runner, Settings
from agent_runner.errors import InvalidSetting
from tests.conftest import cli_environment, run_cli, sandbox_workspace

pytestmark = pytest.mark.docker

SANDBOX = "sudo -n true 2>/dev/null; "
"""Sends the rest of the command to the sandbox (privilege); the test image has no sudo."""


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return sandbox_workspace(tmp_path / "ws")


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """Created only if planted code ran on the host (the sandbox has no such directory)."""
    return tmp_path / "host-only" / "planted"


@pytest.fixture(autouse=True)
def marker_directory(marker: Path) -> None:
    marker.parent.mkdir()


@pytest.fixture
def settings(sandbox_image: str) -> Settings:
    return Settings.defaults(mode="auto", sandbox_image=sandbox_image, auto_pull=False)


def plant(path: str, body: str, executable: bool = True) -> str:
    """Shell that writes ``body`` into ``path`` (in the sandbox, it being prefixed)."""
    chmod = f" && chmod +x {path}" if executable else ""
    return f"printf '%s\\n' {shlex.quote(body)} > {path}{chmod}"


def chown_to_workspace_owner(path: Path) -> None:
    """Files the test made beside the sandbox's belong to the same user (tests run as root)."""
    if os.getuid() == 0:
        for root, dirs, files in os.walk(path):
            for name in [*dirs, *files]:
                os.chown(os.path.join(root, name), 1000, 1000)


async def test_bash_env_planted_by_the_sandbox_does_not_run_on_the_host(
    settings, workspace, marker
):
    """The issue's reproduction: BASH_ENV exported in the sandbox, then a harmless ``ls``."""
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        planted = await session.run(
            SANDBOX + plant("plant.sh", f"touch {marker}", False) + "; export BASH_ENV=./plant.sh"
        )
        harmless = await session.run("ls")
        assert not marker.exists()
        held = session.held_variables()
        in_sandbox = await session.run(SANDBOX + 'echo "$BASH_ENV"')
    assert planted.mode is ExecutionMode.SANDBOX
    assert planted.reason is not None
    assert "not carried to the host: BASH_ENV (shell start-up)" in planted.reason
    assert harmless.mode is ExecutionMode.LOCAL
    assert harmless.stdout.split() == ["plant.sh"]
    assert held == {"BASH_ENV": "shell start-up"}
    assert in_sandbox.stdout == "./plant.sh\n"  # kept on the sandbox side


@pytest.mark.parametrize(
    ("name", "value", "family"),
    [
        ("LD_PRELOAD", "./evil.so", "loader"),
        ("PYTHONSTARTUP", "./startup.py", "interpreter start-up"),
        ("NODE_OPTIONS", "--require=./evil.js", "interpreter start-up"),
        ("PROMPT_COMMAND", "touch x", "shell start-up"),
        ("GIT_SSH_COMMAND", "sh -c 'touch x'", "git or ssh command"),
    ],
)
async def test_each_family_stays_in_the_sandbox_and_is_named(
    settings, workspace, name, value, family
):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        exported = await session.run(SANDBOX + f"export {name}={shlex.quote(value)}")
        on_host = await session.run(f'echo "${{{name}-unset}}"')
    assert exported.reason is not None
    assert f"not carried to the host: {name} ({family})" in exported.reason
    assert (on_host.mode, on_host.stdout) == (ExecutionMode.LOCAL, "unset\n")


async def test_git_ssh_command_from_the_sandbox_is_not_what_host_git_runs(
    settings, workspace, marker
):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(
            SANDBOX + f"export GIT_SSH_COMMAND={shlex.quote(f'touch {marker}; false')}"
        )
        fetched = await session.run("git ls-remote ssh://127.0.0.1:1/nothing 2>/dev/null; true")
    assert fetched.mode is ExecutionMode.LOCAL
    assert not marker.exists()


async def test_node_options_from_the_sandbox_do_not_reach_host_node(settings, workspace, marker):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(
            SANDBOX
            + plant("evil.js", f"require('fs').writeFileSync({str(marker)!r}, '')", False)
            + "; export NODE_OPTIONS=--require=./evil.js"
        )
        await session.run("node -e 0 2>/dev/null; true")
    assert not marker.exists()


async def test_harmless_variables_still_cross(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        exported = await session.run(SANDBOX + "export FOO=bar DEBUG=1 NODE_ENV=test")
        on_host = await session.run('echo "$FOO $DEBUG $NODE_ENV"')
    assert exported.reason is not None
    assert "not carried" not in exported.reason
    assert (on_host.mode, on_host.stdout) == (ExecutionMode.LOCAL, "bar 1 test\n")


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("./run.sh", '"./run.sh" runs run.sh, which the sandbox wrote'),
        ("bash run.sh", '"bash run.sh" runs run.sh, which the sandbox wrote'),
        (". ./run.sh", '". ./run.sh" sources run.sh, which the sandbox wrote'),
    ],
)
async def test_a_script_the_sandbox_wrote_runs_in_the_sandbox(
    settings, workspace, marker, command, reason
):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        wrote = await session.run(
            SANDBOX + plant("run.sh", f"touch {marker} 2>/dev/null; echo ran")
        )
        ran = await session.run(command)
    assert not marker.exists()
    assert wrote.reason is not None
    assert "sandbox-written, not run on the host until accepted" in wrote.reason
    assert (ran.mode, ran.reason, ran.stdout) == (ExecutionMode.SANDBOX, reason, "ran\n")


@pytest.fixture
def repository(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The workspace as a git repository the host's git accepts whoever owns it."""
    subprocess.run(["git", "init", "-q", str(workspace)], check=True)
    chown_to_workspace_owner(workspace)
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "safe.directory")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "*")
    return workspace


def wait_for(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    return path.exists()


async def test_a_git_hook_the_sandbox_wrote_sends_git_commit_to_the_sandbox(
    settings, repository, marker
):
    workspace = repository
    commit = "git -c user.email=a@b.c -c user.name=a commit -q --allow-empty -m x"
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(SANDBOX + plant(".git/hooks/pre-commit", f"#!/bin/sh\ntouch {marker}"))
        committed = await session.run(commit)
    assert not marker.exists()
    assert committed.mode is ExecutionMode.SANDBOX
    assert committed.reason is not None
    assert committed.reason.startswith(
        f'"{commit}" uses .git/hooks/pre-commit, which the sandbox wrote'
    )


async def test_a_makefile_the_sandbox_wrote_sends_make_to_the_sandbox(settings, workspace, marker):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(SANDBOX + plant("Makefile", f"all:\n\ttouch {marker}", False))
        made = await session.run("make")
    assert not marker.exists()
    assert (made.mode, made.reason) == (
        ExecutionMode.SANDBOX,
        '"make" uses Makefile, which the sandbox wrote',
    )


async def test_accepted_writes_run_locally_again(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(SANDBOX + plant("run.sh", "echo ran"))
        listed = [write.path for write in session.sandbox_writes()]
        held = await session.run("./run.sh")
        accepted = await session.trust_sandbox_writes()
        again = await session.run("./run.sh")
        left = session.sandbox_writes()
    assert listed == ["run.sh"]
    assert held.mode is ExecutionMode.SANDBOX
    assert accepted == ["run.sh"]
    assert (again.mode, again.stdout) == (ExecutionMode.LOCAL, "ran\n")
    assert left == []


async def test_accepted_variables_reach_the_host(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run(SANDBOX + "export EDITOR=vim")
        assert (await session.run('echo "${EDITOR-unset}"')).stdout == "unset\n"
        assert await session.trust_sandbox_variables(["EDITOR"]) == ["EDITOR"]
        on_host = await session.run('echo "${EDITOR-unset}"')
    assert on_host.stdout == "vim\n"


async def test_the_host_shell_does_not_follow_the_sandbox_out_through_a_link(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        moved = await session.run(SANDBOX + "ln -s / up && cd up")
        where = await session.run("pwd")
    assert moved.reason is not None
    assert "the host shell does not follow into up" in moved.reason
    assert (where.mode, where.stdout) == (ExecutionMode.LOCAL, f"{workspace}\n")


async def test_a_process_left_running_in_the_sandbox_holds_the_whole_workspace(
    settings, workspace, marker
):
    late = workspace / "late.sh"
    background = plant(".late", f"touch {marker}") + " && mv .late late.sh"  # whole, at once
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        started = await session.run(SANDBOX + f"(sleep 1; {background}) >/dev/null 2>&1 &")
        assert await asyncio.to_thread(wait_for, late, 60)
        ran = await session.run("./late.sh")
    assert not marker.exists()
    assert started.reason is not None
    assert "all of the workspace counts as sandbox-written" in started.reason
    assert ran.mode is ExecutionMode.SANDBOX
    assert ran.reason is not None
    assert "may have written" in ran.reason


async def test_local_and_sandbox_sessions_are_unaffected(settings, workspace, state_directory):
    async with Runner(settings) as runner:
        async with runner.session(cwd=workspace, mode="local") as local:
            wrote = await local.run(plant("run.sh", "echo ran"))
            ran = await local.run("./run.sh")
            with pytest.raises(InvalidSetting, match="only AUTO sessions"):
                local.sandbox_writes()
        async with runner.session(cwd=workspace, mode="sandbox") as sandboxed:
            exported = await sandboxed.run("export BASH_ENV=./run.sh; ./run.sh > out.txt")
            inside = await sandboxed.run('echo "$BASH_ENV"')
    assert (wrote.reason, ran.reason, ran.stdout) == (None, None, "ran\n")
    assert exported.reason is None
    assert inside.stdout.endswith("./run.sh\n")
    assert list(state_directory.iterdir()) == []  # nothing recorded, nothing paid


def test_the_cli_holds_writes_between_invocations_until_trusted(sandbox_image, workspace, tmp_path):
    env = cli_environment(
        tmp_path, STIGMER_SANDBOX_IMAGE=sandbox_image, STIGMER_SANDBOX_AUTO_PULL="false"
    )

    def cli(*args: str):
        return run_cli(*args, env=env, cwd=workspace)

    wrote = cli("exec", "--mode", "auto", SANDBOX + plant("run.sh", "echo ran"))
    assert wrote.returncode == 0, wrote.stderr
    assert "agent-runner: sandbox-written, not run on the host until accepted" in wrote.stderr
    held = cli("exec", "--mode", "auto", "./run.sh")
    assert held.stderr.startswith(
        'auto -> sandbox: "./run.sh" runs run.sh, which the sandbox wrote'
    )
    assert held.stdout == "ran\n"
    assert cli("explain", "./run.sh").stdout.startswith("auto -> sandbox")
    assert "  run.sh\tcode" in cli("trust").stdout
    assert cli("trust", "run.sh").stdout == "accepted: run.sh\n"
    local = cli("exec", "--mode", "auto", "./run.sh")
    assert local.stderr.startswith("auto -> local")
    assert local.stdout == "ran\n"


async def test_a_sandboxed_process_holds_the_workspace_while_it_may_write(
    settings, workspace, marker
):
    """A process runs beside the session's commands and may write at any time, so nothing
    in the workspace counts as the user's until the user accepts it."""
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        writer = await session.start(SANDBOX + "sleep 1; " + plant("late.sh", f"touch {marker}"))
        assert writer.mode is ExecutionMode.SANDBOX
        assert writer.reason is not None
        assert "sandboxed process" in writer.reason
        assert await writer.wait(timeout=60) == 0
        result = await session.run("./late.sh")
        assert result.mode is ExecutionMode.SANDBOX, result.reason
        assert not marker.exists()
        await session.trust_sandbox_writes()
        trusted = await session.run("./late.sh")
        assert trusted.mode is ExecutionMode.LOCAL, trusted.reason
    assert marker.exists(), "accepted writes run on the host again"
