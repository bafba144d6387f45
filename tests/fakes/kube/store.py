"""Objects, resourceVersions and watch fan-out: the fake's etcd plus watch cache.

Mirrors what k8s.io/apiserver/pkg/storage (etcd3 store + cacher) guarantees a client:
one cluster-wide, strictly increasing ``resourceVersion`` (etcd's revision) stamped on
every write, a DELETED event carrying the revision of the delete, watches that replay
every change after a given resourceVersion in order, and ``410 Gone`` ("too old resource
version") once that revision has been compacted out of the history window. Everything
runs on the server's event loop, so no locking: a read-modify-write without an ``await``
in between is atomic, as an etcd transaction is.

Watchers have bounded queues; one that falls too far behind is closed, as the cacher
terminates a slow watcher (the client sees the stream end and re-lists or re-watches).
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import uuid
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.status import already_exists, gone, not_found

Object = dict[str, Any]

_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
"""What ``names.SimpleNameGenerator`` appends to a ``generateName`` (no vowels, no 0/1/3)."""


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    type: str  # ADDED, MODIFIED, DELETED
    resource: str  # ResourceType.key
    object: Object
    previous: Object | None
    revision: int


@dataclass(eq=False)
class Watcher:
    """One open watch. ``queue`` gets events; ``None`` means the watch was ended."""

    resource: str | None
    namespace: str | None
    limit: int = 10_000
    """0 for the fake's own controllers, which must never miss an event."""
    queue: asyncio.Queue[Event | None] = field(init=False)
    closed: bool = False

    def __post_init__(self) -> None:
        self.queue = asyncio.Queue(self.limit)

    def wants(self, event: Event) -> bool:
        if self.resource is not None and event.resource != self.resource:
            return False
        if self.namespace is None:
            return True
        return event.object.get("metadata", {}).get("namespace") == self.namespace

    def offer(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.queue.full():
                self.queue.get_nowait()
            self.queue.put_nowait(None)


class Store:
    def __init__(self, history: int = 5000) -> None:
        self._objects: dict[tuple[str, str, str], Object] = {}
        self._revision = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._compacted = 0
        """Events at or below this revision are gone from the history."""
        self._watchers: set[Watcher] = set()

    # -- reading ---------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._revision

    def get(self, resource: ResourceType, namespace: str, name: str) -> Object | None:
        found = self._objects.get((resource.key, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def require(self, resource: ResourceType, namespace: str, name: str) -> Object:
        found = self.get(resource, namespace, name)
        if found is None:
            raise not_found(resource.group, resource.plural, name)
        return found

    def list(self, resource: ResourceType, namespace: str | None = None) -> list[Object]:
        items = [
            copy.deepcopy(obj)
            for (key, ns, _), obj in self._objects.items()
            if key == resource.key and (namespace is None or ns == namespace)
        ]
        items.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return items

    def everything(self) -> Iterator[tuple[str, Object]]:
        for (key, _, _), obj in list(self._objects.items()):
            yield key, copy.deepcopy(obj)

    # -- writing ---------------------------------------------------------------------
    def _bump(self) -> int:
        self._revision += 1
        return self._revision

    def create(self, resource: ResourceType, obj: Object) -> Object:
        """Store a new object: name from ``generateName``, uid, timestamps, revision."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        namespace = meta.get("namespace", "") if resource.namespaced else ""
        if not meta.get("name") and meta.get("generateName"):
            for _ in range(16):
                candidate = meta["generateName"] + "".join(
                    secrets.choice(_NAME_ALPHABET) for _ in range(5)
                )
                if (resource.key, namespace, candidate) not in self._objects:
                    meta["name"] = candidate
                    break
        name = meta["name"]
        if (resource.key, namespace, name) in self._objects:
            raise already_exists(resource.group, resource.plural, name)
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        meta.setdefault("generation", 1)
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(transient, None)
        revision = self._bump()
        meta["resourceVersion"] = str(revision)
        self._objects[(resource.key, namespace, name)] = obj
        self._emit(Event("ADDED", resource.key, obj, None, revision))
        return copy.deepcopy(obj)

    def replace(self, resource: ResourceType, obj: Object) -> Object:
        """Write a changed object (no precondition check: callers do that)."""
        obj = copy.deepcopy(obj)
        meta = obj["metadata"]
        key = (resource.key, meta.get("namespace", "") if resource.namespaced else "", meta["name"])
        previous = self._objects.get(key)
        if previous is None:
            raise not_found(resource.group, resource.plural, meta["name"])
        for immutable in ("uid", "creationTimestamp", "generateName"):
            if immutable in previous["metadata"]:
                meta[immutable] = previous["metadata"][immutable]
        obj["apiVersion"], obj["kind"] = resource.api_version, resource.kind
        if obj == previous:
            return copy.deepcopy(previous)
        revision = self._bump()
        meta["resourceVersion"] = str(revision)
        self._objects[key] = obj
        self._emit(Event("MODIFIED", resource.key, obj, previous, revision))
        return copy.deepcopy(obj)

    def remove(self, resource: ResourceType, namespace: str, name: str) -> Object:
        key = (resource.key, namespace if resource.namespaced else "", name)
        previous = self._objects.pop(key, None)
        if previous is None:
            raise not_found(resource.group, resource.plural, name)
        revision = self._bump()
        gone_obj = copy.deepcopy(previous)
        gone_obj["metadata"]["resourceVersion"] = str(revision)
        self._emit(Event("DELETED", resource.key, gone_obj, previous, revision))
        return copy.deepcopy(gone_obj)

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        if len(self._history) == self._history.maxlen:
            self._compacted = max(self._compacted, self._history[0].revision - 1)
        for watcher in list(self._watchers):
            if watcher.wants(event):
                watcher.offer(event)

    # -- watching --------------------------------------------------------------------
    def compact(self) -> None:
        """Forget every past event, as an etcd compaction does."""
        self._history.clear()
        self._compacted = self._revision

    def watch(
        self,
        resource: ResourceType | None,
        namespace: str | None,
        since: int | None,
        limit: int = 10_000,
    ) -> Watcher:
        """Events after revision ``since``, or from now on when it is ``None``."""
        watcher = Watcher(resource.key if resource else None, namespace, limit)
        if since is not None and since < self._revision:
            if since < self._compacted:
                raise gone(f"too old resource version: {since} ({self._compacted + 1})")
            for event in self._history:
                if event.revision > since and watcher.wants(event):
                    watcher.offer(event)
        self._watchers.add(watcher)
        return watcher

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        watcher.close()

    def close_watches(self) -> None:
        for watcher in list(self._watchers):
            self.unwatch(watcher)
