import pytest

from agent_runner import ExecutionMode, Settings
from tests.contract.suite import BackendContract


class TestLocal(BackendContract):
    mode = ExecutionMode.LOCAL
    backend = "local"

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings.defaults()
