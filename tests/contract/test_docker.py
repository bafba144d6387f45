import pytest

from agent_runner import ExecutionMode, Settings
from tests.conftest import sandbox_workspace
from tests.contract.suite import BackendContract

pytestmark = pytest.mark.docker


class TestDocker(BackendContract):
    mode = ExecutionMode.SANDBOX
    backend = "docker"

    @pytest.fixture
    def settings(self, sandbox_image) -> Settings:
        return Settings.defaults(mode="sandbox", sandbox_image=sandbox_image, auto_pull=False)

    @pytest.fixture
    def workspace(self, tmp_path):
        return sandbox_workspace(tmp_path / "workspace")


class TestDockerWithoutPython(TestDocker):
    """The same contract on an image without python3 (one docker exec per command)."""

    @pytest.fixture
    def settings(self, image_without_python) -> Settings:
        return Settings.defaults(
            mode="sandbox", sandbox_image=image_without_python, auto_pull=False
        )

    async def test_background_child_does_not_hold_the_command(self, runner, workspace):
        """Docker ends an exec whose output a background child still holds only after its own
        grace period, so this path returns later than the executor path, but it returns."""
        result, took = await self.timed(runner, workspace, "sleep 20 & echo started")
        assert result.stdout == "started\n"
        assert took < 15, f"a command whose background child sleeps 20 s took {took:.1f} s"
