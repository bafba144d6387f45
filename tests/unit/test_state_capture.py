"""Which commands skip the state capture: only those that cannot change cwd or exports."""

import pytest

from agent_runner.backends.executor import may_change_state


@pytest.mark.parametrize(
    "command",
    [
        "ls -la",
        "pytest -q",
        "git status",
        "cat a | grep b > out.txt",
        "echo hi",
        "make test",
        "npm run build",
    ],
)
def test_plain_commands_skip_the_capture(command):
    assert not may_change_state(command, {})


@pytest.mark.parametrize(
    "command",
    [
        "cd sub",
        "make && cd build",
        "export A=1",
        "unset A",
        "PATH=/x:$PATH",
        "A=1 make",
        "declare -x A=1",
        "typeset -x A",
        "readonly A",
        "source env.sh",
        ". ./env.sh",
        "ls; . env.sh",
        'eval "$SETUP"',
        "set -a",
        "pushd /tmp",
        "popd",
        "read -r PATH < file",
        "mapfile -t lines < f",
        "printf -v HOME x",
        "let COUNT=1",
        "(( COUNT++ ))",
        ": ${HOME:=/x}",
        "f() { cd /tmp; }; f",
        "exec bash",
        "getopts ab opt",
        "builtin cd /",
        "command cd /",
        "shopt -s autocd",
    ],
)
def test_anything_that_could_change_state_is_captured(command):
    assert may_change_state(command, {})


def test_bash_env_makes_every_command_captured():
    assert may_change_state("ls", {"BASH_ENV": "/etc/bashenv"})


def test_exported_functions_make_every_command_captured():
    assert may_change_state("ls", {"BASH_FUNC_ls%%": "() {  cd /tmp\n}"})


async def test_function_exported_by_the_host_that_changes_directory_is_carried(
    tmp_path, monkeypatch
):
    from agent_runner import Runner, Settings

    monkeypatch.setenv("BASH_FUNC_jump%%", "() {  cd inner\n}")
    (tmp_path / "inner").mkdir()
    async with Runner(Settings.defaults()) as runner, runner.session(cwd=tmp_path) as session:
        await session.run("jump")
        result = await session.run("pwd")
    assert result.stdout.strip() == str(tmp_path / "inner")
