"""Backends are found by name, imported on first use, and a missing SDK is an install hint."""

import pytest

from agent_runner import Runner, Settings
from agent_runner.backends import registry
from agent_runner.backends.registry import BackendEntry, sandbox_backend
from agent_runner.errors import InvalidSetting, MissingExtra


def test_the_configured_backend_is_created(monkeypatch):
    backend = sandbox_backend(Settings.defaults(mode="sandbox"))
    assert backend.name == "docker"


def test_an_unknown_backend_name_lists_the_accepted_ones():
    with pytest.raises(
        InvalidSetting,
        match=r"unknown sandbox backend 'podman': expected one of docker, daytona, kubernetes",
    ):
        sandbox_backend(Settings.defaults(), "podman")


def test_a_backend_whose_sdk_is_missing_says_what_to_install(monkeypatch):
    entry = BackendEntry("agent_runner.backends.nowhere", "Nothing", ("no_such_sdk_x",), "cloudy")
    monkeypatch.setitem(registry.BACKENDS, "cloudy", entry)
    with pytest.raises(MissingExtra) as error:
        sandbox_backend(Settings.defaults(), "cloudy")
    assert str(error.value) == (
        "the cloudy backend needs no_such_sdk_x: pip install 'stigmer-agent-runner[cloudy]'"
    )


async def test_a_session_on_an_unknown_backend_fails_before_running(tmp_path):
    async with Runner(Settings.defaults(mode="sandbox")) as runner:
        with pytest.raises(InvalidSetting, match="unknown sandbox backend 'nope'"):
            await runner.run("true", backend="nope", cwd=tmp_path)
