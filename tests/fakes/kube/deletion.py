"""What a DELETE does to an object, before the garbage collector and the kubelet act.

Mirrors k8s.io/apiserver/pkg/registry/generic/registry.Store.Delete and the pod
strategy's CheckGracefulDelete:

- preconditions (``uid``, ``resourceVersion``) are checked first (409 when they fail);
- a pod that is bound to a node and not finished is deleted *gracefully*:
  ``deletionTimestamp`` (now + grace) and ``deletionGracePeriodSeconds`` are set and the
  object stays until the kubelet has stopped its containers; grace comes from the request
  (body or query) or ``spec.terminationGracePeriodSeconds``; a later delete may only
  shorten it; an unscheduled or finished pod goes at once;
- an object with ``finalizers`` only gets its ``deletionTimestamp``; it goes when an update
  empties the list;
- ``propagationPolicy``: ``Orphan`` removes the owner's uid from its dependents'
  ``ownerReferences`` first; ``Foreground`` adds the ``foregroundDeletion`` finalizer
  (the collector deletes the dependents, then removes it); ``Background`` (the default)
  deletes the owner now and leaves the dependents to the collector.

The response is the object as it was left: the last state for an immediate deletion,
the marked object for a graceful or finalized one, with 200 either way.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.status import bad_request, conflict
from tests.fakes.kube.store import Store, now_rfc3339

Object = dict[str, Any]
FOREGROUND = "foregroundDeletion"
ORPHAN_FINALIZER = "orphan"
POLICIES = ("Orphan", "Background", "Foreground")


class Deleter:
    def __init__(self, store: Store) -> None:
        self.store = store

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        grace: int | None = None,
        policy: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> Object:
        obj = self.store.require(resource, namespace, name)
        meta = obj["metadata"]
        self._check_preconditions(resource, obj, preconditions or {})
        if policy is not None and policy not in POLICIES:
            raise bad_request(
                f'{policy} is not a valid propagationPolicy; supported: "Orphan", "Background", "Foreground"'
            )
        if dry_run:
            return obj
        if meta.get("deletionTimestamp"):
            return self._delete_again(resource, obj, grace)
        if policy == "Orphan":
            self.orphan_dependents(meta["uid"])
        if policy == "Foreground":
            meta.setdefault("finalizers", [])
            if FOREGROUND not in meta["finalizers"]:
                meta["finalizers"].append(FOREGROUND)
        grace = self._pod_grace(obj, grace) if resource is kinds.PODS else 0
        if grace > 0 or meta.get("finalizers") or resource is kinds.NAMESPACES:
            meta["deletionTimestamp"] = _after(grace)
            meta["deletionGracePeriodSeconds"] = grace
            if resource is kinds.NAMESPACES:
                obj.setdefault("status", {})["phase"] = "Terminating"
            return self.store.replace(resource, obj)
        return self.store.remove(resource, namespace, name)

    def _check_preconditions(
        self, resource: ResourceType, obj: Object, preconditions: dict[str, Any]
    ) -> None:
        meta = obj["metadata"]
        for field, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = preconditions.get(field)
            if wanted and wanted != meta.get(field):
                raise conflict(
                    resource.group,
                    resource.plural,
                    meta["name"],
                    f"Precondition failed: {label} in precondition: {wanted}, "
                    f"{label} in object meta: {meta.get(field)}",
                )

    def _pod_grace(self, pod: Object, grace: int | None) -> int:
        phase = (pod.get("status") or {}).get("phase")
        if not (pod.get("spec") or {}).get("nodeName") or phase in ("Succeeded", "Failed"):
            return 0
        if grace is None:
            grace = int((pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30))
        return max(grace, 0)

    def _delete_again(self, resource: ResourceType, obj: Object, grace: int | None) -> Object:
        """A second delete of a terminating object may only shorten its grace period."""
        meta = obj["metadata"]
        current = meta.get("deletionGracePeriodSeconds", 0)
        if resource is kinds.PODS and grace is not None and grace < current:
            meta["deletionGracePeriodSeconds"] = grace
            meta["deletionTimestamp"] = _after(grace)
            obj = self.store.replace(resource, obj)
            if grace == 0:
                return self.finish(resource, obj)
        return obj

    def finish(self, resource: ResourceType, obj: Object) -> Object:
        """Remove a terminating object whose last obstacle (finalizers, the kubelet) is gone."""
        meta = obj["metadata"]
        if not meta.get("deletionTimestamp") or meta.get("finalizers"):
            return obj
        if resource is kinds.PODS and meta.get("deletionGracePeriodSeconds", 0) > 0:
            return obj
        if resource is kinds.NAMESPACES and any(
            self.store.list(r, meta["name"]) for r in kinds.ALL if r.namespaced
        ):
            return obj
        current = self.store.get(resource, meta.get("namespace", ""), meta["name"])
        if current is None or current["metadata"]["uid"] != meta["uid"]:
            return obj
        return self.store.remove(resource, meta.get("namespace", ""), meta["name"])

    def pod_terminated(self, namespace: str, name: str, uid: str) -> None:
        """The kubelet stopped the pod's containers: the pod object may go."""
        pod = self.store.get(kinds.PODS, namespace, name)
        if pod is None or pod["metadata"]["uid"] != uid:
            return
        pod["metadata"]["deletionGracePeriodSeconds"] = 0
        pod = self.store.replace(kinds.PODS, pod)
        self.finish(kinds.PODS, pod)

    def orphan_dependents(self, owner_uid: str) -> None:
        for key, obj in self.store.everything():
            refs = obj["metadata"].get("ownerReferences") or []
            kept = [r for r in refs if r.get("uid") != owner_uid]
            if len(kept) != len(refs):
                resource = next(r for r in kinds.ALL if r.key == key)
                obj = copy.deepcopy(obj)
                if kept:
                    obj["metadata"]["ownerReferences"] = kept
                else:
                    obj["metadata"].pop("ownerReferences", None)
                self.store.replace(resource, obj)


def _after(seconds: int) -> str:
    if seconds <= 0:
        return now_rfc3339()
    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
