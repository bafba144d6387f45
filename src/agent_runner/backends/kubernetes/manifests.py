"""What the backend asks the cluster for, in pure functions: the pod, its NetworkPolicies,
the runner's Lease and an agent-sandbox claim.

Kept apart from the API calls so the secure defaults can be read and tested in one place.
The pod passes Pod Security "restricted": a numeric non-root user, seccomp
``RuntimeDefault``, no privilege escalation, every capability dropped, a read-only root
with size-limited emptyDirs for ``/tmp``, ``$HOME`` and ``/workspace``, no service account
token, no service links, requests equal to limits, ``activeDeadlineSeconds`` as the last
stop whoever is left, and a short grace period (its main process exits on TERM). The main
process is a sleeper that reaps orphans: commands arrive through ``pods/exec``, and the
orphans of exec'd processes are re-parented to the pod's PID 1.

Nothing per session is written here (no variables, no secrets): those go through the
executor, so a warm pod can serve any session and the API never stores them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time

from agent_runner.backends.kubernetes import models as k8s
from agent_runner.backends.owner import Owner
from agent_runner.config import KubernetesSettings, Settings

PREFIX = "stigmer.dev/"
SANDBOX = PREFIX + "sandbox"
"""Label on everything a runner creates for sandboxes (pods, claims)."""
POOL = PREFIX + "pool"
"""Label on unclaimed warm pods: the hash of the pod they are, so only a match is claimed."""
NETWORK = PREFIX + "network"
"""Label naming the pod's network mode; our NetworkPolicies select pods by it."""
RUNNER = PREFIX + "runner"
"""Label naming the Lease of the runner that holds the pod or claim now."""
RUNNER_LEASE = PREFIX + "runner-lease"
"""Label on the runners' Leases."""
EXECUTION = PREFIX + "execution-id"
CREATED = PREFIX + "created-at"
IMAGE = PREFIX + "image"
OWNER_PID, OWNER_HOST, OWNER_STARTED = (PREFIX + f"owner-{k}" for k in ("pid", "host", "started"))
CONTAINER = "sandbox"
WORKSPACE = "/workspace"
HOME = "/home/sandbox"
SCRATCH_SIZE = "1Gi"
"""Size limit of ``/tmp`` and of ``$HOME`` each."""
GRACE_SECONDS = 2
MAIN_PROCESS = 'trap "exit 0" TERM INT HUP; while :; do sleep 2147483647 & wait; done'
"""PID 1 of the pod: exits at once on TERM, and ``wait`` reaps whatever child it has,
orphans of exec'd commands included (a shell that does not wait leaves zombies)."""
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]
"""RFC 1918, link-local (cloud metadata) and shared address space (some pod networks)."""
PRIVATE_V6 = ["fc00::/7", "fe80::/10"]
PUBLIC_RESOLVERS = ["8.8.8.8", "1.1.1.1"]
"""egress-public blocks the cluster's DNS (a private address): names resolve publicly,
as agent-sandbox's secure defaults do."""


def now_rfc3339(micro: bool = False) -> str:
    stamp = time.time()
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(stamp))
    return text + (f".{int(stamp % 1 * 1e6):06d}Z" if micro else "Z")


def user_of(settings: KubernetesSettings) -> tuple[int, int]:
    uid, _, gid = settings.user.partition(":")
    return int(uid), int(gid or uid)


def image_of(settings: Settings) -> str:
    return settings.sandbox.kubernetes.image or settings.sandbox_image


def owner_annotations(owner: Owner) -> dict[str, str]:
    return {OWNER_PID: str(owner.pid), OWNER_HOST: owner.host, OWNER_STARTED: owner.started}


def lease_reference(name: str, uid: str) -> k8s.OwnerReference:
    """Pods, policies and claims are owned by the runner's Lease: deleting it deletes them."""
    return k8s.OwnerReference(
        api_version="coordination.k8s.io/v1", kind="Lease", name=name, uid=uid, controller=True
    )


def pod_spec(settings: Settings) -> k8s.PodSpec:
    """The spec of every sandbox pod these settings make (warm or not)."""
    kube = settings.sandbox.kubernetes
    uid, gid = user_of(kube)
    resources = {
        "cpu": kube.cpu,
        "memory": kube.memory,
        "ephemeral-storage": kube.ephemeral_storage,
    }
    volumes = {"tmp": ("/tmp", SCRATCH_SIZE), "home": (HOME, SCRATCH_SIZE)}
    volumes["workspace"] = (WORKSPACE, kube.workspace_size)
    container = k8s.Container(
        name=CONTAINER,
        image=image_of(settings),
        image_pull_policy="IfNotPresent",
        command=["/bin/sh", "-c", MAIN_PROCESS, "stigmer-sandbox"],
        env=[k8s.EnvVar(name="HOME", value=HOME)],
        resources=k8s.ResourceRequirements(requests=resources, limits=dict(resources)),
        volume_mounts=[k8s.VolumeMount(name=n, mount_path=p) for n, (p, _) in volumes.items()],
        security_context=k8s.SecurityContext(
            allow_privilege_escalation=False,
            capabilities=k8s.Capabilities(drop=["ALL"]),
            read_only_root_filesystem=True,
            privileged=False,
            run_as_non_root=True,
        ),
    )
    public = kube.network == "egress-public"
    return k8s.PodSpec(
        containers=[container],
        volumes=[
            k8s.Volume(name=n, empty_dir=k8s.EmptyDirVolumeSource(size_limit=size))
            for n, (_, size) in volumes.items()
        ],
        security_context=k8s.PodSecurityContext(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=gid,
            fs_group=gid,
            seccomp_profile=k8s.SeccompProfile(type="RuntimeDefault"),
        ),
        restart_policy="Never",
        termination_grace_period_seconds=GRACE_SECONDS,
        active_deadline_seconds=max(1, int(kube.max_lifetime)),
        automount_service_account_token=False,
        enable_service_links=False,
        service_account_name=kube.service_account,
        runtime_class_name=kube.runtime_class,
        node_selector=dict(kube.node_selector) or None,
        tolerations=[k8s.Toleration(**t.model_dump(exclude_none=True)) for t in kube.tolerations]
        or None,
        image_pull_secrets=[k8s.LocalObjectReference(name=n) for n in kube.image_pull_secrets]
        or None,
        dns_policy="None" if public else None,
        dns_config=k8s.PodDNSConfig(nameservers=PUBLIC_RESOLVERS) if public else None,
    )


def template_hash(spec: k8s.PodSpec) -> str:
    """Names a pod spec in a label value, so a warm pod is only claimed by a runner that
    would have made the same one."""
    text = json.dumps(spec.body(), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pod_name(execution_id: str | None) -> str:
    """``stigmer-<random>-<execution id>`` (a DNS label: lower case, at most 63)."""
    token = secrets.token_hex(4)
    if execution_id is None:
        return f"stigmer-pool-{token}"
    cleaned = "".join(c if c.isalnum() else "-" for c in execution_id.lower()).strip("-")
    return f"stigmer-{token}-{cleaned}"[:63].rstrip("-")


def sandbox_pod(
    settings: Settings,
    *,
    name: str,
    lease: tuple[str, str],
    owner: Owner,
    execution_id: str | None,
) -> k8s.Pod:
    """A pod for one session (``execution_id``), or a warm one for the pool (``None``)."""
    spec = pod_spec(settings)
    labels = {
        SANDBOX: "1",
        NETWORK: settings.sandbox.kubernetes.network,
        RUNNER: lease[0],
    }
    if execution_id is None:
        labels[POOL] = template_hash(spec)
    annotations = {
        **owner_annotations(owner),
        CREATED: now_rfc3339(),
        IMAGE: image_of(settings),
        EXECUTION: execution_id or "pool",
    }
    metadata = k8s.ObjectMeta(
        name=name,
        labels=labels,
        annotations=annotations,
        owner_references=[lease_reference(*lease)],
    )
    return k8s.Pod(metadata=metadata, spec=spec)


def network_policy(mode: str, lease: tuple[str, str]) -> k8s.NetworkPolicy | None:
    """The policy for pods labelled with network ``mode`` (none for ``unrestricted``).

    Each runner owns one per mode it uses, and they are alike: policies only add up, so
    a runner that goes (and its policy with it) never opens another runner's pods.
    """
    if mode == "unrestricted":
        return None
    egress = None
    if mode == "egress-public":
        egress = [
            k8s.NetworkPolicyEgressRule(
                to=[
                    k8s.NetworkPolicyPeer(
                        ip_block=k8s.IPBlock(cidr="0.0.0.0/0", except_=PRIVATE_V4)
                    ),
                    k8s.NetworkPolicyPeer(ip_block=k8s.IPBlock(cidr="::/0", except_=PRIVATE_V6)),
                ]
            )
        ]
    return k8s.NetworkPolicy(
        metadata=k8s.ObjectMeta(
            name=f"{lease[0]}-{mode}",
            labels={SANDBOX: "1", RUNNER: lease[0]},
            owner_references=[lease_reference(*lease)],
        ),
        spec=k8s.NetworkPolicySpec(
            pod_selector=k8s.LabelSelector(match_labels={NETWORK: mode}),
            policy_types=["Ingress", "Egress"],
            egress=egress,
        ),
    )


def runner_lease(name: str, owner: Owner, duration: float) -> k8s.Lease:
    stamp = now_rfc3339(micro=True)
    return k8s.Lease(
        metadata=k8s.ObjectMeta(
            name=name, labels={RUNNER_LEASE: "1"}, annotations=owner_annotations(owner)
        ),
        spec=k8s.LeaseSpec(
            holder_identity=str(owner),
            lease_duration_seconds=max(1, round(duration)),
            acquire_time=stamp,
            renew_time=stamp,
        ),
    )


def sandbox_claim(
    name: str, warm_pool: str, lease: tuple[str, str], owner: Owner, execution_id: str
) -> k8s.SandboxClaim:
    """A claim on an operator's warm pool; deliberately without ``env``, which would make
    agent-sandbox start a cold pod instead of handing over a warm one."""
    return k8s.SandboxClaim(
        metadata=k8s.ObjectMeta(
            name=name,
            labels={SANDBOX: "1", RUNNER: lease[0]},
            annotations={
                **owner_annotations(owner),
                CREATED: now_rfc3339(),
                EXECUTION: execution_id,
            },
            owner_references=[lease_reference(*lease)],
        ),
        spec=k8s.SandboxClaimSpec(warm_pool_ref=k8s.WarmPoolRef(name=warm_pool)),
    )
