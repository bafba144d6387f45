"""The garbage collector and the namespace lifecycle controllers.

Mirrors kube-controller-manager's garbagecollector (pkg/controller/garbagecollector) in
what a client can observe: an object whose ``ownerReferences`` name (by uid) only owners
that no longer exist is deleted, in the background, through the normal delete path (so a
pod owned by a deleted Lease is deleted gracefully, and goes away with a DELETED event
once the kubelet has stopped it); an object that still has a live owner only loses the
dangling reference; an owner deleted with ``propagationPolicy: Foreground`` keeps its
``foregroundDeletion`` finalizer until every dependent is gone.

Also the namespace controller (deleting a namespace deletes its content, then the
namespace) and the service-account controller (every namespace gets ``default``).
A controller here is what it is upstream: a consumer of the store's watch events.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.deletion import FOREGROUND, Deleter
from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.status import ApiError
from tests.fakes.kube.store import Event, Store

Object = dict[str, Any]


def _resource(key: str) -> ResourceType:
    return next(r for r in kinds.ALL if r.key == key)


class GarbageCollector:
    def __init__(self, store: Store, deleter: Deleter) -> None:
        self.store = store
        self.deleter = deleter
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        watcher = self.store.watch(None, None, None, limit=0)
        try:
            while (event := await watcher.queue.get()) is not None:
                # An ApiError means the object changed under us: its next event comes.
                with contextlib.suppress(ApiError):
                    self._handle(event)
        finally:
            self.store.unwatch(watcher)

    def _handle(self, event: Event) -> None:
        meta = event.object["metadata"]
        if event.type == "DELETED":
            self._collect_dependents(meta["uid"])
            self._release_foreground_owners(event.object)
            if event.resource == kinds.NAMESPACES.key:
                return
            self._finish_namespace(meta.get("namespace", ""))
            return
        if event.resource == kinds.NAMESPACES.key:
            self._namespace_changed(event)
        if meta.get("ownerReferences") and not self._live_owners(event.object):
            self._delete(event.resource, event.object)
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
            self._foreground(event.resource, event.object)

    # -- owners and dependents -------------------------------------------------------
    def _owner(self, obj: Object, ref: Object) -> Object | None:
        resource = kinds.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None:
            return None
        namespace = obj["metadata"].get("namespace", "") if resource.namespaced else ""
        owner = self.store.get(resource, namespace, ref.get("name", ""))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return None
        return owner

    def _live_owners(self, obj: Object) -> list[Object]:
        found = []
        for ref in obj["metadata"].get("ownerReferences") or []:
            owner = self._owner(obj, ref)
            if owner is not None:
                found.append(owner)
        return found

    def _dependents(self, owner_uid: str) -> list[tuple[str, Object]]:
        return [
            (key, obj)
            for key, obj in self.store.everything()
            if any(r.get("uid") == owner_uid for r in obj["metadata"].get("ownerReferences") or [])
        ]

    def _collect_dependents(self, owner_uid: str) -> None:
        for key, obj in self._dependents(owner_uid):
            if self._live_owners(obj):
                refs = [r for r in obj["metadata"]["ownerReferences"] if r.get("uid") != owner_uid]
                obj["metadata"]["ownerReferences"] = refs
                self.store.replace(_resource(key), obj)
            else:
                self._delete(key, obj)

    def _delete(self, key: str, obj: Object) -> None:
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            return
        self.deleter.delete(_resource(key), meta.get("namespace", ""), meta["name"])

    def _foreground(self, key: str, owner: Object) -> None:
        dependents = self._dependents(owner["metadata"]["uid"])
        for dep_key, dependent in dependents:
            self._delete(dep_key, dependent)
        if not dependents:
            self._drop_finalizer(key, owner, FOREGROUND)

    def _release_foreground_owners(self, gone: Object) -> None:
        for ref in gone["metadata"].get("ownerReferences") or []:
            owner = self._owner(gone, ref)
            if owner is None:
                continue
            meta = owner["metadata"]
            terminating = meta.get("deletionTimestamp") and FOREGROUND in (
                meta.get("finalizers") or []
            )
            if terminating and not self._dependents(meta["uid"]):
                resource = kinds.by_kind(ref["apiVersion"], ref["kind"])
                assert resource is not None
                self._drop_finalizer(resource.key, owner, FOREGROUND)

    def _drop_finalizer(self, key: str, obj: Object, finalizer: str) -> None:
        resource = _resource(key)
        obj["metadata"]["finalizers"] = [
            f for f in obj["metadata"].get("finalizers") or [] if f != finalizer
        ]
        if not obj["metadata"]["finalizers"]:
            del obj["metadata"]["finalizers"]
        self.deleter.finish(resource, self.store.replace(resource, obj))

    # -- namespaces ------------------------------------------------------------------
    def _namespace_changed(self, event: Event) -> None:
        name = event.object["metadata"]["name"]
        if event.type == "ADDED":
            if self.store.get(kinds.SERVICEACCOUNTS, name, "default") is None:
                self.store.create(
                    kinds.SERVICEACCOUNTS, {"metadata": {"name": "default", "namespace": name}}
                )
            return
        if event.object["metadata"].get("deletionTimestamp"):
            for resource in kinds.ALL:
                if resource.namespaced:
                    for obj in self.store.list(resource, name):
                        self._delete(resource.key, obj)
            self._finish_namespace(name)

    def _finish_namespace(self, name: str) -> None:
        namespace = self.store.get(kinds.NAMESPACES, "", name)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        if any(self.store.list(r, name) for r in kinds.ALL if r.namespaced):
            return
        namespace["metadata"].pop("finalizers", None)
        self.deleter.finish(kinds.NAMESPACES, self.store.replace(kinds.NAMESPACES, namespace))
