import pytest

from agent_runner import ExecutionMode, Settings
from tests.contract.suite import BackendContract


class TestLocal(BackendContract):
    mode = ExecutionMode.LOCAL

    @pytest.fixture
    def settings(self) -> Settings:
        return Settings()
