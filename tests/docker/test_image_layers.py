"""Custom requirements as a layer on the sandbox image, for real: packages from PyPI through
the host's CA bundle, built once, reused, rebuilt when the file changes, pruned when stale.

Builds are counted from the events the library reports and checked by image id; nothing
here depends on how long anything took.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator

import pytest

from agent_runner import ExecutionMode, Runner, Settings
from agent_runner.errors import RequirementsError
from agent_runner.images import BuildStarted, Client, prune_layers
from agent_runner.images.layers import BASE_LABEL
from tests.conftest import build_or_fail, sandbox_workspace
from tests.registry import remove_images

pytestmark = pytest.mark.docker
IMPORT_SIX = "python3 -c 'import six; print(six.__version__)'"


@pytest.fixture(scope="module")
def layer_base(docker_api, basic_image) -> Iterator[str]:
    """The basic tier under an id of this run's own, so every layer here is built afresh and
    removed afterwards, whatever other runs on this engine have built."""
    import io

    tag = f"stigmer/test-layer-base:{uuid.uuid4().hex[:12]}"
    dockerfile = f"FROM {basic_image}\nLABEL stigmer.test.run={tag.split(':')[1]}\n"
    build_or_fail(docker_api, "the layers' base", fileobj=io.BytesIO(dockerfile.encode()), tag=tag)
    base_id = docker_api.inspect_image(tag)["Id"]
    yield tag
    for image in docker_api.images(filters={"label": f"{BASE_LABEL}={base_id}"}):
        remove_images(docker_api, *(image["RepoTags"] or [image["Id"]]))
    remove_images(docker_api, tag)


@pytest.fixture
def settings(layer_base) -> Settings:
    return Settings.defaults(mode="sandbox", sandbox_image=layer_base, auto_pull=False)


@pytest.fixture
def workspace(tmp_path):
    return sandbox_workspace(tmp_path / "ws")


@pytest.fixture
def builds(caplog):
    """The layer builds started while the test runs (the library's own events)."""
    caplog.set_level(logging.DEBUG, logger="agent_runner.images")

    def started() -> list[str]:
        events = [getattr(record, "progress", None) for record in caplog.records]
        return [event.image for event in events if isinstance(event, BuildStarted)]

    return started


def requirements(tmp_path, text: str, name: str = "requirements.txt"):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def client(docker_api) -> Client:
    import docker

    return Client(docker_api, docker.errors)


async def test_a_layer_is_built_once_reused_rebuilt_on_change_and_pruned_when_stale(
    settings, workspace, tmp_path, builds, client, docker_api
):
    path = requirements(tmp_path, "six==1.16.0\n")
    async with Runner(settings) as runner:
        first = await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
        assert (first.exit_code, first.stdout) == (0, "1.16.0\n"), first.stderr
        (tag,) = builds()
        built_id = docker_api.inspect_image(tag)["Id"]

        second = await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
        assert second.stdout == "1.16.0\n"
        assert builds() == [tag]  # the second call did not build
        assert docker_api.inspect_image(tag)["Id"] == built_id

    async with Runner(settings) as runner:  # a new runner (a new process) finds it too
        await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
    assert builds() == [tag]

    path.write_text("six==1.17.0\n")
    async with Runner(settings) as runner:
        changed = await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
    assert changed.stdout == "1.17.0\n"
    assert len(builds()) == 2
    new_tag = builds()[1]
    assert new_tag != tag

    configured = settings.model_copy(update={"sandbox_image": tag})
    kept = prune_layers(client, configured)
    assert [(p.image.name, p.removed) for p in kept] == [(tag, False)]
    assert kept[0].why == "kept: it is execution.sandbox_image"
    pruned = prune_layers(client, settings)
    assert [(p.image.name, p.removed, p.why) for p in pruned] == [
        (tag, True, f"{path} has changed since")
    ]
    assert client.inspect(tag) is None
    assert client.inspect(new_tag) is not None


async def test_concurrent_callers_build_a_layer_once(settings, workspace, tmp_path, builds):
    path = requirements(tmp_path, "six==1.16.0\n# built once by three callers\n")
    async with Runner(settings) as one, Runner(settings) as other:
        # Two sessions of one backend share its build; another backend waits on the lock.
        results = await asyncio.gather(
            one.run(IMPORT_SIX, cwd=workspace, requirements=path),
            one.run(IMPORT_SIX, cwd=workspace, requirements=path),
            other.run(IMPORT_SIX, cwd=workspace, requirements=path),
        )
    assert [r.stdout for r in results] == ["1.16.0\n"] * 3, [r.stderr for r in results]
    assert len(builds()) == 1


@pytest.mark.parametrize(
    ("text", "pip_says"),
    [
        ("six==1.16.0\nthis is not a requirement !!\n", "Invalid requirement"),
        ("stigmer-no-such-package-on-pypi==0.0.1\n", "No matching distribution found"),
    ],
)
async def test_a_failed_install_is_one_line_with_pips_last_lines_and_leaves_nothing(
    settings, workspace, tmp_path, docker_api, layer_base, text, pip_says
):
    path = requirements(tmp_path, text)
    images_before = {image["Id"] for image in docker_api.images(all=True)}
    session_id = f"bad-requirements-{uuid.uuid4().hex[:8]}"
    since = int(time.time()) - 1
    async with Runner(settings) as runner, runner.session(session_id, cwd=workspace) as session:
        with pytest.raises(RequirementsError) as refused:
            await session.run("true", requirements=path)
    error = refused.value
    assert error.message == (
        f"cannot install requirements file {path} on {layer_base} (pip exited with 1); "
        "pip's last lines:"
    )
    assert 1 <= len(error.details) <= 5
    assert pip_says in error.details[-1] or pip_says in " ".join(error.details)
    images_after = {image["Id"] for image in docker_api.images(all=True)}
    assert images_after - images_before == set(), "the failed build left an image behind"
    created = docker_api.events(
        since=since,
        until=int(time.time()) + 1,
        decode=True,
        filters={
            "type": "container",
            "event": "create",
            "label": f"stigmer.execution-id={session_id}",
        },
    )
    assert list(created) == [], "a sandbox was started for requirements that cannot be installed"


async def test_an_image_without_pip_is_a_clear_error(sandbox_image, workspace, tmp_path):
    settings = Settings.defaults(mode="sandbox", sandbox_image=sandbox_image, auto_pull=False)
    path = requirements(tmp_path, "six==1.16.0\n")
    async with Runner(settings) as runner:
        with pytest.raises(RequirementsError, match=f"{sandbox_image} has no pip"):
            await runner.run("true", cwd=workspace, requirements=path)


async def test_auto_mode_sends_a_command_with_requirements_to_its_layer(
    settings, workspace, tmp_path
):
    path = requirements(tmp_path, "six==1.16.0\n")
    auto = settings.model_copy(update={"mode": ExecutionMode.AUTO})
    async with Runner(auto) as runner:
        result = await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
    assert (result.mode, result.stdout) == (ExecutionMode.SANDBOX, "1.16.0\n"), result.stderr
    assert result.reason == f"a custom requirements file was given ({path})"


async def test_the_warm_pool_never_hands_a_base_sandbox_to_a_session_with_requirements(
    settings, workspace, tmp_path, monkeypatch
):
    monkeypatch.chdir(workspace)  # the pool warms for the current directory's workspace
    pooled = settings.model_copy(
        update={"sandbox": settings.sandbox.model_copy(update={"pool_size": 1})}
    )
    path = requirements(tmp_path, "six==1.16.0\n")
    async with Runner(pooled) as runner:
        backend = await runner.backend(ExecutionMode.SANDBOX)
        for _ in range(600):
            if backend.pool_level:
                break
            await asyncio.sleep(0.1)
        assert backend.pool_level == 1
        layered = await runner.run(IMPORT_SIX, cwd=workspace, requirements=path)
        assert layered.stdout == "1.16.0\n", layered.stderr
        assert backend.pool_level == 1  # the pooled base sandbox is still waiting
        plain = await runner.run("python3 -c 'import six'", cwd=workspace)
        assert plain.exit_code == 1  # the base image has no six: it was the pooled one
