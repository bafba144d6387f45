"""Create, update, patch and delete with the apiserver's rules, for REST and controllers.

Mirrors k8s.io/apiserver/pkg/registry/generic/registry.Store and the handlers in
pkg/endpoints/handlers: the namespace must exist (404) and not be terminating (403);
``metadata.resourceVersion`` in an update, or in the result of a patch, is an optimistic
lock (409 Conflict when stale); custom resources refuse an update without one (422);
``status`` only changes through the ``/status`` subresource where a type has it, and
only status changes there; ``metadata.generation`` follows the spec; pods get their
defaults and pass Pod Security Admission. The fake's own controllers (agent-sandbox)
write through here too, so what they create is admitted exactly as a client's request.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.kube import admission, patch, status, validation
from tests.fakes.kube import resources as kinds
from tests.fakes.kube.deletion import Deleter
from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.status import Cause
from tests.fakes.kube.store import Store

Object = dict[str, Any]


def _required(obj: Object, *path: str) -> list[Cause]:
    node: Any = obj
    for index, part in enumerate(path):
        node = node.get(part) if isinstance(node, dict) else None
        if node in (None, "", {}):
            return [status.required(".".join(path[: index + 1]))]
    return []


CRD_REQUIRED: dict[str, list[tuple[str, ...]]] = {
    kinds.SANDBOXES.key: [("spec", "podTemplate", "spec")],
    kinds.SANDBOXTEMPLATES.key: [("spec", "podTemplate", "spec")],
    kinds.SANDBOXCLAIMS.key: [("spec", "warmPoolRef", "name")],
    kinds.SANDBOXWARMPOOLS.key: [("spec", "sandboxTemplateRef", "name")],
}
"""The ``+required`` fields of the agent-sandbox CRDs' OpenAPI schemas that a client can miss."""


class Registry:
    def __init__(self, store: Store, deleter: Deleter) -> None:
        self.store = store
        self.deleter = deleter

    # -- checks ----------------------------------------------------------------------
    def _namespace(self, resource: ResourceType, namespace: str, name: str) -> None:
        if not resource.namespaced:
            return
        found = self.store.get(kinds.NAMESPACES, "", namespace)
        if found is None:
            raise status.not_found("", "namespaces", namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise status.forbidden(
                resource.group,
                resource.plural,
                name,
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _validate(self, resource: ResourceType, obj: Object, old: Object | None) -> None:
        causes = validation.metadata(obj, resource is kinds.NAMESPACES)
        if resource is kinds.PODS:
            causes += validation.pod_spec(obj.get("spec"))
            if old is not None:
                causes += validation.pod_update(old, obj)
        for path in CRD_REQUIRED.get(resource.key, []):
            causes += _required(obj, *path)
        for path in (("spec", "podTemplate", "spec"),):
            if resource in (kinds.SANDBOXES, kinds.SANDBOXTEMPLATES) and not causes:
                causes += validation.pod_spec(obj["spec"]["podTemplate"]["spec"], ".".join(path))
        if causes:
            meta = obj.get("metadata") or {}
            raise status.invalid(
                resource.group,
                resource.kind,
                meta.get("name") or meta.get("generateName", ""),
                causes,
            )

    def _check_type(self, resource: ResourceType, obj: Any) -> Object:
        if not isinstance(obj, dict):
            raise status.bad_request("the body of the request was in an unknown format")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if (
            api_version
            and api_version != resource.api_version
            and not (api_version.split("/")[0] == resource.group and resource.group)
        ):
            raise status.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({resource.api_version})"
            )
        if kind and kind != resource.kind:
            raise status.bad_request(
                f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
            )
        return obj

    # -- verbs -----------------------------------------------------------------------
    def create(
        self, resource: ResourceType, namespace: str, body: Any, dry_run: bool = False
    ) -> Object:
        obj = copy.deepcopy(self._check_type(resource, body))
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise status.bad_request("metadata must be an object")
        if resource.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise status.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if resource.status_subresource or resource is kinds.PODS:
            obj.pop("status", None)
        self._validate(resource, obj, None)
        self._namespace(resource, namespace, meta.get("name") or meta.get("generateName", ""))
        if resource is kinds.PODS:
            validation.default_pod(obj)
            ns = self.store.require(kinds.NAMESPACES, "", namespace)
            admission.enforce(ns, obj)
        if resource is kinds.NAMESPACES:
            meta.setdefault("labels", {})["kubernetes.io/metadata.name"] = meta.get("name", "")
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        if dry_run:
            return obj
        return self.store.create(resource, obj)

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Object:
        obj = copy.deepcopy(self._check_type(resource, body))
        meta = obj.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != name:
            raise status.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
            )
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = namespace
        current = self.store.require(resource, namespace, name)
        wanted = meta.get("resourceVersion")
        if not wanted and not resource.builtin:
            raise status.invalid(
                resource.group,
                resource.kind,
                name,
                [
                    status.invalid_value(
                        "metadata.resourceVersion", "0x0", "must be specified for an update"
                    )
                ],
            )
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise status.conflict(resource.group, resource.plural, name)
        return self._write(resource, current, obj, subresource, dry_run)

    def patch(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        content_type: str,
        body: Any,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Object:
        current = self.store.require(resource, namespace, name)
        accepted = [patch.JSON_PATCH, patch.MERGE, patch.APPLY]
        if resource.builtin:
            accepted.insert(2, patch.STRATEGIC)
        if content_type == patch.MERGE:
            patched = patch.merge(current, body)
        elif content_type == patch.STRATEGIC and resource.builtin:
            patched = patch.strategic(current, body)
        elif content_type == patch.JSON_PATCH:
            patched = patch.json_patch(current, body)
        else:
            raise status.unsupported_media_type(content_type, accepted)
        if not isinstance(patched, dict):
            raise status.bad_request("the patch did not produce an object")
        meta = patched.setdefault("metadata", {})
        wanted = meta.get("resourceVersion")
        if wanted and wanted != current["metadata"]["resourceVersion"]:
            raise status.conflict(resource.group, resource.plural, name)
        meta["name"] = name
        if resource.namespaced:
            meta["namespace"] = namespace
        return self._write(resource, current, patched, subresource, dry_run)

    def _write(
        self, resource: ResourceType, current: Object, new: Object, subresource: str, dry_run: bool
    ) -> Object:
        new = copy.deepcopy(new)
        meta = new["metadata"]
        old_meta = current["metadata"]
        if subresource == "status":
            merged = copy.deepcopy(current)
            merged["status"] = new.get("status", {})
            new, meta = merged, merged["metadata"]
        elif resource.status_subresource:
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            else:
                new.pop("status", None)
        for fixed in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ):
            if fixed in old_meta:
                meta[fixed] = old_meta[fixed]
            else:
                meta.pop(fixed, None)
        meta["generation"] = old_meta.get("generation", 1)
        if subresource != "status" and new.get("spec") != current.get("spec"):
            meta["generation"] += 1
        self._validate(resource, new, current if resource is kinds.PODS else None)
        if resource is kinds.PODS and subresource != "status":
            namespace = self.store.require(kinds.NAMESPACES, "", old_meta["namespace"])
            admission.enforce(namespace, new)
        if old_meta.get("deletionTimestamp") and set(meta.get("finalizers") or []) - set(
            old_meta.get("finalizers") or []
        ):
            raise status.invalid(
                resource.group,
                resource.kind,
                meta["name"],
                [
                    status.forbidden_field(
                        "metadata.finalizers",
                        "no new finalizers can be added if the object is being deleted",
                    )
                ],
            )
        if dry_run:
            return new
        written = self.store.replace(resource, new)
        return self.deleter.finish(resource, written)

    def delete(self, resource: ResourceType, namespace: str, name: str, **options: Any) -> Object:
        return self.deleter.delete(resource, namespace, name, **options)
