"""Present, else pulled, else the local build: the default image is always found or explained,
and a failed pull is asked about once per hour, not once per command."""

import contextlib
import logging

import pytest

from agent_runner import Settings
from agent_runner.errors import ImageNotFound, PullFailed
from agent_runner.images import (
    BASE_IMAGE_VARIABLE,
    Client,
    PullStarted,
    Reporter,
    Step,
    ensure_image,
    resolve,
)

pytestmark = pytest.mark.docker
UNREACHABLE_DEFAULT = "127.0.0.1:9/stigmer/agent-sandbox:latest"
TEST_LOCAL_TAG = "stigmer/agent-sandbox:resolution-test"


@pytest.fixture
def client(docker_api) -> Client:
    import docker

    return Client(docker_api, docker.errors)


@pytest.fixture
def unreachable_default(monkeypatch, docker_api):
    """The published image, as on a machine that cannot reach the registry; its own local tag."""
    monkeypatch.setattr(resolve, "DEFAULT_SANDBOX_IMAGE", UNREACHABLE_DEFAULT)
    monkeypatch.setattr(resolve, "LOCAL_BUILD_TAG", TEST_LOCAL_TAG)
    yield Settings.defaults(mode="sandbox", sandbox_image=UNREACHABLE_DEFAULT)
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_api.remove_image(TEST_LOCAL_TAG)


def ensure(client: Client, settings: Settings, **options):
    """ensure_image, with the events it reported."""
    events: list = []
    return ensure_image(client, settings, Reporter(events.append), **options), events


def warnings(events) -> list[str]:
    return [e.message for e in events if isinstance(e, Step) and e.level >= logging.WARNING]


def test_present_image_is_used_as_configured(client, sandbox_image):
    found, events = ensure(client, Settings.defaults(sandbox_image=sandbox_image))
    assert (found.image, found.how) == (sandbox_image, "present")
    assert not [e for e in events if isinstance(e, PullStarted)]


def test_unpullable_default_falls_back_to_the_local_build_and_warns_once(
    client, docker_api, sandbox_image, unreachable_default
):
    docker_api.tag(sandbox_image, TEST_LOCAL_TAG)
    found, events = ensure(client, unreachable_default)
    assert (found.image, found.how) == (TEST_LOCAL_TAG, "local build")
    (warning,) = warnings(events)
    assert warning.startswith(f"cannot pull {UNREACHABLE_DEFAULT}: 127.0.0.1:9 cannot be reached")
    assert f"using the local build {TEST_LOCAL_TAG} instead" in warning
    again, events = ensure(client, unreachable_default)
    assert (again.image, again.how) == (TEST_LOCAL_TAG, "local build")
    assert warnings(events) == []  # said once per period, not per command
    assert not [e for e in events if isinstance(e, PullStarted)]  # and not even asked


def test_refresh_asks_the_registry_again_at_once(
    client, docker_api, sandbox_image, unreachable_default
):
    docker_api.tag(sandbox_image, TEST_LOCAL_TAG)
    ensure(client, unreachable_default)
    found, events = ensure(client, unreachable_default, refresh=True)
    assert found.how == "local build"
    assert [e for e in events if isinstance(e, PullStarted)]
    assert len(warnings(events)) == 1


def test_missing_local_build_is_built_from_the_packaged_dockerfile(
    client, docker_api, sandbox_image, unreachable_default, monkeypatch
):
    monkeypatch.setenv(BASE_IMAGE_VARIABLE, sandbox_image)
    found, _ = ensure(client, unreachable_default)
    assert (found.image, found.how) == (TEST_LOCAL_TAG, "built")
    labels = docker_api.inspect_image(TEST_LOCAL_TAG)["Config"]["Labels"]
    assert labels["stigmer.sandbox.tier"] == "basic"


def test_build_on_an_unavailable_base_says_what_to_do(client, unreachable_default, monkeypatch):
    monkeypatch.setenv(BASE_IMAGE_VARIABLE, "127.0.0.1:9/no/base:here")
    with pytest.raises(ImageNotFound, match=r"building .* on 127.0.0.1:9/no/base:here failed"):
        ensure(client, unreachable_default)


def test_a_configured_image_is_never_substituted_and_fails_fast_the_second_time(
    client, docker_api, sandbox_image
):
    docker_api.tag(sandbox_image, TEST_LOCAL_TAG)
    settings = Settings.defaults(sandbox_image="127.0.0.1:9/team/custom:1")
    try:
        with pytest.raises(PullFailed) as first:
            ensure(client, settings)
        assert first.value.kind == "unreachable"
        assert str(first.value).startswith("cannot pull 127.0.0.1:9/team/custom:1: ")
        with pytest.raises(PullFailed, match=r"remembered from a pull at \d\d:\d\d; `agent-runner"):
            ensure(client, settings)
    finally:
        docker_api.remove_image(TEST_LOCAL_TAG)


def test_auto_pull_off_is_an_error_that_says_how_to_pull(client):
    settings = Settings.defaults(sandbox_image="127.0.0.1:9/team/custom:1", auto_pull=False)
    with pytest.raises(ImageNotFound, match="auto_pull is off: run `agent-runner image pull"):
        ensure(client, settings)
