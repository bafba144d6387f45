"""The HTTP face of the fake: the apiserver's URL scheme, verbs, auth and JSON answers.

Mirrors k8s.io/apiserver/pkg/endpoints: ``/version``, ``/api``, ``/apis`` and per
group/version discovery; ``/api/v1/...`` and ``/apis/{group}/{version}/...`` with
``namespaces/{ns}/{plural}[/{name}[/{subresource}]]`` for namespaced resources and
``{plural}[/{name}]`` for cluster ones (and for listing across namespaces); GET (get,
list, ``watch=true``), POST (create, 201), PUT (update), PATCH, DELETE (with
DeleteOptions in the body or the query) and DELETE on a collection. Lists carry the
store's current ``resourceVersion``; built-in types' items carry no kind/apiVersion. A
watch is a chunked stream of JSON lines ``{"type", "object"}``: synthetic ADDED events
for what exists when no resourceVersion (or "0") is given, then every change; with
``allowWatchBookmarks`` a BOOKMARK now and then; a compacted resourceVersion ends in an
``ERROR`` event carrying the 410 ``Expired`` status, as the watch cache does. A bearer
token, when configured, is required (401 otherwise). Errors are ``Status`` bodies.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.kube import resources as kinds
from tests.fakes.kube import selectors, status
from tests.fakes.kube.engine import Engine, demultiplex
from tests.fakes.kube.exec import ExecHandler, parse_bool
from tests.fakes.kube.faults import Faults
from tests.fakes.kube.kubelet import Kubelet
from tests.fakes.kube.registry import Registry
from tests.fakes.kube.resources import ResourceType
from tests.fakes.kube.status import ApiError
from tests.fakes.kube.store import Event, Store

Object = dict[str, Any]
VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0-stigmer-fake",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@dataclass(frozen=True)
class Target:
    resource: ResourceType
    namespace: str
    name: str
    subresource: str


def _json(body: Any, code: int = 200) -> web.Response:
    return web.json_response(
        body, status=code, dumps=lambda o: json.dumps(o, separators=(",", ":"))
    )


def _error(error: ApiError) -> web.Response:
    return _json(error.body(), error.code)


def _int(query: Any, name: str) -> int | None:
    raw = query.get(name)
    if raw in (None, ""):
        return None
    try:
        return int(raw)
    except ValueError:
        raise status.bad_request(f'invalid value for {name}: "{raw}"') from None


class Rest:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        kubelet: Kubelet,
        engine: Engine,
        execs: ExecHandler,
        faults: Faults,
        token: str | None,
        user: str,
        bookmark_seconds: float = 30.0,
    ) -> None:
        self.store, self.registry, self.kubelet, self.engine = store, registry, kubelet, engine
        self.execs, self.faults = execs, faults
        self.token, self.user = token, user
        self.bookmark_seconds = bookmark_seconds
        self.address = ""
        self.closing = asyncio.Event()

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            if self.token is not None:
                header = request.headers.get("Authorization", "")
                if header != f"Bearer {self.token}":
                    raise status.unauthorized()
            return await self._route(request)
        except ApiError as error:
            return _error(error)

    async def _route(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if parts == ["version"]:
            return _json(VERSION)
        if parts in (["healthz"], ["readyz"], ["livez"]):
            return web.Response(text="ok")
        if not parts or parts[0] not in ("api", "apis"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if parts[0] == "api":
            if len(parts) == 1:
                return _json(kinds.api_versions(self.address))
            group, version, rest = "", parts[1], parts[2:]
        else:
            if len(parts) == 1:
                return _json(kinds.api_group_list())
            versions = kinds.group_versions().get(parts[1])
            if versions is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if len(parts) == 2:
                return _json(kinds.api_group(parts[1], versions))
            group, version, rest = parts[1], parts[2], parts[3:]
        if not rest:
            listing = kinds.api_resource_list(group, version)
            if listing is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return _json(listing)
        target, collection = self._target(group, version, rest)
        return await self._serve(request, target, collection)

    def _target(self, group: str, version: str, rest: list[str]) -> tuple[Target, bool]:
        missing = ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            candidate = kinds.lookup(group, version, rest[2])
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        resource = kinds.lookup(group, version, rest[0])
        if resource is None or len(rest) > 3:
            raise missing
        if len(rest) > 1 and resource.namespaced and not namespace:
            raise missing
        name = rest[1] if len(rest) > 1 else ""
        subresource = rest[2] if len(rest) > 2 else ""
        if subresource and not (
            (subresource == "status" and resource.status_subresource)
            or (resource is kinds.PODS and subresource in kinds.POD_SUBRESOURCES)
        ):
            raise missing
        return Target(resource, namespace, name, subresource), len(rest) == 1

    async def _serve(
        self, request: web.Request, target: Target, collection: bool
    ) -> web.StreamResponse:
        method = request.method
        resource = target.resource
        label = resource.plural + (f"/{target.subresource}" if target.subresource else "")
        query = request.query
        dry_run = query.get("dryRun") == "All"
        if target.subresource == "exec":
            self.faults.count("create", label)
            return await self.execs.handle(request, target.namespace, target.name, self.user)
        if target.subresource == "log":
            self.faults.count("get", label)
            return await self._log(request, target)
        if collection:
            if method == "GET":
                watching = parse_bool("watch", query.get("watch"))
                self.faults.count("watch" if watching else "list", label)
                if watching:
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                self.faults.count("create", label)
                body = await self._body(request)
                return _json(self.registry.create(resource, target.namespace, body, dry_run), 201)
            if method == "DELETE":
                self.faults.count("deletecollection", label)
                return await self._delete_collection(request, target)
            raise status.method_not_allowed()
        if method == "GET":
            self.faults.count("get", label)
            return _json(self.store.require(resource, target.namespace, target.name))
        if method == "PUT":
            self.faults.count("update", label)
            body = await self._body(request)
            updated = self.registry.update(
                resource, target.namespace, target.name, body, target.subresource, dry_run
            )
            return _json(updated)
        if method == "PATCH":
            self.faults.count("patch", label)
            body = await self._body(request)
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            patched = self.registry.patch(
                resource,
                target.namespace,
                target.name,
                content_type,
                body,
                target.subresource,
                dry_run,
            )
            return _json(patched)
        if method == "DELETE" and not target.subresource:
            self.faults.count("delete", label)
            options = await self._delete_options(request)
            removed = self.registry.delete(
                resource, target.namespace, target.name, dry_run=dry_run, **options
            )
            return _json(removed)
        raise status.method_not_allowed()

    async def _body(self, request: web.Request) -> Any:
        raw = await request.read()
        if not raw:
            raise status.bad_request("the body of the request was in an unknown format")
        try:
            return json.loads(raw)
        except ValueError as error:
            raise status.bad_request(
                f"the body of the request was not valid JSON: {error}"
            ) from None

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body: Object = {}
        if raw:
            try:
                body = json.loads(raw) or {}
            except ValueError:
                raise status.bad_request("the body of the request was not valid JSON") from None
        grace = body.get("gracePeriodSeconds")
        if grace is None:
            grace = _int(request.query, "gracePeriodSeconds")
        policy = body.get("propagationPolicy") or request.query.get("propagationPolicy")
        orphan = body.get("orphanDependents")
        if orphan is None and "orphanDependents" in request.query:
            orphan = parse_bool("orphanDependents", request.query["orphanDependents"])
        if policy is None and orphan is not None:
            policy = "Orphan" if orphan else "Background"
        return {"grace": grace, "policy": policy, "preconditions": body.get("preconditions")}

    def _filters(self, request: web.Request, resource: ResourceType) -> Any:
        labels = selectors.parse_labels(request.query.get("labelSelector"))
        fields = selectors.parse_fields(request.query.get("fieldSelector"), resource.fields)

        def matches(obj: Object) -> bool:
            return selectors.labels_match(labels, obj) and fields(obj)

        return matches

    def _list(self, request: web.Request, target: Target) -> web.Response:
        resource = target.resource
        matches = self._filters(request, resource)
        items = [o for o in self.store.list(resource, target.namespace or None) if matches(o)]
        if resource.builtin:
            for item in items:
                item.pop("apiVersion", None)
                item.pop("kind", None)
        limit = _int(request.query, "limit")
        meta: Object = {"resourceVersion": str(self.store.revision)}
        if limit and len(items) > limit:
            start = int(request.query.get("continue") or 0)
            page = items[start : start + limit]
            if start + limit < len(items):
                meta["continue"] = str(start + limit)
                meta["remainingItemCount"] = len(items) - start - limit
            items = page
        elif request.query.get("continue"):
            items = items[int(request.query["continue"]) :]
        return _json(
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": meta,
                "items": items,
            }
        )

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        resource = target.resource
        matches = self._filters(request, resource)
        since_text = request.query.get("resourceVersion") or ""
        since = int(since_text) if since_text.isdigit() and since_text != "0" else None
        timeout = _int(request.query, "timeoutSeconds")
        bookmarks = parse_bool("allowWatchBookmarks", request.query.get("allowWatchBookmarks"))
        namespace = target.namespace or None
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            watcher = self.store.watch(resource, namespace, since)
        except ApiError as error:
            await response.prepare(request)
            await self._line(response, {"type": "ERROR", "object": error.body()})
            return response
        await response.prepare(request)
        try:
            if since is None:
                for obj in self.store.list(resource, namespace):
                    if matches(obj):
                        await self._line(response, {"type": "ADDED", "object": obj})
            await self._stream(response, watcher, matches, timeout, bookmarks, resource)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.store.unwatch(watcher)
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        watcher: Any,
        matches: Any,
        timeout: int | None,
        bookmarks: bool,
        resource: ResourceType,
    ) -> None:
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout if timeout else None
        next_bookmark = time.monotonic() + self.bookmark_seconds
        while not self.closing.is_set():
            wait = 1.0
            if ends is not None:
                wait = min(wait, ends - loop.time())
                if wait <= 0:
                    return
            try:
                event: Event | None = await asyncio.wait_for(watcher.queue.get(), wait)
            except TimeoutError:
                if bookmarks and time.monotonic() >= next_bookmark:
                    next_bookmark = time.monotonic() + self.bookmark_seconds
                    await self._line(response, self._bookmark(resource))
                continue
            if event is None:
                return
            kind = _filtered(event, matches)
            if kind is not None:
                await self._line(response, {"type": kind, "object": event.object})

    def _bookmark(self, resource: ResourceType) -> Object:
        return {
            "type": "BOOKMARK",
            "object": {
                "kind": resource.kind,
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.store.revision)},
            },
        }

    async def _line(self, response: web.StreamResponse, event: Object) -> None:
        await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")

    async def _delete_collection(self, request: web.Request, target: Target) -> web.Response:
        matches = self._filters(request, target.resource)
        options = await self._delete_options(request)
        removed = []
        for obj in self.store.list(target.resource, target.namespace or None):
            if matches(obj):
                meta = obj["metadata"]
                removed.append(
                    self.registry.delete(
                        target.resource, meta.get("namespace", ""), meta["name"], **options
                    )
                )
        resource = target.resource
        return _json(
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.api_version,
                "metadata": {"resourceVersion": str(self.store.revision)},
                "items": removed,
            }
        )

    async def _log(self, request: web.Request, target: Target) -> web.StreamResponse:
        pod = self.store.require(kinds.PODS, target.namespace, target.name)
        containers = [c["name"] for c in pod["spec"]["containers"]]
        name = request.query.get("container") or containers[0]
        if name not in containers:
            raise status.bad_request(f"container {name} is not valid for pod {target.name}")
        worker = self.kubelet.worker(target.namespace, target.name)
        if worker is None or worker.container_id is None:
            waiting = (pod["status"].get("containerStatuses") or [{}])[0].get("state", {})
            reason = (waiting.get("waiting") or {}).get("reason", "ContainerCreating")
            raise status.bad_request(
                f'container "{name}" in pod "{target.name}" is waiting to start: {reason}'
            )
        raw = await self.engine.logs(worker.container_id, _int(request.query, "tailLines"))
        tty = bool(pod["spec"]["containers"][0].get("tty"))
        return web.Response(body=raw if tty else demultiplex(raw), content_type="text/plain")


def _filtered(event: Event, matches: Any) -> str | None:
    """The event type a filtered watch reports: objects entering the selection are ADDED,
    leaving it DELETED (as the watch cache does for label and field selectors)."""
    if event.type == "ADDED":
        return "ADDED" if matches(event.object) else None
    if event.type == "DELETED":
        return "DELETED" if matches(event.previous or event.object) else None
    now, before = matches(event.object), event.previous is not None and matches(event.previous)
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None
