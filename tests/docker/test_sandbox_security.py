"""What a command inside the sandbox can and cannot do, checked from inside, on a real engine."""

import asyncio
import os
from pathlib import Path

import pytest

from agent_runner import Runner, Settings
from agent_runner.errors import InvalidSetting, WorkingDirectoryMissing
from tests.conftest import sandbox_workspace

pytestmark = pytest.mark.docker


@pytest.fixture
def workspace(tmp_path) -> Path:
    return sandbox_workspace(tmp_path / "ws")


def sandbox_settings(image: str, **sandbox) -> Settings:
    return Settings.defaults(mode="sandbox", sandbox_image=image, auto_pull=False, sandbox=sandbox)


async def run_in_sandbox(settings: Settings, workspace: Path, command: str, **options):
    async with Runner(settings) as runner:
        return await runner.run(command, cwd=workspace, **options)


async def test_runs_as_the_workspace_owner_never_root(sandbox_image, workspace):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image), workspace, "id -u; id -g; touch made-here"
    )
    owner = workspace.stat()
    assert result.stdout.split() == [str(owner.st_uid), str(owner.st_gid)]
    assert result.stdout.split()[0] != "0"
    created = (workspace / "made-here").stat()
    assert (created.st_uid, created.st_gid) == (owner.st_uid, owner.st_gid)


async def test_no_capabilities_and_no_privilege_gain(sandbox_image, workspace):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image),
        workspace,
        "grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status",
    )
    fields = dict(line.split(":\t") for line in result.stdout.splitlines())
    assert fields["CapEff"] == fields["CapPrm"] == fields["CapBnd"] == "0000000000000000"
    assert fields["NoNewPrivs"] == "1"


async def test_root_filesystem_is_read_only_but_tmp_home_and_workspace_are_writable(
    sandbox_image, workspace
):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image),
        workspace,
        "touch /etc/evil 2>/dev/null && echo etc-writable; touch /usr/evil 2>/dev/null && echo usr-writable;"
        " touch /tmp/ok && touch $HOME/ok && touch /workspace/ok && echo writable-ok",
    )
    assert result.stdout == "writable-ok\n"


async def test_no_docker_socket_and_no_host_devices(sandbox_image, workspace):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image),
        workspace,
        "ls /var/run/docker.sock /run/docker.sock 2>&1 | grep -c 'No such'; ls /dev | sort | tr '\\n' ' '",
    )
    assert result.stdout.splitlines()[0] == "2"
    devices = set(result.stdout.splitlines()[1].split())
    assert not devices & {"sda", "vda", "nvme0n1", "mem", "kmem", "kvm"}


async def test_host_environment_does_not_leak_unless_passed_through(
    sandbox_image, workspace, monkeypatch
):
    monkeypatch.setenv("SECRET_TOKEN", "do-not-leak")
    monkeypatch.setenv("HTTP_PROXY_FOR_TEST", "http://proxy:3128")
    settings = sandbox_settings(sandbox_image, env_passthrough=["HTTP_PROXY_FOR_TEST"])
    result = await run_in_sandbox(
        settings, workspace, 'echo "${SECRET_TOKEN-absent} $HTTP_PROXY_FOR_TEST"'
    )
    assert result.stdout == "absent http://proxy:3128\n"


async def test_network_none_has_only_loopback(sandbox_image, workspace):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image, network="none"),
        workspace,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    )
    assert result.stdout.split() == ["lo"]


async def test_bridge_network_has_an_interface(sandbox_image, workspace):
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image),
        workspace,
        "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '",
    )
    assert "eth0" in result.stdout.split()


async def test_ca_bundle_is_mounted_and_announced(sandbox_image, workspace, tmp_path):
    bundle = tmp_path / "corporate.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n")
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image, ca_bundle=str(bundle)),
        workspace,
        'cat "$SSL_CERT_FILE"; echo "$PIP_CERT $REQUESTS_CA_BUNDLE $NODE_EXTRA_CA_CERTS"',
    )
    assert "MIIBfake" in result.stdout
    assert result.stdout.splitlines()[-1] == " ".join(["/etc/stigmer/ca-bundle.crt"] * 3)


async def test_missing_ca_bundle_is_a_clear_error(sandbox_image, workspace, tmp_path):
    with pytest.raises(InvalidSetting, match="ca_bundle .* is not a file"):
        await run_in_sandbox(
            sandbox_settings(sandbox_image, ca_bundle=str(tmp_path / "nope.pem")), workspace, "true"
        )


async def test_missing_workspace_is_a_clear_error(sandbox_image, tmp_path):
    with pytest.raises(WorkingDirectoryMissing, match="does not exist"):
        await run_in_sandbox(sandbox_settings(sandbox_image), tmp_path / "missing", "true")


async def test_copy_workspace_never_writes_the_host(sandbox_image, workspace):
    (workspace / "input.txt").write_text("from host\n")
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image, workspace="copy"),
        workspace,
        "cat input.txt && echo changed > input.txt && touch new.txt && ls",
    )
    assert result.stdout == "from host\ninput.txt\nnew.txt\n"
    assert (workspace / "input.txt").read_text() == "from host\n"
    assert not (workspace / "new.txt").exists()


async def test_no_workspace_gives_an_empty_writable_one(sandbox_image, workspace):
    (workspace / "private.txt").write_text("host only")
    result = await run_in_sandbox(
        sandbox_settings(sandbox_image, workspace="none"),
        workspace,
        "pwd; ls -A | wc -l; touch x && echo ok",
    )
    assert result.stdout == "/workspace\n0\nok\n"


async def test_fork_bomb_hits_the_pids_limit_and_the_session_survives(sandbox_image, workspace):
    settings = sandbox_settings(sandbox_image, pids_limit=64)
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        bomb = await session.run("bomb() { bomb | bomb; }; bomb", timeout=3)
        assert bomb.timed_out or bomb.exit_code != 0
        await asyncio.sleep(0.5)
        after = await session.run("echo still-here", timeout=20)
        assert after.stdout == "still-here\n"


async def test_memory_limit_kill_is_reported(sandbox_image, workspace):
    settings = sandbox_settings(sandbox_image, memory="64m", tmp_size="8m")
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        hog = await session.run(
            "python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'", timeout=60
        )
        assert hog.oom_killed
        assert hog.exit_code == 137
        after = await session.run("echo alive")
        assert after.stdout == "alive\n"


@pytest.mark.parametrize("place", ["/tmp", "$HOME"])
async def test_filling_tmp_or_home_is_no_space_left_and_the_session_works_on(
    sandbox_image, workspace, place
):
    settings = sandbox_settings(sandbox_image, memory="512m", tmp_size="64m")
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        fill = await session.run(f"dd if=/dev/zero of={place}/fill bs=1M count=100000", timeout=120)
        assert fill.exit_code != 0
        assert not fill.oom_killed
        assert "No space left on device" in fill.stderr
        after = await session.run(f"echo alive; du -sm {place}/fill | cut -f1")
        assert after.stdout.splitlines()[0] == "alive"
        assert int(after.stdout.splitlines()[1]) <= 64


async def test_tmp_size_must_leave_room_in_memory(sandbox_image, workspace):
    settings = sandbox_settings(sandbox_image, memory="256m", tmp_size="128m")
    with pytest.raises(InvalidSetting, match="more than a quarter of execution.sandbox.memory"):
        await run_in_sandbox(settings, workspace, "true")


async def test_timeout_kills_the_tree_but_keeps_the_session(sandbox_image, workspace):
    async with (
        Runner(sandbox_settings(sandbox_image)) as runner,
        runner.session(cwd=workspace) as session,
    ):
        await session.run("export KEEP=1")
        slow = await session.run("echo partial; sleep 30 & sleep 31", timeout=0.5)
        assert (slow.timed_out, slow.exit_code, slow.stdout) == (True, 124, "partial\n")
        check = await session.run("pgrep -f 'slee[p] 3' || echo none; echo $KEEP")
        assert check.stdout == "none\n1\n"
        assert check.sandbox_id == slow.sandbox_id


def test_configured_user_is_used_and_root_is_refused(tmp_path):
    from pydantic import ValidationError

    from agent_runner.backends.docker.spec import sandbox_user

    assert sandbox_user(Settings.defaults(sandbox={"user": "4242"}), tmp_path) == (4242, 4242)
    assert sandbox_user(Settings.defaults(sandbox={"user": "4242:100"}), tmp_path) == (4242, 100)
    with pytest.raises(ValidationError, match="pattern"):
        Settings.defaults(sandbox={"user": "0:0"})


def test_root_owned_workspace_falls_back_to_the_sandbox_user(tmp_path):
    from agent_runner.backends.docker.spec import FALLBACK_USER, sandbox_user

    if os.getuid() != 0:
        pytest.skip("needs a root-owned directory")
    assert sandbox_user(Settings.defaults(), tmp_path) == FALLBACK_USER
