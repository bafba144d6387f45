"""Pulls against real registries (scripts/registry.sh): credentials from the user's Docker
config, one line per refusal, a registry that is down or silent, and auto_pull off."""

import base64
import io
import json
import os
import socket
import tarfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from agent_runner import Settings
from agent_runner.errors import ImageNotFound, PullFailed
from agent_runner.images import (
    Client,
    LayerProgress,
    PullFinished,
    PullStarted,
    Reporter,
    ensure_image,
    resolve,
)
from tests.registry import push, push_with_login, remove_images, start, stop

pytestmark = pytest.mark.docker
REPOSITORY = "stigmer-test/ensure"
LOCAL_TAG = "stigmer/agent-sandbox:registry-test"


def new_client() -> Client:
    """A client created now, as a runner process would be (it reads DOCKER_CONFIG afresh)."""
    import docker

    return Client(docker.APIClient(version="auto"), docker.errors)


def ensure(settings: Settings, client: Client | None = None, **options):
    events: list = []
    client = client or new_client()
    try:
        return ensure_image(client, settings, Reporter(events.append), **options), events
    finally:
        client.api.close()


def pushed(api, registry, image: str, tag: str) -> str:
    """IMAGE at REGISTRY/REPOSITORY:TAG, and absent locally."""
    reference = registry.reference(REPOSITORY)
    api.tag(image, reference, tag)
    push(api, reference, tag)
    remove_images(api, f"{reference}:{tag}")
    return f"{reference}:{tag}"


def docker_config(tmp_path, monkeypatch, registry, password: str | None) -> None:
    """A DOCKER_CONFIG of this test's own, with credentials for REGISTRY (or none)."""
    directory = tmp_path / "docker-config"
    directory.mkdir(parents=True)
    auths = {}
    if password is not None:
        token = base64.b64encode(f"{registry.username}:{password}".encode()).decode()
        auths[registry.address] = {"auth": token}
    (directory / "config.json").write_text(json.dumps({"auths": auths}))
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))


@pytest.fixture
def unique_image(docker_api) -> Iterator[str]:
    """An image of one file no other image has, so a pull must really fetch its layer."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        payload = os.urandom(4096)
        member = tarfile.TarInfo("random.bin")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    tag = f"stigmer/test-unique:{uuid.uuid4().hex[:12]}"
    repository, version = tag.split(":")
    docker_api.import_image_from_data(data.getvalue(), repository=repository, tag=version)
    yield tag
    remove_images(docker_api, tag)


def test_ensure_pulls_a_pushed_image_that_is_absent_locally(
    docker_api, local_registry, unique_image
):
    pushed_id = docker_api.inspect_image(unique_image)["Id"]
    reference = pushed(docker_api, local_registry, unique_image, "present-1")
    remove_images(docker_api, unique_image)
    try:
        found, events = ensure(Settings.defaults(sandbox_image=reference))
        assert (found.image, found.how) == (reference, "pulled")
        assert found.image_id == pushed_id
        assert isinstance(events[1], PullStarted)
        assert [e.status for e in events if isinstance(e, LayerProgress)][-1] == "Pull complete"
        assert PullFinished(reference, True) in events
    finally:
        remove_images(docker_api, reference)


def test_with_the_registry_stopped_the_default_falls_back_and_another_image_fails_clearly(
    docker_api, tiny_image, sandbox_image, tmp_path, monkeypatch
):
    registry = start(tmp_path / "registry")
    try:
        default = pushed(docker_api, registry, tiny_image, "latest")
        configured = pushed(docker_api, registry, tiny_image, "custom")
    finally:
        stop(registry)
    monkeypatch.setattr(resolve, "DEFAULT_SANDBOX_IMAGE", default)
    monkeypatch.setattr(resolve, "LOCAL_BUILD_TAG", LOCAL_TAG)
    docker_api.tag(sandbox_image, LOCAL_TAG)
    try:
        found, events = ensure(Settings.defaults(sandbox_image=default))
        assert (found.image, found.how) == (LOCAL_TAG, "local build")
        assert any(f"{registry.address} cannot be reached" in str(e) for e in events)
        with pytest.raises(PullFailed) as refused:
            ensure(Settings.defaults(sandbox_image=configured))
        assert refused.value.kind == "unreachable"
        assert str(refused.value).startswith(
            f"cannot pull {configured}: {registry.address} cannot be reached ("
        )
    finally:
        remove_images(docker_api, LOCAL_TAG)


@dataclass
class SilentRegistry:
    """A port that accepts connections and never answers: a registry behind a firewall that
    lets the connection through and then drops everything, or a hung one."""

    address: str
    accepted: list = field(default_factory=list)


@pytest.fixture
def silent_registry() -> Iterator[SilentRegistry]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)  # so the accepting thread notices the end of the test
    silent = SilentRegistry(f"127.0.0.1:{server.getsockname()[1]}")
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                connection, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            silent.accepted.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield silent
    stopping.set()
    thread.join(timeout=30)
    server.close()
    for connection in silent.accepted:
        connection.close()


def test_auto_pull_off_never_contacts_the_registry(silent_registry):
    settings = Settings.defaults(
        sandbox_image=f"{silent_registry.address}/team/img:1", auto_pull=False
    )
    with pytest.raises(ImageNotFound, match="auto_pull is off"):
        ensure(settings)
    assert silent_registry.accepted == []


def test_a_registry_that_never_answers_is_given_up_on_and_remembered(silent_registry):
    settings = Settings.defaults(
        sandbox_image=f"{silent_registry.address}/team/img:1", sandbox={"registry_timeout": 2}
    )
    with pytest.raises(PullFailed) as refused:
        ensure(settings)
    assert refused.value.kind == "unreachable"
    assert "did not answer (no answer within 2 s, execution.sandbox.registry_timeout)" in str(
        refused.value
    )
    assert silent_registry.accepted, "the engine did try the registry"
    tried = len(silent_registry.accepted)
    with pytest.raises(PullFailed, match="remembered from a pull at"):
        ensure(settings)
    assert len(silent_registry.accepted) == tried  # the second command did not wait again


def test_credentials_from_docker_config_pull_a_private_image(
    auth_registry, tiny_image, tmp_path, monkeypatch
):
    reference = push_with_login(auth_registry, REPOSITORY, tiny_image, "private-1")
    docker_config(tmp_path, monkeypatch, auth_registry, auth_registry.password)
    client = new_client()
    try:
        found, _ = ensure(Settings.defaults(sandbox_image=reference), client)
        assert found.how == "pulled"
    finally:
        remove_images(client.api, reference)


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (None, "wants credentials (401: "),
        ("not-the-password", "refused the credentials it was given (401: "),
    ],
)
def test_missing_or_wrong_credentials_are_one_line_that_says_which(
    auth_registry, tiny_image, tmp_path, monkeypatch, password, expected
):
    reference = push_with_login(auth_registry, REPOSITORY, tiny_image, "private-2")
    docker_config(tmp_path, monkeypatch, auth_registry, password)
    with pytest.raises(PullFailed) as refused:
        ensure(Settings.defaults(sandbox_image=reference))
    assert refused.value.kind == "unauthorized"
    assert str(refused.value).startswith(f"cannot pull {reference}: {auth_registry.address} ")
    assert expected in str(refused.value)
    assert f"docker login {auth_registry.address}" in str(refused.value)


def test_a_login_in_between_is_tried_at_once(auth_registry, tiny_image, tmp_path, monkeypatch):
    reference = push_with_login(auth_registry, REPOSITORY, tiny_image, "private-3")
    docker_config(tmp_path / "before", monkeypatch, auth_registry, None)
    with pytest.raises(PullFailed):
        ensure(Settings.defaults(sandbox_image=reference))
    docker_config(tmp_path / "after", monkeypatch, auth_registry, auth_registry.password)
    client = new_client()
    try:
        found, _ = ensure(Settings.defaults(sandbox_image=reference), client)
        assert found.how == "pulled"  # not "remembered": the credentials are new
    finally:
        remove_images(client.api, reference)


@pytest.mark.parametrize("authenticated", [False, True])
def test_a_missing_image_is_not_found_not_a_refusal(
    local_registry, auth_registry, tmp_path, monkeypatch, authenticated
):
    registry = auth_registry if authenticated else local_registry
    if authenticated:
        docker_config(tmp_path, monkeypatch, auth_registry, auth_registry.password)
    reference = registry.reference("stigmer-test/never-pushed:1")
    with pytest.raises(PullFailed) as refused:
        ensure(Settings.defaults(sandbox_image=reference))
    assert refused.value.kind == "not-found"
    assert f"{registry.address} has no such image (404: " in str(refused.value)
