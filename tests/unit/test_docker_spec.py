"""The container plan, checked without an engine: mounts, user, mapping of host paths."""

from pathlib import Path

import pytest

from agent_runner import Settings
from agent_runner.backends.docker.spec import CA_PATH, host_path, plan_container
from agent_runner.backends.owner import Owner
from agent_runner.errors import InvalidSetting, WorkingDirectoryMissing

OWNER = Owner(4242, "host-a", "123")


def test_runner_in_a_container_maps_workspaces_to_host_paths():
    env = {
        "STIGMER_HOST_WORKSPACE_ROOT": "/home/me/projects",
        "STIGMER_WORKSPACE_ROOT": "/workspace",
    }
    assert host_path(Path("/workspace/app/sub"), env) == "/home/me/projects/app/sub"
    assert host_path(Path("/workspace"), env) == "/home/me/projects"
    with pytest.raises(InvalidSetting, match="is not under STIGMER_WORKSPACE_ROOT=/workspace"):
        host_path(Path("/srv/elsewhere"), env)
    assert host_path(Path("/srv/elsewhere"), {}) == "/srv/elsewhere"


def test_plan_spells_out_the_secure_defaults(tmp_path):
    plan = plan_container(
        Settings.defaults(sandbox={"user": "1234:99"}),
        image="img:1",
        execution_id="exec-1",
        workspace=tmp_path,
        owner=OWNER,
        pooled=False,
    )
    host = plan.host
    assert (host["cap_drop"], host["security_opt"], host["read_only"], host["init"]) == (
        ["ALL"],
        ["no-new-privileges"],
        True,
        True,
    )
    assert host["privileged"] is False
    assert (host["pids_limit"], host["mem_limit"], host["memswap_limit"], host["nano_cpus"]) == (
        512,
        "2g",
        "2g",
        2_000_000_000,
    )
    assert host["binds"] == {str(tmp_path): {"bind": "/workspace", "mode": "rw"}}
    assert "uid=1234,gid=99" in host["tmpfs"]["/home/sandbox"]
    assert plan.create["user"] == "1234:99"
    assert plan.create["environment"] == {"HOME": "/home/sandbox"}
    labels = plan.create["labels"]
    assert (labels["stigmer.sandbox"], labels["stigmer.execution-id"], labels["stigmer.image"]) == (
        "1",
        "exec-1",
        "img:1",
    )
    assert (labels["stigmer.owner-pid"], labels["stigmer.owner-host"]) == ("4242", "host-a")


def test_ca_bundle_is_mounted_read_only(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    settings = Settings.defaults(sandbox={"ca_bundle": str(bundle), "workspace": "none"})
    plan = plan_container(
        settings, image="i", execution_id="e", workspace=None, owner=OWNER, pooled=True
    )
    assert plan.host["binds"][str(bundle)] == {"bind": CA_PATH, "mode": "ro"}
    assert plan.create["environment"]["REQUESTS_CA_BUNDLE"] == CA_PATH
    assert "/workspace" in plan.host["tmpfs"]
    assert plan.create["labels"]["stigmer.pooled"] == "1"


def test_missing_workspace_is_refused_before_anything_is_created(tmp_path):
    with pytest.raises(WorkingDirectoryMissing):
        plan_container(
            Settings.defaults(),
            image="i",
            execution_id="e",
            workspace=tmp_path / "no",
            owner=OWNER,
            pooled=False,
        )
