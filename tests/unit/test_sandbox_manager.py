"""The plan's function names keep working as a facade over Runner."""

import pytest

from agent_runner import ExecutionMode, sandbox_manager
from agent_runner.errors import InvalidSetting, RequirementsError


@pytest.fixture(autouse=True)
def isolated_config(tmp_path, monkeypatch):
    monkeypatch.setenv("STIGMER_CONFIG", str(tmp_path / "config.yaml"))
    monkeypatch.delenv("STIGMER_EXECUTION_MODE", raising=False)


async def test_execute_local_and_execute_command_default_to_local():
    result = await sandbox_manager.execute_local("echo 'it'\"'\"'s fine'")
    assert (result.stdout, result.mode) == ("it's fine\n", ExecutionMode.LOCAL)
    result = await sandbox_manager.execute_command("exit 3")
    assert (result.exit_code, result.mode) == (3, ExecutionMode.LOCAL)


async def test_execution_id_shares_one_session_until_cleanup(tmp_path):
    await sandbox_manager.execute_command(
        f"cd {tmp_path} && export SHARED=1", execution_id="facade-1"
    )
    result = await sandbox_manager.execute_command('pwd; echo "$SHARED"', execution_id="facade-1")
    assert result.stdout == f"{tmp_path}\n1\n"
    await sandbox_manager.cleanup_sandbox("facade-1")
    fresh = await sandbox_manager.execute_command('echo "${SHARED-none}"', execution_id="facade-1")
    assert fresh.stdout == "none\n"
    await sandbox_manager.cleanup_sandbox()


def test_detect_execution_mode_parses_instead_of_matching_substrings(tmp_path):
    assert (
        sandbox_manager.detect_execution_mode("echo pipeline", cwd=tmp_path) is ExecutionMode.LOCAL
    )
    assert (
        sandbox_manager.detect_execution_mode("echo hi > /etc/hosts", cwd=tmp_path)
        is ExecutionMode.SANDBOX
    )
    assert (
        sandbox_manager.detect_execution_mode("pip install x", cwd=tmp_path)
        is ExecutionMode.SANDBOX
    )


def test_requirements_send_auto_to_the_sandbox(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\n")
    assert sandbox_manager.detect_execution_mode("ls", requirements) is ExecutionMode.SANDBOX


async def test_a_missing_requirements_file_is_one_line_before_any_sandbox(tmp_path):
    with pytest.raises(RequirementsError, match=r"requirements file .*missing.txt does not exist"):
        await sandbox_manager.execute_in_sandbox("true", tmp_path / "missing.txt")
    with pytest.raises(RequirementsError, match="is a directory"):
        await sandbox_manager.create_sandbox_container("facade-req", tmp_path)
    await sandbox_manager.cleanup_sandbox()


async def test_requirements_in_local_mode_are_refused_not_ignored(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six\n")
    with pytest.raises(InvalidSetting, match="runs in local mode: use sandbox or auto mode"):
        await sandbox_manager.execute_command("true", "local", requirements)
