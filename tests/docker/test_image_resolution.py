"""Present, else pulled, else the local build: the default image is always found or explained."""

import contextlib
import logging

import pytest

from agent_runner import Settings, images
from agent_runner.errors import ImageNotFound

pytestmark = pytest.mark.docker
UNREACHABLE_DEFAULT = "127.0.0.1:9/stigmer/agent-sandbox:latest"
TEST_LOCAL_TAG = "stigmer/agent-sandbox:resolution-test"


@pytest.fixture
def unreachable_default(monkeypatch, docker_api):
    """The published image, as on a machine that cannot reach the registry; its own local tag."""
    monkeypatch.setattr(images, "DEFAULT_SANDBOX_IMAGE", UNREACHABLE_DEFAULT)
    monkeypatch.setattr(images, "LOCAL_BUILD_TAG", TEST_LOCAL_TAG)
    yield Settings.defaults(mode="sandbox", sandbox_image=UNREACHABLE_DEFAULT)
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        docker_api.remove_image(TEST_LOCAL_TAG)


def resolve(api, settings: Settings) -> str:
    import docker

    return images.resolve_image(api, docker.errors, settings)


def test_present_image_is_used_as_configured(docker_api, sandbox_image):
    assert resolve(docker_api, Settings.defaults(sandbox_image=sandbox_image)) == sandbox_image


def test_unpullable_default_falls_back_to_the_local_build_and_says_so(
    docker_api, sandbox_image, unreachable_default, caplog
):
    docker_api.tag(sandbox_image, TEST_LOCAL_TAG)
    with caplog.at_level(logging.WARNING, logger="agent_runner"):
        assert resolve(docker_api, unreachable_default) == TEST_LOCAL_TAG
    assert f"using the local build {TEST_LOCAL_TAG}" in caplog.text


def test_missing_local_build_is_built_from_the_packaged_dockerfile(
    docker_api, sandbox_image, unreachable_default, monkeypatch
):
    monkeypatch.setenv(images.BASE_IMAGE_VARIABLE, sandbox_image)
    assert resolve(docker_api, unreachable_default) == TEST_LOCAL_TAG
    labels = docker_api.inspect_image(TEST_LOCAL_TAG)["Config"]["Labels"]
    assert labels["stigmer.sandbox.tier"] == "basic"


def test_build_on_an_unavailable_base_says_what_to_do(docker_api, unreachable_default, monkeypatch):
    monkeypatch.setenv(images.BASE_IMAGE_VARIABLE, "127.0.0.1:9/no/base:here")
    with pytest.raises(ImageNotFound, match="run scripts/build-base-image.sh"):
        resolve(docker_api, unreachable_default)


def test_a_configured_image_is_never_substituted(docker_api, sandbox_image):
    docker_api.tag(sandbox_image, TEST_LOCAL_TAG)
    try:
        with pytest.raises(ImageNotFound, match="could not be pulled"):
            resolve(docker_api, Settings.defaults(sandbox_image="127.0.0.1:9/team/custom:1"))
    finally:
        docker_api.remove_image(TEST_LOCAL_TAG)
