"""A real image registry per test session, through scripts/registry.sh.

Debian's docker-registry on 127.0.0.1 (which Docker lets you use over plain HTTP
without any daemon setting), on a free port, with its data in a temporary directory;
one without auth and one with htpasswd auth. Both are stopped, and their data removed,
when the session ends, whether the tests passed or not.

    def test_push(local_registry):      # Registry(address="127.0.0.1:PORT", ...)
    def test_login(auth_registry):      # .username / .password are set
    def test_pull(tiny_image):          # a one-file image of ours, quick to push
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "registry.sh"


@dataclass(frozen=True)
class Registry:
    address: str
    """``127.0.0.1:PORT``: the prefix of image references pushed to it."""
    directory: Path
    username: str | None = None
    password: str | None = None

    def reference(self, repository: str) -> str:
        return f"{self.address}/{repository}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start(directory: Path, *, auth: bool = False, port: int | None = None) -> Registry:
    """Start a registry serving from ``directory``; raises with the script's message."""
    arguments = [str(SCRIPT), "start", "--port", str(port or free_port()), "--dir", str(directory)]
    if auth:
        arguments.append("--auth")
    done = subprocess.run(arguments, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"scripts/registry.sh start failed: {done.stderr.strip()[-1000:]}")
    address = done.stdout.strip()
    if not auth:
        return Registry(address, directory)
    return Registry(
        address,
        directory,
        (directory / "username").read_text().strip(),
        (directory / "password").read_text().strip(),
    )


def stop(registry: Registry) -> None:
    subprocess.run(
        [str(SCRIPT), "stop", "--dir", str(registry.directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def _session_registry(auth: bool) -> Iterator[Registry]:
    from tests.conftest import _unavailable

    parent = Path(tempfile.mkdtemp(prefix="stigmer-test-registry-"))
    try:
        try:
            registry = start(parent / "registry", auth=auth)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as error:
            _unavailable(str(error))
        try:
            yield registry
        finally:
            stop(registry)
    finally:
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="session")
def local_registry() -> Iterator[Registry]:
    """A registry anyone may push to and pull from."""
    yield from _session_registry(auth=False)


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[Registry]:
    """A registry that needs ``username`` / ``password`` (htpasswd, bcrypt)."""
    yield from _session_registry(auth=True)


TINY_TAG = "stigmer/test-registry-tiny:local"
TEST_LABEL = "stigmer.test=registry"


def push(api, reference: str, tag: str, auth_config: dict[str, str] | None = None) -> None:
    for event in api.push(reference, tag, stream=True, decode=True, auth_config=auth_config):
        if "error" in event:
            raise RuntimeError(event["error"])


def remove_images(api, *references: str) -> None:
    import docker

    for reference in references:
        with contextlib.suppress(docker.errors.ImageNotFound):
            api.remove_image(reference, force=True)


@pytest.fixture(scope="session")
def tiny_image(docker_api) -> Iterator[str]:
    """A one-layer image of one small file: quick to push, and ours alone."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        payload = b"pushed through a local registry\n"
        member = tarfile.TarInfo("hello.txt")
        member.size = len(payload)
        archive.addfile(member, io.BytesIO(payload))
    docker_api.import_image_from_data(
        data.getvalue(),
        repository=TINY_TAG.split(":")[0],
        tag="local",
        changes=[f"LABEL {TEST_LABEL}"],
    )
    yield TINY_TAG
    remove_images(docker_api, TINY_TAG)


def push_with_login(registry: Registry, repository: str, image: str, tag: str) -> str:
    """Put IMAGE at REGISTRY/REPOSITORY:TAG, logging in with a client of its own (whose login
    stays in its memory: nothing is written to any config.json); return the reference."""
    import docker

    reference = registry.reference(repository)
    api = docker.APIClient(version="auto")
    try:
        api.login(registry.username, registry.password, registry=f"http://{registry.address}")
        api.tag(image, reference, tag)
        push(api, reference, tag)
    finally:
        remove_images(api, f"{reference}:{tag}")
        api.close()
    return f"{reference}:{tag}"
