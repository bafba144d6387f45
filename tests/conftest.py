"""Fixtures for tests that need a real Docker engine.

In CI (``CI=true``) a missing engine or image is a failure, never a skip: ``make test``
runs ``scripts/ensure-docker.sh`` and ``scripts/build-base-image.sh`` first. On a
developer machine without Docker those tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fakes.kube.fixtures", "tests.fakes.daytona.fixtures"]

ROOT = Path(__file__).resolve().parents[1]
TEST_IMAGE = os.environ.get("STIGMER_TEST_IMAGE", "stigmer/sandbox-base:bookworm")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI needs a Docker engine and the test image: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_api():
    import docker

    try:
        api = docker.APIClient(version="auto")
        api.ping()
    except Exception as error:
        _unavailable(f"Docker engine not reachable ({error}); run scripts/ensure-docker.sh")
    yield api
    api.close()


@pytest.fixture(scope="session")
def sandbox_image(docker_api) -> str:
    """The image sandbox tests run on (built offline by scripts/build-base-image.sh)."""
    import docker

    try:
        docker_api.inspect_image(TEST_IMAGE)
    except docker.errors.ImageNotFound:
        done = subprocess.run(
            [str(ROOT / "scripts" / "build-base-image.sh"), TEST_IMAGE],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            _unavailable(f"could not build {TEST_IMAGE}: {done.stderr.strip()[-500:]}")
    return TEST_IMAGE


BASIC_TAG = "stigmer/agent-sandbox:test"


def build_or_fail(api, what: str, **options) -> None:
    """``api.build(**options)``, failing the test with the build's last output if it fails."""
    log = []
    for event in api.build(rm=True, forcerm=True, decode=True, **options):
        log.append(event.get("stream") or event.get("error") or "")
        if "error" in event:
            pytest.fail(f"{what} does not build: {''.join(log)[-2000:]}")


@pytest.fixture(scope="session")
def basic_image(docker_api, sandbox_image) -> str:
    """The basic tier, built on the offline base as CI and a machine without registry access
    must (the layers of an earlier build are reused, so this is quick after the first)."""
    build_or_fail(
        docker_api,
        "Dockerfile.sandbox.basic",
        path=str(ROOT / "sandbox"),
        dockerfile="Dockerfile.sandbox.basic",
        tag=BASIC_TAG,
        buildargs={"BASE_IMAGE": sandbox_image},
    )
    return BASIC_TAG


@pytest.fixture(autouse=True)
def isolated_image_cache(tmp_path, monkeypatch) -> None:
    """Each test its own cache directory: a pull failure one test remembered (or a layer lock)
    never changes what the next one sees, nor what the user's own runner remembers."""
    monkeypatch.setenv("STIGMER_CACHE_DIR", str(tmp_path / "stigmer-cache"))


def labelled_containers(api) -> set[str]:
    """Our containers that this test run could have made: its own, or those of exited processes
    (the CLI tests' subprocesses); another live runner's containers are not ours to judge."""
    from agent_runner.backends.owner import Owner

    found = set()
    for container in api.containers(all=True, filters={"label": "stigmer.sandbox=1"}):
        labels = container["Labels"]
        owner = Owner(
            int(labels["stigmer.owner-pid"]),
            labels["stigmer.owner-host"],
            labels["stigmer.owner-started"],
        )
        if owner.pid == os.getpid() or not owner.is_alive():
            found.add(container["Id"])
    return found


@pytest.fixture(scope="session", autouse=True)
def no_container_left_behind() -> Iterator[None]:
    """Fail the run if any sandbox container created during it is still there at the end."""
    try:
        import docker

        api = docker.APIClient(version="auto")
        before = labelled_containers(api)
    except Exception:
        yield
        return
    yield
    left = labelled_containers(api) - before
    api.close()
    assert not left, f"sandbox containers left behind by the tests: {sorted(c[:12] for c in left)}"


def sandbox_workspace(path: Path) -> Path:
    """A workspace owned by a regular user, as on a developer's machine (tests run as root in CI)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.getuid() == 0:
        os.chown(path, 1000, 1000)
    return path


@pytest.fixture(scope="session")
def image_without_python(docker_api, sandbox_image) -> str:
    """The test image minus python3: sandboxes on it take the exec-per-command path."""
    import io

    tag = "stigmer/test-no-python:local"
    dockerfile = f"FROM {sandbox_image}\nUSER root\nRUN rm -f /usr/bin/python3*\n"
    build_or_fail(docker_api, tag, fileobj=io.BytesIO(dockerfile.encode()), tag=tag)
    return tag


def cli_environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """The host environment without any STIGMER_* setting, a config file and a state
    directory of the test's own, plus ``variables``: what a user's shell would hand to
    ``agent-runner``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STIGMER_")}
    env["STIGMER_CONFIG"] = str(tmp_path / "config.yaml")
    env["STIGMER_CACHE_DIR"] = str(tmp_path / "stigmer-cache")
    env["STIGMER_STATE_DIR"] = str(tmp_path / "state")
    env.update(variables)
    return env


@pytest.fixture(autouse=True)
def state_directory(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Each test's own state directory: what AUTO's sandboxes wrote is recorded there
    (agent_runner.auto.store), never in the home of whoever runs the tests."""
    path = tmp_path_factory.mktemp("state")
    monkeypatch.setenv("STIGMER_STATE_DIR", str(path))
    return path


def run_cli(*args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120):
    """``agent-runner ARGS`` as a separate process, the way a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "agent_runner", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


# A real registry per session (scripts/registry.sh): `local_registry`, `auth_registry`, and
# `tiny_image` to push to them.
from tests.registry import auth_registry, local_registry, tiny_image  # noqa: E402, F401
