"""The Kubernetes objects the backend writes, as typed models (the subset it uses).

Manifests are built from these rather than from nested dicts, so that a misspelt field is
a type error (the pydantic mypy plugin checks the keywords) and an unknown one is refused
at run time; ``body()`` gives the JSON the apiserver takes (camelCase, no empty fields).
Unit tests check the result against the official OpenAPI schemas (kubernetes-validate).
Field names follow the API (``run_as_non_root`` is ``runAsNonRoot``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    def body(self) -> dict[str, Any]:
        """The object as the apiserver reads it."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class OwnerReference(Model):
    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(Model):
    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    owner_references: list[OwnerReference] | None = None


class SeccompProfile(Model):
    type: Literal["RuntimeDefault", "Localhost"]


class Capabilities(Model):
    drop: list[str]


class SecurityContext(Model):
    """A container's security context."""

    allow_privilege_escalation: bool
    capabilities: Capabilities
    read_only_root_filesystem: bool
    privileged: bool | None = None
    run_as_non_root: bool | None = None


class PodSecurityContext(Model):
    run_as_non_root: bool
    run_as_user: int
    run_as_group: int
    fs_group: int | None = None
    seccomp_profile: SeccompProfile


class EnvVar(Model):
    name: str
    value: str


class ResourceRequirements(Model):
    requests: dict[str, str]
    limits: dict[str, str]


class VolumeMount(Model):
    name: str
    mount_path: str
    read_only: bool | None = None


class EmptyDirVolumeSource(Model):
    size_limit: str | None = None


class Volume(Model):
    name: str
    empty_dir: EmptyDirVolumeSource


class Container(Model):
    name: str
    image: str
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    working_dir: str | None = None
    resources: ResourceRequirements | None = None
    volume_mounts: list[VolumeMount] | None = None
    security_context: SecurityContext | None = None


class Toleration(Model):
    key: str | None = None
    operator: Literal["Equal", "Exists"] | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: int | None = None


class LocalObjectReference(Model):
    name: str


class PodDNSConfig(Model):
    nameservers: list[str]


class PodSpec(Model):
    containers: list[Container]
    volumes: list[Volume] | None = None
    security_context: PodSecurityContext | None = None
    restart_policy: Literal["Always", "OnFailure", "Never"] | None = None
    termination_grace_period_seconds: int | None = None
    active_deadline_seconds: int | None = None
    automount_service_account_token: bool | None = None
    enable_service_links: bool | None = None
    service_account_name: str | None = None
    runtime_class_name: str | None = None
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    image_pull_secrets: list[LocalObjectReference] | None = None
    dns_policy: Literal["ClusterFirst", "Default", "None"] | None = None
    dns_config: PodDNSConfig | None = None


class Pod(Model):
    api_version: Literal["v1"] = "v1"
    kind: Literal["Pod"] = "Pod"
    metadata: ObjectMeta
    spec: PodSpec


class LabelSelector(Model):
    match_labels: dict[str, str]


class IPBlock(Model):
    cidr: str
    except_: list[str] | None = Field(default=None, alias="except")


class NetworkPolicyPeer(Model):
    ip_block: IPBlock


class NetworkPolicyEgressRule(Model):
    to: list[NetworkPolicyPeer]


class NetworkPolicySpec(Model):
    pod_selector: LabelSelector
    policy_types: list[Literal["Ingress", "Egress"]]
    egress: list[NetworkPolicyEgressRule] | None = None


class NetworkPolicy(Model):
    api_version: Literal["networking.k8s.io/v1"] = "networking.k8s.io/v1"
    kind: Literal["NetworkPolicy"] = "NetworkPolicy"
    metadata: ObjectMeta
    spec: NetworkPolicySpec


class LeaseSpec(Model):
    holder_identity: str
    lease_duration_seconds: int
    acquire_time: str
    renew_time: str


class Lease(Model):
    api_version: Literal["coordination.k8s.io/v1"] = "coordination.k8s.io/v1"
    kind: Literal["Lease"] = "Lease"
    metadata: ObjectMeta
    spec: LeaseSpec


class WarmPoolRef(Model):
    name: str


class SandboxClaimSpec(Model):
    warm_pool_ref: WarmPoolRef


class SandboxClaim(Model):
    """agent-sandbox's claim (extensions.agents.x-k8s.io/v1beta1): a Sandbox from a pool."""

    api_version: Literal["extensions.agents.x-k8s.io/v1beta1"] = (
        "extensions.agents.x-k8s.io/v1beta1"
    )
    kind: Literal["SandboxClaim"] = "SandboxClaim"
    metadata: ObjectMeta
    spec: SandboxClaimSpec
