"""The runner's own image (the root Dockerfile), running SANDBOX mode through the host's socket.

As docker-compose.yml runs it: the socket mounted in and its group given to the non-root
runner, the host's workspace root mounted at /workspace with STIGMER_HOST_WORKSPACE_ROOT
saying where it is on the host. A file a sandbox writes must land on the host, owned by
the workspace's owner.
"""

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import ROOT, build_or_fail, sandbox_workspace

pytestmark = pytest.mark.docker
RUNNER_TAG = "stigmer/agent-runner:test"
TEST_LABELS = {"stigmer.test": "runner-image"}
SOCKET = "/var/run/docker.sock"


@pytest.fixture(scope="module")
def runner_image(docker_api, sandbox_image) -> Iterator[str]:
    """Built on the offline base, as CI and a machine without registry access must."""
    build_or_fail(
        docker_api,
        "the root Dockerfile",
        path=str(ROOT),
        tag=RUNNER_TAG,
        buildargs={"BASE_IMAGE": sandbox_image},
        labels=TEST_LABELS,
    )
    yield RUNNER_TAG
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound, docker.errors.APIError):
        docker_api.remove_image(RUNNER_TAG)


def _run(
    docker_api,
    image: str,
    command: list[str],
    *,
    hostname: str,
    entrypoint: list[str] | None = None,
    **host,
) -> tuple[int, str, str]:
    """Run IMAGE to completion: exit code, stdout, stderr. The container is always removed."""
    container = docker_api.create_container(
        image,
        command=command,
        entrypoint=entrypoint,
        hostname=hostname,
        labels=TEST_LABELS,
        environment=host.pop("environment", {}),
        host_config=docker_api.create_host_config(**host),
    )
    try:
        docker_api.start(container)
        status = docker_api.wait(container, timeout=300)["StatusCode"]
        stdout = docker_api.logs(container, stdout=True, stderr=False).decode()
        stderr = docker_api.logs(container, stdout=False, stderr=True).decode()
        return status, stdout, stderr
    finally:
        docker_api.remove_container(container, force=True)


def test_runner_image_is_non_root_with_a_healthcheck_that_passes(docker_api, runner_image):
    config = docker_api.inspect_image(runner_image)["Config"]
    assert config["Entrypoint"] == ["agent-runner"]
    uid = config["User"].split(":")[0]
    assert uid.isdigit()
    assert uid != "0"
    health = config["Healthcheck"]["Test"]
    assert health[0] == "CMD"
    status, stdout, stderr = _run(
        docker_api,
        runner_image,
        [],
        entrypoint=health[1:],
        hostname=f"runner-health-{uuid.uuid4().hex[:8]}",
        read_only=True,
        tmpfs={"/tmp": ""},
    )
    assert status == 0, stdout + stderr


def test_sandbox_command_from_the_runner_container_writes_to_the_host_workspace(
    docker_api, runner_image, sandbox_image, tmp_path
):
    host_root = sandbox_workspace(tmp_path / "projects")
    project = sandbox_workspace(host_root / "app")
    hostname = f"runner-test-{uuid.uuid4().hex[:8]}"
    status, stdout, stderr = _run(
        docker_api,
        runner_image,
        [
            "exec",
            "--mode",
            "sandbox",
            "--cwd",
            "/workspace/app",
            "id -u; echo written-in-a-sandbox > from-sandbox.txt; cat /etc/hostname",
        ],
        hostname=hostname,
        environment={
            "STIGMER_HOST_WORKSPACE_ROOT": str(host_root),
            "STIGMER_WORKSPACE_ROOT": "/workspace",
            "STIGMER_SANDBOX_IMAGE": sandbox_image,
            "STIGMER_SANDBOX_AUTO_PULL": "false",
        },
        binds={
            SOCKET: {"bind": SOCKET, "mode": "rw"},
            str(host_root): {"bind": "/workspace", "mode": "rw"},
        },
        group_add=[str(os.stat(SOCKET).st_gid)],
        read_only=True,
        tmpfs={"/tmp": ""},
    )
    try:
        assert status == 0, stdout + stderr
        uid, sandbox_hostname = stdout.split()
        assert uid == str(project.stat().st_uid)
        assert sandbox_hostname != hostname  # the command ran in a sandbox, not the runner
        written = project / "from-sandbox.txt"
        assert written.read_text() == "written-in-a-sandbox\n"
        assert (written.stat().st_uid, written.stat().st_gid) == (
            project.stat().st_uid,
            project.stat().st_gid,
        )
    finally:
        # The runner removes its sandbox when the command ends; anything it left is a bug.
        left = docker_api.containers(all=True, filters={"label": f"stigmer.owner-host={hostname}"})
        for container in left:
            docker_api.remove_container(container["Id"], force=True)
        assert not left, f"the runner left its sandboxes behind: {left}"
