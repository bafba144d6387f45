"""The notification gateway: Socket.IO at ``/api/socket.io/``, as the SDK expects it.

``AsyncDaytona()`` opens a Socket.IO connection (websocket transport only) with
``auth={"token": <api key>}`` and waits for ``sandbox.state.updated`` /
``sandbox.created`` events instead of polling (``daytona/internal/event_dispatcher.py``);
without the gateway every wait would fall back to one ``GET /sandbox/{id}`` per second.
The real gateway (``apps/api/src/notification/gateways/notification.gateway.ts``) checks
the token, joins the socket to its organization's room and emits each event to that room:
``sandbox.state.updated`` carries ``{sandbox, oldState, newState}``.
"""

from __future__ import annotations

from typing import Any

import socketio
from aiohttp import web

from tests.fakes.daytona.config import EmulatorConfig

SOCKET_PATH = "/api/socket.io/"


class Gateway:
    """Socket.IO server attached to the emulator's aiohttp app."""

    def __init__(self, config: EmulatorConfig) -> None:
        self._config = config
        self.server = socketio.AsyncServer(
            async_mode="aiohttp", cors_allowed_origins="*", transports=["websocket"]
        )
        self.server.on("connect", self._connect)

    def attach(self, app: web.Application) -> None:
        self.server.attach(app, socketio_path=SOCKET_PATH.strip("/"))

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if token != self._config.api_key:
            raise socketio.exceptions.ConnectionRefusedError("Unauthorized")
        await self.server.enter_room(sid, self._config.organization_id)

    async def publish(self, event: str, payload: dict[str, Any], organization_id: str) -> None:
        await self.server.emit(event, payload, room=organization_id)
