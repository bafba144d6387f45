import pytest

from agent_runner import ExecutionMode, Settings
from tests.conftest import sandbox_workspace
from tests.contract.suite import BackendContract

pytestmark = pytest.mark.docker


class TestDocker(BackendContract):
    mode = ExecutionMode.SANDBOX

    @pytest.fixture
    def settings(self, sandbox_image) -> Settings:
        return Settings(mode="sandbox", sandbox_image=sandbox_image, auto_pull=False)

    @pytest.fixture
    def workspace(self, tmp_path):
        return sandbox_workspace(tmp_path / "workspace")
