"""Custom requirements through a session: checked first, handed to the backend, one image
per session, and a clear line from a backend that cannot install them."""

import pytest

from agent_runner import Runner, Settings
from agent_runner.backends.base import CommandOutcome, ShellState
from agent_runner.errors import ModeUnavailable, RequirementsError


class Shell:
    sandbox_id = "fake-1"
    state = ShellState("/workspace", {})

    async def run(self, request, output):
        return CommandOutcome(0)

    async def adjust(self, cwd, changes):
        pass

    async def close(self):
        pass


class Backend:
    name = "fakecloud"

    def __init__(self):
        self.specs = []

    async def open_shell(self, spec):
        self.specs.append(spec)
        return Shell()

    async def close(self):
        pass


class LayeringBackend(Backend):
    supports_requirements = True


@pytest.fixture
def files(tmp_path):
    made = {}
    for name, text in {"a.txt": "six\n", "b.txt": "attrs\n"}.items():
        (tmp_path / name).write_text(text)
        made[name] = tmp_path / name
    return made


async def runner_with(backend):
    runner = Runner(Settings.defaults(mode="sandbox"))
    runner._backends["docker"] = backend  # the configured sandbox backend, replaced
    return runner


async def test_a_backend_that_cannot_layer_says_so_in_one_line(files):
    backend = Backend()
    runner = await runner_with(backend)
    async with runner:
        with pytest.raises(ModeUnavailable) as refused:
            await runner.run("true", requirements=files["a.txt"])
    assert str(refused.value) == (
        f"the fakecloud backend cannot install custom requirements ({files['a.txt']}) into its "
        "sandboxes: use the docker backend, or put the packages into the image it starts from"
    )
    assert backend.specs == []


async def test_the_requirements_travel_in_the_shell_spec(files):
    backend = LayeringBackend()
    async with await runner_with(backend) as runner:
        await runner.run("true", requirements=files["a.txt"])
    (spec,) = backend.specs
    assert spec.requirements.path == files["a.txt"]
    assert spec.requirements.content == b"six\n"


async def test_a_session_keeps_its_image_for_its_life(files, tmp_path):
    backend = LayeringBackend()
    async with await runner_with(backend) as runner, runner.session("s1") as session:
        await session.run("true", requirements=files["a.txt"])
        await session.run("true")  # no requirements: the same sandbox
        await session.run("true", requirements=files["a.txt"])
        with pytest.raises(RequirementsError, match="a session keeps one image for its life"):
            await session.run("true", requirements=files["b.txt"])
        files["a.txt"].write_text("six\nattrs\n")
        with pytest.raises(RequirementsError, match="the file has changed since"):
            await session.run("true", requirements=files["a.txt"])
    assert len(backend.specs) == 1


async def test_a_sandbox_opened_without_requirements_cannot_take_them_later(files):
    backend = LayeringBackend()
    async with await runner_with(backend) as runner, runner.session("s2") as session:
        await session.open()
        with pytest.raises(RequirementsError, match="without custom requirements"):
            await session.run("true", requirements=files["a.txt"])


async def test_bad_requirements_never_reach_the_backend(tmp_path):
    backend = LayeringBackend()
    async with await runner_with(backend) as runner:
        with pytest.raises(RequirementsError, match="does not exist"):
            await runner.run("true", requirements=tmp_path / "missing.txt")
        with pytest.raises(RequirementsError, match="is a directory"):
            await runner.session("s3").open(requirements=tmp_path)
    assert backend.specs == []
