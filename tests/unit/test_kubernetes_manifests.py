"""What the Kubernetes backend asks the cluster for, checked without one: the pod passes
Pod Security "restricted" field by field (and by the fake's admission checks), every
manifest, ``deploy/kubernetes/`` included, validates against the official OpenAPI schemas
(kubernetes-validate, offline: the schemas ship in the wheel), and the settings read
their environment-variable forms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from ruamel.yaml import YAML

from agent_runner import Settings
from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.owner import Owner
from agent_runner.config import resolve
from tests.fakes.kube import admission

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "kubernetes"
VERSION = "1.35"
LEASE = ("stigmer-runner-abc", "0c7a6a52-0000-4000-8000-000000000001")
OWNER = Owner(4242, "runner-host", "12345")


def settings(**kubernetes: Any) -> Settings:
    return Settings.defaults(
        mode="sandbox", sandbox={"backend": "kubernetes", "kubernetes": kubernetes}
    )


def pod(execution_id: str | None = "exec-1", **kubernetes: Any) -> dict[str, Any]:
    name = m.pod_name(execution_id)
    made = m.sandbox_pod(
        settings(**kubernetes), name=name, lease=LEASE, owner=OWNER, execution_id=execution_id
    )
    return made.body()


def validate(body: dict[str, Any]) -> None:
    kubernetes_validate.validate(body, VERSION, strict=True)


def test_the_pod_passes_pod_security_restricted():
    body = pod()
    assert admission.violations("restricted", body) == []
    spec = body["spec"]
    security = spec["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 1000
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "runAsNonRoot": True,
    }
    assert spec["automountServiceAccountToken"] is False
    assert spec["enableServiceLinks"] is False
    assert "hostNetwork" not in spec
    assert "hostPID" not in spec


def test_the_pod_has_bounded_writable_space_equal_requests_and_limits_and_a_deadline():
    spec = pod(workspace_size="3Gi", cpu="500m", memory="1Gi", max_lifetime="2h")["spec"]
    mounts = {v["mountPath"]: v["name"] for v in spec["containers"][0]["volumeMounts"]}
    sizes = {v["name"]: v["emptyDir"]["sizeLimit"] for v in spec["volumes"]}
    assert set(mounts) == {"/tmp", "/home/sandbox", "/workspace"}
    assert sizes[mounts["/workspace"]] == "3Gi"
    assert all(sizes.values())
    resources = spec["containers"][0]["resources"]
    assert resources["requests"] == resources["limits"]
    assert resources["limits"] == {"cpu": "500m", "memory": "1Gi", "ephemeral-storage": "8Gi"}
    assert spec["activeDeadlineSeconds"] == 7200
    assert spec["terminationGracePeriodSeconds"] <= 5
    assert spec["restartPolicy"] == "Never"


def test_pid_1_exits_on_term_and_waits_for_its_children():
    command = pod()["spec"]["containers"][0]["command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert 'trap "exit 0" TERM' in command[2]
    assert "& wait" in command[2]


def test_the_pod_is_owned_by_the_runners_lease_and_labelled_for_the_reaper():
    meta = pod()["metadata"]
    assert meta["ownerReferences"] == [
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "name": LEASE[0],
         "uid": LEASE[1], "controller": True}
    ]  # fmt: skip
    assert meta["labels"] == {m.SANDBOX: "1", m.NETWORK: "egress-public", m.RUNNER: LEASE[0]}
    assert meta["annotations"][m.OWNER_PID] == "4242"
    assert meta["annotations"][m.EXECUTION] == "exec-1"


def test_warm_pods_carry_the_hash_of_their_spec():
    warm, other = pod(None), pod(None, memory="4Gi")
    assert warm["metadata"]["labels"][m.POOL] == m.template_hash(m.pod_spec(settings()))
    assert warm["metadata"]["labels"][m.POOL] != other["metadata"]["labels"][m.POOL]
    assert warm["metadata"]["name"].startswith("stigmer-pool-")


def test_session_variables_never_reach_the_manifest():
    env = pod()["spec"]["containers"][0]["env"]
    assert env == [{"name": "HOME", "value": "/home/sandbox"}]


@pytest.mark.parametrize("execution_id", ["exec-1", "Run_42.x", "a" * 64, "-x-"])
def test_pod_names_are_dns_labels(execution_id):
    name = m.pod_name(execution_id)
    assert len(name) <= 63
    assert name == name.lower()
    assert name[0].isalnum()
    assert name[-1].isalnum()


def test_scheduling_settings_reach_the_pod():
    spec = pod(
        runtime_class="gvisor",
        node_selector="pool=sandboxes",
        tolerations=["sandbox=true:NoSchedule", "spot:NoExecute"],
        image_pull_secrets=["registry"],
        service_account="sandboxes",
    )["spec"]
    assert spec["runtimeClassName"] == "gvisor"
    assert spec["nodeSelector"] == {"pool": "sandboxes"}
    assert spec["tolerations"] == [
        {"key": "sandbox", "operator": "Equal", "value": "true", "effect": "NoSchedule"},
        {"key": "spot", "operator": "Exists", "effect": "NoExecute"},
    ]
    assert spec["imagePullSecrets"] == [{"name": "registry"}]
    assert spec["serviceAccountName"] == "sandboxes"


@pytest.mark.parametrize("network", ["none", "egress-public", "unrestricted"])
def test_every_manifest_validates_against_the_official_schemas(network):
    validate(pod(network=network))
    validate(pod(None, network=network, runtime_class="kata", tolerations=["a:NoSchedule"]))
    validate(m.runner_lease(LEASE[0], OWNER, 60).body())
    policy = m.network_policy(network, LEASE)
    if network == "unrestricted":
        assert policy is None
    else:
        assert policy is not None
        validate(policy.body())


def test_network_none_denies_everything_and_egress_public_only_public_addresses():
    none = m.network_policy("none", LEASE)
    public = m.network_policy("egress-public", LEASE)
    assert none is not None
    assert public is not None
    assert none.body()["spec"] == {
        "podSelector": {"matchLabels": {m.NETWORK: "none"}},
        "policyTypes": ["Ingress", "Egress"],
    }
    (rule,) = public.body()["spec"]["egress"]
    v4, v6 = (peer["ipBlock"] for peer in rule["to"])
    assert v4["cidr"] == "0.0.0.0/0"
    assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(v4["except"])
    assert (v6["cidr"], v6["except"]) == ("::/0", ["fc00::/7", "fe80::/10"])
    assert "ingress" not in public.body()["spec"]


def test_the_claim_names_its_warm_pool_and_carries_no_env():
    claim = m.sandbox_claim("c-1", "pool", LEASE, OWNER, "exec-1").body()
    assert claim["apiVersion"] == "extensions.agents.x-k8s.io/v1beta1"
    assert claim["spec"] == {"warmPoolRef": {"name": "pool"}}
    assert claim["metadata"]["ownerReferences"][0]["uid"] == LEASE[1]


def documents(name: str) -> list[dict[str, Any]]:
    with (DEPLOY / name).open() as handle:
        return [dict(d) for d in YAML(typ="safe").load_all(handle) if d]


def test_the_namespace_enforces_restricted():
    (namespace,) = documents("namespace.yaml")
    validate(namespace)
    assert namespace["metadata"]["labels"][admission.ENFORCE] == "restricted"
    assert namespace["metadata"]["name"] == settings().sandbox.kubernetes.namespace


def test_the_rbac_grants_what_the_backend_calls():
    found = {d["kind"]: d for d in documents("rbac.yaml")}
    for document in found.values():
        validate(document)
    rules = {
        (group, resource): set(rule["verbs"])
        for rule in found["Role"]["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert rules[("", "pods")] >= {"create", "get", "list", "watch", "patch", "delete"}
    assert rules[("", "pods/exec")] == {"create", "get"}
    assert rules[("coordination.k8s.io", "leases")] >= {"create", "get", "list", "patch", "delete"}
    assert rules[("networking.k8s.io", "networkpolicies")] >= {"create", "delete"}
    assert rules[("extensions.agents.x-k8s.io", "sandboxclaims")] >= {"create", "get", "delete"}
    assert found["RoleBinding"]["roleRef"]["name"] == found["Role"]["metadata"]["name"]


def test_the_agent_sandbox_template_is_the_pod_the_backend_makes():
    template, pool = documents("agent-sandbox.yaml")
    spec = template["spec"]["podTemplate"]["spec"]
    assert spec == m.pod_spec(settings(network="unrestricted")).body()
    assert admission.violations("restricted", {"metadata": {"name": "t"}, "spec": spec}) == []
    validate({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t"}, "spec": spec})
    assert pool["spec"]["sandboxTemplateRef"]["name"] == template["metadata"]["name"]


def test_settings_read_their_environment_forms():
    resolved = resolve(
        environ={
            "STIGMER_SANDBOX_BACKEND": "kubernetes",
            "STIGMER_SANDBOX_KUBERNETES_NODE_SELECTOR": "a=b,c=d",
            "STIGMER_SANDBOX_KUBERNETES_TOLERATIONS": "gpu=true:NoSchedule,spot",
            "STIGMER_SANDBOX_KUBERNETES_NETWORK": "none",
            "STIGMER_SANDBOX_KUBERNETES_MAX_LIFETIME": "90m",
        },
        path=Path("/nonexistent/config.yaml"),
    ).settings.sandbox.kubernetes
    assert resolved.node_selector == {"a": "b", "c": "d"}
    assert [(t.key, t.operator, t.effect) for t in resolved.tolerations] == [
        ("gpu", "Equal", "NoSchedule"),
        ("spot", "Exists", None),
    ]
    assert (resolved.network, resolved.max_lifetime) == ("none", 5400.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [("network", "bridge"), ("cpu", "lots"), ("user", "0"), ("provisioner", "helm")],
)
def test_bad_kubernetes_settings_are_one_line_errors(key, value):
    from agent_runner.errors import InvalidSetting

    with pytest.raises(InvalidSetting) as error:
        resolve(
            environ={f"STIGMER_SANDBOX_KUBERNETES_{key.upper()}": value},
            path=Path("/nonexistent/config.yaml"),
        )
    assert f"execution.sandbox.kubernetes.{key}" in str(error.value)
    assert "\n" not in str(error.value)
