"""The contract suite on Daytona: against the local emulator through the real SDK, and
against real Daytona (``cloud``) when ``DAYTONA_API_KEY`` is set."""

import os

import pytest

from agent_runner import ExecutionMode, Settings
from tests.contract.suite import BackendContract
from tests.fakes.daytona.fixtures import DEV_TOOLS_SNAPSHOT

pytestmark = pytest.mark.docker


class TestDaytona(BackendContract):
    """Each sandbox a real container behind the emulated API, toolbox and daemon."""

    mode = ExecutionMode.SANDBOX
    backend = "daytona"

    @pytest.fixture
    def settings(self, daytona_emulator) -> Settings:
        daytona = {
            "api_key": daytona_emulator.api_key,
            "api_url": daytona_emulator.api_url,
            "snapshot": DEV_TOOLS_SNAPSHOT,
        }
        return Settings.defaults(mode="sandbox", sandbox={"backend": "daytona", "daytona": daytona})


@pytest.mark.cloud
class TestDaytonaCloud(BackendContract):
    """The same suite on real Daytona: ``DAYTONA_API_KEY`` (and optionally
    ``DAYTONA_API_URL``, ``DAYTONA_TARGET``, ``DAYTONA_DEV_TOOLS_SNAPSHOT_ID``) from the
    environment; skipped, with that reason in the summary, without a key."""

    mode = ExecutionMode.SANDBOX
    backend = "daytona"

    @pytest.fixture
    def settings(self) -> Settings:
        if not os.environ.get("DAYTONA_API_KEY"):
            pytest.skip("cloud: DAYTONA_API_KEY is not set, so real Daytona is not tried")
        daytona = {
            "api_key": os.environ["DAYTONA_API_KEY"],
            "api_url": os.environ.get("DAYTONA_API_URL") or None,
            "target": os.environ.get("DAYTONA_TARGET") or None,
            "snapshot": os.environ.get("DAYTONA_DEV_TOOLS_SNAPSHOT_ID") or None,
        }
        return Settings.defaults(mode="sandbox", sandbox={"backend": "daytona", "daytona": daytona})
