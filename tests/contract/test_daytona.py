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


CLOUD_KEY = os.environ.get("DAYTONA_API_KEY")

if CLOUD_KEY:

    @pytest.mark.cloud
    class TestDaytonaCloud(BackendContract):
        """The same suite on real Daytona: ``DAYTONA_API_KEY`` (and optionally
        ``DAYTONA_API_URL``, ``DAYTONA_TARGET``, ``DAYTONA_DEV_TOOLS_SNAPSHOT_ID``) from the
        environment. Each test creates and deletes a sandbox in that organization."""

        mode = ExecutionMode.SANDBOX
        backend = "daytona"

        @pytest.fixture
        def settings(self) -> Settings:
            daytona = {
                "api_key": CLOUD_KEY,
                "api_url": os.environ.get("DAYTONA_API_URL") or None,
                "target": os.environ.get("DAYTONA_TARGET") or None,
                "snapshot": os.environ.get("DAYTONA_DEV_TOOLS_SNAPSHOT_ID") or None,
            }
            sandbox = {"backend": "daytona", "daytona": daytona}
            return Settings.defaults(mode="sandbox", sandbox=sandbox)

else:

    @pytest.mark.cloud
    def test_the_contract_suite_on_real_daytona():
        """Stands for the whole suite on real Daytona, so the summary says, once, why it
        did not run."""
        pytest.skip("cloud: DAYTONA_API_KEY is not set, so the suite did not run on real Daytona")
