"""A real registry on loopback (scripts/registry.sh), used through docker-py as the runner would."""

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.registry import SCRIPT, free_port, push, push_with_login, remove_images, start, stop

pytestmark = pytest.mark.docker
REPOSITORY = "stigmer-test/tiny"


def _pull(api, reference: str, tag: str) -> None:
    for event in api.pull(reference, tag, stream=True, decode=True):
        if "error" in event:
            raise RuntimeError(event["error"])


@pytest.fixture
def client_with_config(tmp_path, monkeypatch):
    """A docker-py client reading its credentials from a DOCKER_CONFIG of this test's own."""
    import docker

    config = tmp_path / "docker-config"
    config.mkdir()
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    api = docker.APIClient(version="auto")
    yield api, config
    api.close()


def test_loopback_registries_need_no_daemon_setting(docker_api):
    insecure = docker_api.info()["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert "127.0.0.0/8" in insecure


def test_pushed_image_is_pulled_back_after_it_is_removed_locally(
    docker_api, local_registry, tiny_image
):
    reference = local_registry.reference(REPOSITORY)
    docker_api.tag(tiny_image, reference, "v1")
    try:
        push(docker_api, reference, "v1")
        pushed_id = docker_api.inspect_image(f"{reference}:v1")["Id"]
        remove_images(docker_api, f"{reference}:v1")
        import docker

        with pytest.raises(docker.errors.ImageNotFound):
            docker_api.inspect_image(f"{reference}:v1")
        _pull(docker_api, reference, "v1")
        assert docker_api.inspect_image(f"{reference}:v1")["Id"] == pushed_id
    finally:
        remove_images(docker_api, f"{reference}:v1")


def test_login_with_the_right_credentials_lets_push_and_pull(
    auth_registry, tiny_image, client_with_config
):
    api, _ = client_with_config
    assert auth_registry.username
    assert auth_registry.password
    answer = api.login(
        auth_registry.username, auth_registry.password, registry=f"http://{auth_registry.address}"
    )
    assert answer["Status"] == "Login Succeeded"
    reference = auth_registry.reference(REPOSITORY)
    api.tag(tiny_image, reference, "v1")
    try:
        push(api, reference, "v1")
        remove_images(api, f"{reference}:v1")
        _pull(api, reference, "v1")
        assert (
            api.inspect_image(f"{reference}:v1")["Config"]["Labels"]["stigmer.test"] == "registry"
        )
    finally:
        remove_images(api, f"{reference}:v1")


def test_credentials_in_docker_config_are_used_for_pull(
    auth_registry, tiny_image, docker_api, client_with_config
):
    push_with_login(auth_registry, REPOSITORY, tiny_image, "v2")
    api, config = client_with_config
    token = base64.b64encode(f"{auth_registry.username}:{auth_registry.password}".encode()).decode()
    (config / "config.json").write_text(
        json.dumps({"auths": {auth_registry.address: {"auth": token}}})
    )
    import docker

    api = docker.APIClient(version="auto")  # reads the config.json just written
    reference = auth_registry.reference(REPOSITORY)
    try:
        _pull(api, reference, "v2")
        assert api.inspect_image(f"{reference}:v2")
    finally:
        remove_images(api, f"{reference}:v2")
        api.close()


def test_wrong_password_is_refused_with_401(auth_registry, client_with_config):
    import docker

    api, _ = client_with_config
    with pytest.raises(docker.errors.APIError) as refused:
        api.login(
            auth_registry.username, "not-the-password", registry=f"http://{auth_registry.address}"
        )
    # The engine relays the registry's answer (as a 500 of its own on Engine API 1.41).
    assert "401 Unauthorized" in str(refused.value)
    token = base64.b64encode(f"{auth_registry.username}:not-the-password".encode()).decode()
    request = urllib.request.Request(
        f"http://{auth_registry.address}/v2/", headers={"Authorization": f"Basic {token}"}
    )
    with pytest.raises(urllib.error.HTTPError) as answered:
        urllib.request.urlopen(request, timeout=10)
    assert answered.value.code == 401


def test_anonymous_pull_is_refused(auth_registry, tiny_image, docker_api, client_with_config):
    push_with_login(auth_registry, REPOSITORY, tiny_image, "v3")
    api, _ = client_with_config  # an empty DOCKER_CONFIG: no credentials at all
    reference = auth_registry.reference(REPOSITORY)
    with pytest.raises(Exception, match="no basic auth credentials|401|unauthorized"):
        _pull(api, reference, "v3")
    import docker

    with pytest.raises(docker.errors.ImageNotFound):
        api.inspect_image(f"{reference}:v3")


def test_start_is_idempotent_and_stop_removes_the_data(tmp_path):
    import subprocess

    directory = tmp_path / "registry"
    port = free_port()
    first = start(directory, port=port)
    try:
        again = start(directory, port=port)
        assert again.address == first.address == f"127.0.0.1:{port}"
        status = subprocess.run(
            [str(SCRIPT), "status", "--dir", str(directory)], capture_output=True, text=True
        )
        assert (status.returncode, status.stdout.strip()) == (0, first.address)
    finally:
        stop(first)
    assert not directory.exists()
    status = subprocess.run(
        [str(SCRIPT), "status", "--dir", str(directory)], capture_output=True, text=True
    )
    assert status.returncode == 1


def test_registry_directory_is_private(local_registry):
    assert Path(local_registry.directory).stat().st_mode & 0o077 == 0
