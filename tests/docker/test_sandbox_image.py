"""The basic sandbox image, built from sandbox/Dockerfile.sandbox.basic, used for real."""

import json
import re

import pytest

from agent_runner import ExecutionMode, Runner, Settings
from tests.conftest import ROOT, cli_environment, run_cli, sandbox_workspace

pytestmark = pytest.mark.docker
DOCKERFILE = ROOT / "sandbox" / "Dockerfile.sandbox.basic"
NPM_VERSION = re.search(r"^ARG NPM_VERSION=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)[1]
SIZE_CEILING = 300_000_000
"""The basic tier's promise (uncompressed, bytes as Docker counts them); sandbox/README.md
says where the bytes go."""


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "ws")


async def test_basic_image_has_its_tools_and_runs_as_a_user(basic_image, workspace):
    settings = Settings.defaults(mode="sandbox", sandbox_image=basic_image, auto_pull=False)
    async with Runner(settings) as runner:
        result = await runner.run(
            "id -u; python --version; node --version; npm --version; git --version; jq --version; "
            "python3 -c 'import requests, yaml; print(\"libs ok\")'",
            cwd=workspace,
        )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == str(workspace.stat().st_uid) != "0"
    assert lines[1].startswith("Python 3.11")
    assert lines[2].startswith("v")
    assert lines[-1] == "libs ok"


async def test_pip_install_works_as_non_root_on_a_read_only_root(basic_image, workspace):
    settings = Settings.defaults(mode="sandbox", sandbox_image=basic_image, auto_pull=False)
    async with Runner(settings) as runner, runner.session(cwd=workspace) as session:
        installed = await session.run("pip install --quiet six==1.16.0", timeout=300)
        assert installed.exit_code == 0, installed.stderr
        used = await session.run("python3 -c 'import six; print(six.__version__)'")
        assert used.stdout == "1.16.0\n"


def test_basic_image_stays_under_its_size_ceiling(docker_api, basic_image):
    size = docker_api.inspect_image(basic_image)["Size"]
    assert size <= SIZE_CEILING, (
        f"{basic_image} is {size / 1e6:.0f} MB, over the basic tier's {SIZE_CEILING / 1e6:.0f} MB: "
        "see sandbox/README.md for where the bytes go"
    )


async def test_node_runs_and_npm_is_the_pinned_release(basic_image, workspace):
    settings = Settings(mode="sandbox", sandbox_image=basic_image, auto_pull=False)
    async with Runner(settings) as runner:
        result = await runner.run(
            "node -e 'console.log(process.version, 6 * 7)'; npm --version; npx --version",
            cwd=workspace,
        )
    assert result.exit_code == 0, result.stderr
    node, npm, npx = result.stdout.splitlines()
    assert re.fullmatch(r"v\d+\.\d+\.\d+ 42", node)
    assert npm == npx == NPM_VERSION


async def test_npm_install_works_as_non_root_on_a_read_only_root(basic_image, workspace):
    settings = Settings(mode="sandbox", sandbox_image=basic_image, auto_pull=False)
    async with Runner(settings) as runner:
        result = await runner.run(
            "npm init -y >/dev/null && npm install --no-audit --no-fund is-number@7.0.0 "
            "&& node -e 'console.log(require(\"is-number\")(5))'",
            cwd=workspace,
            timeout=300,
        )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "true"
    installed = workspace / "node_modules" / "is-number" / "package.json"
    assert installed.stat().st_uid == workspace.stat().st_uid


async def test_python_venv_gets_its_own_pip(basic_image, workspace):
    settings = Settings(mode="sandbox", sandbox_image=basic_image, auto_pull=False)
    async with Runner(settings) as runner:
        result = await runner.run(
            "python -m venv .venv && .venv/bin/python -m pip --version "
            "&& .venv/bin/python -c 'import sys; print(sys.prefix)'",
            cwd=workspace,
            timeout=300,
        )
    assert result.exit_code == 0, result.stderr
    pip_line, prefix = result.stdout.splitlines()[-2:]
    assert "/workspace/.venv/" in pip_line
    assert prefix == "/workspace/.venv"


def test_auto_mode_end_to_end_from_the_cli(basic_image, workspace, tmp_path):
    env = cli_environment(
        tmp_path, STIGMER_SANDBOX_IMAGE=basic_image, STIGMER_SANDBOX_AUTO_PULL="false"
    )

    def auto(command: str):
        return run_cli(
            "exec", "--mode", "auto", "--json", command, env=env, cwd=workspace, timeout=300
        )

    read_only = json.loads(auto("ls -a").stdout)
    assert (read_only["mode"], read_only["exit_code"]) == (ExecutionMode.LOCAL, 0)
    install = json.loads(auto("pip install --quiet six && python3 -c 'import six'").stdout)
    assert (install["mode"], install["exit_code"]) == (ExecutionMode.SANDBOX, 0), install["stderr"]
    assert install["reason"] == '"pip install --quiet six" installs packages'
