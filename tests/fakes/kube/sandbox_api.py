"""The agent-sandbox API vocabulary: label and annotation keys, hashes, conditions.

From kubernetes-sigs/agent-sandbox (commit 2fd412d5) ``api/v1beta1/sandbox_types.go``
and ``extensions/api/v1beta1``: the ``agents.x-k8s.io/*`` keys the controllers stamp on
Sandboxes, pods and claims, ``NameHash`` (FNV-1a, 32 bit, 8 hex digits), controller
ownerReferences, and ``metav1.Condition`` handling (``lastTransitionTime`` kept while the
status does not change). Shared by the Sandbox controller and the pool/claim controllers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.store import now_rfc3339

Object = dict[str, Any]
POD_NAME = "agents.x-k8s.io/pod-name"
TEMPLATE_REF = "agents.x-k8s.io/sandbox-template-ref"
LAUNCH_TYPE = "agents.x-k8s.io/launch-type"
WARM_POOL = "agents.x-k8s.io/warm-pool-sandbox"
TEMPLATE_REF_HASH = "agents.x-k8s.io/sandbox-template-ref-hash"
TEMPLATE_HASH = "agents.x-k8s.io/sandbox-template-hash"
POD_TEMPLATE_HASH = "agents.x-k8s.io/sandbox-pod-template-hash"
SANDBOX_NAME_HASH = "agents.x-k8s.io/sandbox-name-hash"
CLAIM_UID = "agents.x-k8s.io/claim-uid"
ASSIGNED = "agents.x-k8s.io/sandbox-name"
WARM_GRACE_SECONDS = 2.0
RELEVANT = {r.key for r in (kinds.PODS, kinds.SANDBOXES, kinds.SANDBOXTEMPLATES,
                            kinds.SANDBOXCLAIMS, kinds.SANDBOXWARMPOOLS)}  # fmt: skip


def name_hash(name: str) -> str:
    """``NameHash``: FNV-1a (32 bit) of the name, as 8 hex digits."""
    value = 0x811C9DC5
    for byte in name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def owner_ref(owner: Object) -> Object:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Object) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def condition(obj: Object, kind: str) -> Object | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None
    )


def is_ready(obj: Object) -> bool:
    found = condition(obj, "Ready")
    return found is not None and found["status"] == "True"


def age(obj: Object) -> float:
    created = datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    return (datetime.now(UTC).replace(tzinfo=None) - created).total_seconds()


def meta_condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> Object:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339(),
    }


def put_condition(status: Object, new: Object) -> None:
    conditions = status.setdefault("conditions", [])
    for index, old in enumerate(conditions):
        if old["type"] == new["type"]:
            if old["status"] == new["status"]:
                new = {**new, "lastTransitionTime": old.get("lastTransitionTime")}
            conditions[index] = new
            return
    conditions.append(new)
