"""The resource types the fake serves, and the discovery documents built from them.

One row per resource, as a real apiserver registers it (core v1, coordination.k8s.io,
networking.k8s.io, and the agent-sandbox CRDs of kubernetes-sigs/agent-sandbox at
api/v1beta1 and extensions/api/v1beta1): group, version, plural, Kind, scope, the
field selectors it indexes and whether it has a ``status`` subresource. ``/api``,
``/apis`` and each group/version's ``APIResourceList`` are generated from this table, so
a client's discovery sees exactly what the REST layer answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests.fakes.kube.selectors import NAMESPACE_FIELDS, POD_FIELDS

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status_subresource: bool = False
    fields: tuple[str, ...] = ()
    builtin: bool = True
    """Built-in types leave ``kind``/``apiVersion`` out of list items; CRDs keep them."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> str:
        """Where objects are stored: one per group and resource, whatever the version."""
        return f"{self.group}/{self.plural}"

    @property
    def singular(self) -> str:
        return self.kind.lower()


CORE = ""
COORDINATION = "coordination.k8s.io"
NETWORKING = "networking.k8s.io"
AGENTS = "agents.x-k8s.io"
AGENTS_EXTENSIONS = "extensions.agents.x-k8s.io"

NAMESPACES = ResourceType(CORE, "v1", "namespaces", "Namespace", False, True, NAMESPACE_FIELDS)
PODS = ResourceType(CORE, "v1", "pods", "Pod", True, True, POD_FIELDS)
CONFIGMAPS = ResourceType(CORE, "v1", "configmaps", "ConfigMap")
SECRETS = ResourceType(CORE, "v1", "secrets", "Secret", fields=("type",))
SERVICEACCOUNTS = ResourceType(CORE, "v1", "serviceaccounts", "ServiceAccount")
SERVICES = ResourceType(CORE, "v1", "services", "Service", status_subresource=True)
EVENTS = ResourceType(CORE, "v1", "events", "Event")
LEASES = ResourceType(COORDINATION, "v1", "leases", "Lease")
NETWORKPOLICIES = ResourceType(NETWORKING, "v1", "networkpolicies", "NetworkPolicy")
SANDBOXES = ResourceType(AGENTS, "v1beta1", "sandboxes", "Sandbox", True, True, builtin=False)
SANDBOXTEMPLATES = ResourceType(
    AGENTS_EXTENSIONS, "v1beta1", "sandboxtemplates", "SandboxTemplate", builtin=False
)
SANDBOXCLAIMS = ResourceType(
    AGENTS_EXTENSIONS, "v1beta1", "sandboxclaims", "SandboxClaim", True, True, builtin=False
)
SANDBOXWARMPOOLS = ResourceType(
    AGENTS_EXTENSIONS, "v1beta1", "sandboxwarmpools", "SandboxWarmPool", True, True, builtin=False
)

ALL: tuple[ResourceType, ...] = (
    NAMESPACES,
    PODS,
    CONFIGMAPS,
    SECRETS,
    SERVICEACCOUNTS,
    SERVICES,
    EVENTS,
    LEASES,
    NETWORKPOLICIES,
    SANDBOXES,
    SANDBOXTEMPLATES,
    SANDBOXCLAIMS,
    SANDBOXWARMPOOLS,
)

POD_SUBRESOURCES = ("status", "log", "exec", "attach", "portforward", "binding", "eviction")


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    for resource in ALL:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The resource an ``ownerReference`` (apiVersion + kind) points at, any version."""
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    for resource in ALL:
        if resource.group == group and resource.kind == kind:
            return resource
    return None


def group_versions() -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for resource in ALL:
        if resource.group:
            versions = groups.setdefault(resource.group, [])
            if resource.version not in versions:
                versions.append(resource.version)
    return groups


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def api_group_list() -> dict[str, Any]:
    groups = [api_group(group, versions) for group, versions in group_versions().items()]
    for group in groups:
        del group["kind"], group["apiVersion"]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    resources: list[dict[str, Any]] = []
    for resource in ALL:
        if (resource.group, resource.version) != (group, version):
            continue
        resources.append(
            {
                "name": resource.plural,
                "singularName": resource.singular,
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": VERBS,
            }
        )
        if resource.status_subresource:
            resources.append(
                {
                    "name": f"{resource.plural}/status",
                    "singularName": "",
                    "namespaced": resource.namespaced,
                    "kind": resource.kind,
                    "verbs": ["get", "patch", "update"],
                }
            )
        if resource is PODS:
            for sub, verbs in (("exec", ["create", "get"]), ("log", ["get"])):
                resources.append(
                    {
                        "name": f"pods/{sub}",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "PodExecOptions" if sub == "exec" else "Pod",
                        "verbs": verbs,
                    }
                )
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }
