"""The REST API under ``/api``: exactly the calls SDK 0.226.1 makes.

``AsyncDaytona`` (``daytona/_async/daytona.py``, ``_async/sandbox.py``,
``_async/snapshot.py``) reaches these operations of the generated ``SandboxApi``,
``SnapshotsApi`` and ``ConfigApi``; the paths and status codes are the real controller's
(``apps/api/src/sandbox/controllers/sandbox.controller.ts``: ``@HttpCode(200)`` where it
has one, NestJS's 201 for the other POSTs). Everything needs ``Authorization: Bearer``
except ``GET /api/config``.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.daytona.config import SnapshotSpec
from tests.fakes.daytona.errors import ApiError
from tests.fakes.daytona.lifecycle import Lifecycle
from tests.fakes.daytona.models import State
from tests.fakes.daytona.sandboxes import SandboxService

_BUILDING = (State.PENDING_BUILD, State.BUILDING_SNAPSHOT)
_SNAPSHOT_NAMESPACE = uuid.UUID("5a7d1c2e-3f4b-4c6d-8e9f-0a1b2c3d4e5f")
_STARTED_AT = datetime.now(UTC).isoformat().replace("+00:00", "Z")


def snapshot_id(name: str) -> str:
    return str(uuid.uuid5(_SNAPSHOT_NAMESPACE, name))


class RestApi:
    """Routes of the API; state lives in the :class:`SandboxService`."""

    def __init__(self, service: SandboxService, lifecycle: Lifecycle, api_url: Any) -> None:
        self.service = service
        self.lifecycle = lifecycle
        self._api_url = api_url

    def routes(self) -> list[web.AbstractRouteDef]:
        s = "/api/sandbox/{sandboxIdOrName}"
        return [
            web.get("/api/config", self.config),
            web.get("/api/sandbox", self.list_sandboxes),
            web.post("/api/sandbox", self.create),
            web.get(s, self.get),
            web.delete(s, self.delete),
            web.post(s + "/start", self.start),
            web.post(s + "/stop", self.stop),
            web.post(s + "/archive", self.archive),
            web.post(s + "/recover", self.recover),
            web.put(s + "/labels", self.labels),
            web.post(s + "/autostop/{interval}", self.interval),
            web.post(s + "/autoarchive/{interval}", self.interval),
            web.post(s + "/autodelete/{interval}", self.interval),
            web.post(s + "/public/{isPublic}", self.public),
            web.post(s + "/last-activity", self.last_activity),
            web.get(s + "/toolbox-proxy-url", self.toolbox_proxy_url),
            web.get(s + "/build-logs-url", self.build_logs_url),
            web.get(s + "/build-logs", self.build_logs),
            web.get("/api/snapshots", self.list_snapshots),
            web.get("/api/snapshots/{id}", self.get_snapshot),
        ]

    def _dto(self, record: Any) -> web.Response:
        return web.json_response(self.service.dto(record))

    # -- sandboxes -----------------------------------------------------------------
    async def config(self, request: web.Request) -> web.Response:
        toolbox = self.service.toolbox_url()
        return web.json_response(
            {
                "version": "0.190.0-emulator",
                "oidc": {
                    "issuer": "https://auth.invalid",
                    "clientId": "emulator",
                    "audience": "emulator",
                    "provider": "emulator",
                },
                "linkedAccountsEnabled": False,
                "announcements": {},
                "proxyTemplateUrl": toolbox.replace("/toolbox", "/{{PORT}}-{{sandboxId}}"),
                "proxyToolboxUrl": toolbox,
                "defaultSnapshot": self.service.config.default_snapshot_name() or "",
                "dashboardUrl": "https://app.daytona.io/dashboard",
                "maxAutoArchiveInterval": 43200,
                "maintananceMode": False,
                "environment": "emulator",
            }
        )

    async def list_sandboxes(self, request: web.Request) -> web.Response:
        query = {k: v for k, v in request.query.items() if k != "states"}
        states = request.query.getall("states", [])
        return web.json_response(self.service.list(query, list(states)))

    async def create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Invalid JSON body") from None
        return self._dto(await self.service.create(body or {}))

    async def get(self, request: web.Request) -> web.Response:
        return self._dto(self.service.find(request.match_info["sandboxIdOrName"]))

    async def delete(self, request: web.Request) -> web.Response:
        return self._dto(await self.service.delete(request.match_info["sandboxIdOrName"]))

    async def start(self, request: web.Request) -> web.Response:
        return self._dto(await self.service.start(request.match_info["sandboxIdOrName"]))

    async def stop(self, request: web.Request) -> web.Response:
        force = request.query.get("force") == "true"
        return self._dto(
            await self.service.stop(request.match_info["sandboxIdOrName"], force=force)
        )

    async def archive(self, request: web.Request) -> web.Response:
        return self._dto(await self.service.archive(request.match_info["sandboxIdOrName"]))

    async def recover(self, request: web.Request) -> web.Response:
        return self._dto(await self.service.recover(request.match_info["sandboxIdOrName"]))

    async def labels(self, request: web.Request) -> web.Response:
        body = await request.json()
        labels = body.get("labels") if isinstance(body, dict) else None
        if not isinstance(labels, dict):
            raise ApiError(400, "labels must be an object")
        return web.json_response(
            {"labels": self.service.replace_labels(request.match_info["sandboxIdOrName"], labels)}
        )

    async def interval(self, request: web.Request) -> web.Response:
        kind = request.path.rstrip("/").split("/")[-2]
        try:
            value = int(request.match_info["interval"])
        except ValueError:
            raise ApiError(400, "Validation failed (numeric string is expected)") from None
        record = self.service.set_interval(request.match_info["sandboxIdOrName"], kind, value)
        return web.json_response(self.service.dto(record), status=201)

    async def public(self, request: web.Request) -> web.Response:
        value = request.match_info["isPublic"] == "true"
        record = self.service.set_public(request.match_info["sandboxIdOrName"], value)
        return web.json_response(self.service.dto(record), status=201)

    async def last_activity(self, request: web.Request) -> web.Response:
        self.lifecycle.api_activity(self.service.find(request.match_info["sandboxIdOrName"]))
        return web.Response(status=201)

    async def toolbox_proxy_url(self, request: web.Request) -> web.Response:
        self.service.find(request.match_info["sandboxIdOrName"])
        return web.json_response({"url": self.service.toolbox_url()})

    async def build_logs_url(self, request: web.Request) -> web.Response:
        record = self.service.find(request.match_info["sandboxIdOrName"])
        return web.json_response({"url": f"{self._api_url()}/sandbox/{record.id}/build-logs"})

    async def build_logs(self, request: web.Request) -> web.StreamResponse:
        record = self.service.find(request.match_info["sandboxIdOrName"])
        follow = request.query.get("follow") == "true"
        response = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8"})
        await response.prepare(request)
        sent = 0
        while True:
            lines = self.service.build_logs.get(record.id, [])
            for line in lines[sent:]:
                await response.write(line.encode())
            sent = len(lines)
            if not follow or record.state not in (*_BUILDING, State.UNKNOWN):
                break
            await asyncio.sleep(0.2)
        await response.write_eof()
        return response

    # -- snapshots -----------------------------------------------------------------
    def _snapshot(self, spec: SnapshotSpec) -> dict[str, Any]:
        return {
            "id": snapshot_id(spec.name),
            "organizationId": self.service.config.organization_id,
            "general": False,
            "name": spec.name,
            "imageName": spec.image,
            "state": "active",
            "size": None,
            "entrypoint": None,
            "cpu": spec.cpu,
            "gpu": 0,
            "mem": spec.memory,
            "disk": spec.disk,
            "errorReason": None,
            "createdAt": _STARTED_AT,
            "updatedAt": _STARTED_AT,
            "lastUsedAt": None,
            "regionIds": [self.service.config.target],
            "ref": spec.image,
            "sourceSandboxId": None,
            "sandboxClass": "container",
        }

    async def list_snapshots(self, request: web.Request) -> web.Response:
        specs = sorted(self.service.snapshots.values(), key=lambda spec: spec.name)
        try:
            page = int(request.query.get("page", "1"))
            limit = int(request.query.get("limit", "100"))
        except ValueError:
            raise ApiError(400, "page and limit must be integers") from None
        if page < 1 or limit < 1:
            raise ApiError(400, "page and limit must be positive")
        chunk = specs[(page - 1) * limit : page * limit]
        return web.json_response(
            {
                "items": [self._snapshot(spec) for spec in chunk],
                "total": len(specs),
                "page": page,
                "totalPages": max(1, -(-len(specs) // limit)),
            }
        )

    async def get_snapshot(self, request: web.Request) -> web.Response:
        key = request.match_info["id"]
        for spec in self.service.snapshots.values():
            if key in (spec.name, snapshot_id(spec.name)):
                return web.json_response(self._snapshot(spec))
        raise ApiError(404, f"Snapshot with ID or name {key} not found")
