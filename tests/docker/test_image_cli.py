"""``agent-runner image ...`` and ``exec --requirements`` as a user runs them: separate
processes, the default configuration, real exit codes and what they print."""

import io
import json
import re
import uuid

import pytest

from agent_runner.images import BASE_IMAGE_VARIABLE, OFFLINE_BASE
from tests.conftest import build_or_fail, cli_environment, run_cli, sandbox_workspace
from tests.registry import push, remove_images

pytestmark = pytest.mark.docker
LAYER_PREFIX = "stigmer/agent-sandbox-layer:"


def layer_tags(text: str) -> list[str]:
    return sorted({word.rstrip(":,") for word in text.split() if word.startswith(LAYER_PREFIX)})


def test_exec_with_requirements_works_from_the_readme_setup_and_the_second_run_does_not_build(
    tmp_path, sandbox_image, docker_api
):
    """The issue's "done when": the README's SANDBOX setup (an engine; with no registry in
    reach, the offline base: the ``sandbox_image`` fixture runs scripts/build-base-image.sh),
    the default configuration, then the command twice."""
    variables = {} if sandbox_image == OFFLINE_BASE else {BASE_IMAGE_VARIABLE: sandbox_image}
    env = cli_environment(tmp_path, **variables)
    workspace = sandbox_workspace(tmp_path / "project")
    (workspace / "req.txt").write_text(f"six==1.16.0\n# {uuid.uuid4().hex}: this test's own\n")
    command = ["exec", "--mode", "sandbox", "--requirements", "req.txt", "python3 -c 'import six'"]
    first = run_cli(*command, env=env, cwd=workspace, timeout=900)
    try:
        assert first.returncode == 0, first.stderr
        (tag,) = layer_tags(first.stderr)
        assert f"agent-runner: building {tag}: {workspace / 'req.txt'} on " in first.stderr
        built = docker_api.inspect_image(tag)["Id"]
        second = run_cli(*command, env=env, cwd=workspace, timeout=300)
        assert second.returncode == 0, second.stderr
        assert "build" not in second.stderr  # no build, not even a step of one
        assert "cannot pull" not in second.stderr  # the fallback was said once, not again
        assert docker_api.inspect_image(tag)["Id"] == built
    finally:
        remove_images(docker_api, *layer_tags(first.stderr))


def test_image_check_passes_the_basic_tier_with_its_tools(basic_image, tmp_path):
    done = run_cli("image", "check", basic_image, env=cli_environment(tmp_path), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"{basic_image} (")
    assert lines[0].endswith("tier basic) against the sandbox image contract:")
    marks = {name: mark for mark, name in re.findall(r"^  \[(\w+) *\] (\S+)", done.stdout, re.M)}
    assert set(marks.values()) == {"ok"}, done.stdout
    assert {"bash", "workspace", "sleep", "python3", "pip", "node", "npm", "jq", "runs"} <= set(
        marks
    )
    assert lines[-1].startswith("passed: ")


def test_image_check_fails_without_bash_and_warns_without_python(
    docker_api, sandbox_image, image_without_python, tmp_path
):
    env = cli_environment(tmp_path)
    slow = run_cli("image", "check", "--json", image_without_python, env=env, timeout=300)
    assert slow.returncode == 0, slow.stdout + slow.stderr
    items = {item["name"]: item for item in json.loads(slow.stdout)["items"]}
    assert items["python3"]["status"] == "warn"
    assert "slow path" in items["python3"]["detail"]
    assert items["runs"]["detail"].endswith("(slow path: one docker exec each)")

    tag = "stigmer/test-no-bash:local"
    dockerfile = f"FROM {sandbox_image}\nUSER root\nRUN rm -f /bin/bash /usr/bin/bash\n"
    build_or_fail(
        docker_api, "an image without bash", fileobj=io.BytesIO(dockerfile.encode()), tag=tag
    )
    try:
        broken = run_cli("image", "check", tag, env=env, timeout=300)
        assert broken.returncode == 1, broken.stdout + broken.stderr
        assert "[FAIL] bash" in broken.stdout
        assert "[FAIL] runs" in broken.stdout
        assert broken.stdout.splitlines()[-1].startswith("FAILED: ")
    finally:
        remove_images(docker_api, tag)


def test_image_pull_ensure_ls_and_prune(docker_api, local_registry, tiny_image, tmp_path):
    reference = local_registry.reference("stigmer-test/cli") + ":1"
    docker_api.tag(tiny_image, reference)
    push(docker_api, *reference.rsplit(":", 1))
    remove_images(docker_api, reference)
    env = cli_environment(tmp_path, STIGMER_SANDBOX_IMAGE=reference)
    try:
        pulled = run_cli("image", "pull", env=env)
        assert pulled.returncode == 0, pulled.stderr
        assert pulled.stdout.startswith(f"{reference} (")
        assert f"agent-runner: pulling {reference}: asked to" in pulled.stderr
        ensured = run_cli("image", "ensure", env=env)
        assert ensured.returncode == 0, ensured.stderr
        assert ensured.stdout.strip().endswith(f"{reference} is present locally")
        listing = run_cli("image", "ls", "--json", env=env)
        assert listing.returncode == 0, listing.stderr
        assert all(row["kind"] in ("basic", "full", "layer") for row in json.loads(listing.stdout))
        pruned = run_cli("image", "prune", "--dry-run", env=env)
        assert pruned.returncode == 0, pruned.stderr
        assert pruned.stdout.splitlines()[-1].endswith("layer image(s) would be removed")
    finally:
        remove_images(docker_api, reference)


def test_image_pull_of_a_missing_image_is_one_line_exit_2(local_registry, tmp_path):
    reference = local_registry.reference("stigmer-test/never-pushed") + ":1"
    done = run_cli("image", "pull", "--quiet", reference, env=cli_environment(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith(f"agent-runner: error: cannot pull {reference}: ")
    assert "has no such image (404" in done.stderr
    assert done.stderr.count("\n") == 1


def test_two_processes_asking_for_the_same_layer_build_it_once(basic_image, tmp_path, docker_api):
    import subprocess
    import sys

    env = cli_environment(tmp_path, STIGMER_SANDBOX_IMAGE=basic_image)
    requirements = tmp_path / "req.txt"
    requirements.write_text(f"six==1.16.0\n# {uuid.uuid4().hex}: two processes at once\n")
    command = [sys.executable, "-m", "agent_runner", "image", "build", "--requirements"]
    processes = [
        subprocess.Popen(
            [*command, str(requirements)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=600) for process in processes]
    try:
        assert [p.returncode for p in processes] == [0, 0], outputs
        (tag,) = {line.split()[0] for line, _ in outputs}
        building = [err for _, err in outputs if f"agent-runner: building {tag}" in err]
        assert len(building) == 1, outputs  # the other one waited, or found it built
        assert sorted(out.split(": ", 1)[1].strip() for out, _ in outputs) == [
            "already present (same inputs), reused",
            "built",
        ]
    finally:
        remove_images(docker_api, *{line.split()[0] for line, _ in outputs if line})
