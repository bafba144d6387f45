"""AUTO on a real engine: each command runs where the policy says, as one shell."""

import os
from pathlib import Path

import pytest

from agent_runner import ExecutionMode, Runner, Settings
from tests.conftest import cli_environment, run_cli, sandbox_workspace

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "ws")


@pytest.fixture
def settings(sandbox_image) -> Settings:
    return Settings.defaults(mode="auto", sandbox_image=sandbox_image, auto_pull=False)


async def test_each_command_runs_where_the_policy_says_with_the_reason(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        local = await session.run("echo read-only; hostname")
        risky = await session.run("sudo -n true 2>/dev/null; hostname")
    assert (local.mode, risky.mode) == (ExecutionMode.LOCAL, ExecutionMode.SANDBOX)
    assert local.stdout.splitlines()[1] == os.uname().nodename
    assert risky.stdout.strip() != os.uname().nodename
    assert risky.reason is not None
    assert "sudo" in risky.reason
    assert local.reason is not None
    assert risky.sandbox_id is not None
    assert local.sandbox_id is None


async def test_directory_and_variables_carry_over_both_ways(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        first = await session.run("mkdir -p sub/deeper && cd sub && export FROM_HOST=1")
        assert first.mode is ExecutionMode.LOCAL
        in_sandbox = await session.run(
            'sudo -n true 2>/dev/null; pwd; echo "$FROM_HOST"; cd deeper && export FROM_SANDBOX=2'
        )
        assert in_sandbox.mode is ExecutionMode.SANDBOX
        assert in_sandbox.stdout.splitlines()[:2] == ["/workspace/sub", "1"]
        back = await session.run('pwd; echo "$FROM_HOST $FROM_SANDBOX"')
        assert back.mode is ExecutionMode.LOCAL
        assert back.stdout.splitlines() == [str(workspace / "sub" / "deeper"), "1 2"]


async def test_host_path_variable_never_reaches_the_sandbox(settings, workspace, monkeypatch):
    monkeypatch.setenv("HOST_ONLY_SECRET", "s3cret")
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run("export PATH=/opt/host-only:$PATH; export SHARED=yes")
        result = await session.run(
            'sudo -n true 2>/dev/null; echo "$PATH|${HOST_ONLY_SECRET-none}|$SHARED"'
        )
    path, secret, shared = result.stdout.strip().split("|")
    assert "/opt/host-only" not in path
    assert (secret, shared) == ("none", "yes")


async def test_leaving_the_workspace_on_the_host_is_judged_from_there(settings, workspace):
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run("cd /")
        decision = await session.run("touch should-not-exist-on-host-root 2>/dev/null; echo done")
    assert decision.mode is ExecutionMode.SANDBOX
    assert not Path("/should-not-exist-on-host-root").exists()  # noqa: ASYNC240


def test_cli_prints_the_decision_on_stderr_unless_quiet(sandbox_image, workspace, tmp_path):
    env = cli_environment(
        tmp_path, STIGMER_SANDBOX_IMAGE=sandbox_image, STIGMER_SANDBOX_AUTO_PULL="false"
    )

    def run(*args: str):
        return run_cli("exec", "--mode", "auto", *args, env=env, cwd=workspace)

    local = run("ls")
    assert local.returncode == 0
    assert local.stderr.startswith("auto -> local: ")
    sandboxed = run("pip install six >/dev/null 2>&1; echo ran")
    assert sandboxed.stdout == "ran\n"
    assert sandboxed.stderr.startswith('auto -> sandbox: "pip install six" installs packages')
    quiet = run("--quiet", "ls")
    assert quiet.stderr == ""


async def test_killed_sandbox_command_keeps_what_the_host_shared(image_without_python, workspace):
    """On the exec-per-command path, a command killed before its state is recorded must not
    hand back an older state than the one the host side shared in the meantime."""
    settings = Settings.defaults(mode="auto", sandbox_image=image_without_python, auto_pull=False)
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        await session.run("sudo -n true 2>/dev/null; true")
        await session.run("export SHARED=from-host")
        killed = await session.run("sudo -n true 2>/dev/null; sleep 30", timeout=1)
        assert (killed.mode, killed.timed_out) == (ExecutionMode.SANDBOX, True)
        result = await session.run('sudo -n true 2>/dev/null; echo "$SHARED"')
    assert result.stdout == "from-host\n"


@pytest.fixture(scope="module")
def image_with_its_own_variables(docker_api, sandbox_image, image_without_python):
    """The test images plus variables of their own (as the basic tier sets PIP_CERT and others)."""
    import io

    built = []
    for base, tag in (
        (sandbox_image, "stigmer/test-image-env:local"),
        (image_without_python, "stigmer/test-image-env-no-python:local"),
    ):
        dockerfile = f"FROM {base}\nENV IMAGE_ONLY=from-the-image IMAGE_CERT=/etc/ssl/x.pem\n"
        for _ in docker_api.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True):
            pass
        built.append(tag)
    return built


@pytest.mark.parametrize("which", [0, 1], ids=["executor", "exec-per-command"])
async def test_the_images_own_variables_are_not_taken_for_a_commands(
    image_with_its_own_variables, workspace, which, monkeypatch
):
    """The sandbox's first command must not look as if it had set the whole image's
    environment: nothing of it crosses to the host shell, and nothing is reported held."""
    monkeypatch.delenv("IMAGE_ONLY", raising=False)
    image = image_with_its_own_variables[which]
    settings = Settings.defaults(mode="auto", sandbox_image=image, auto_pull=False)
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        risky = await session.run("sudo -n true 2>/dev/null; echo $IMAGE_ONLY; export MINE=1")
        assert risky.mode is ExecutionMode.SANDBOX
        assert risky.stdout == "from-the-image\n"
        assert "not carried" not in (risky.reason or "")
        local = await session.run('echo "${IMAGE_ONLY-unset} ${IMAGE_CERT-unset} $MINE"')
        assert local.mode is ExecutionMode.LOCAL
        assert local.stdout == "unset unset 1\n"
