"""The toolbox under ``toolboxProxyUrl``: ``/toolbox/{sandboxId}/...``, as the SDK builds it.

The SDK sends every toolbox call to ``<toolboxProxyUrl>/<sandboxId><path>``
(``daytona/internal/toolbox_api_client_proxy.py``), never to the API URL. On the way the
real proxy authenticates the bearer key, records activity (see :mod:`lifecycle`), and
the runner finds the container: none -> 404 "sandbox container not found", not running
-> 400 "no IP address found. Is the Sandbox started?" (``apps/runner/pkg/api/controllers/
proxy.go``). Past that, the daemon answers (:mod:`sessions`, :mod:`files`, :mod:`process`).

The daemon shapes some answers by the caller's ``X-Daytona-SDK-Version``: below 0.27.0 it
strips the stream markers (combined output); from 0.167.0 it also splits stdout and
stderr itself. SDK 0.226.1 gets the split form, in which ``output`` still carries the raw
``\\x01\\x01\\x01``/``\\x02\\x02\\x02`` markers.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.daytona import process
from tests.fakes.daytona.errors import SOURCE_PROXY, DaemonError, UpstreamGone
from tests.fakes.daytona.lifecycle import Lifecycle
from tests.fakes.daytona.models import State
from tests.fakes.daytona.runtime import Runtime
from tests.fakes.daytona.sandboxes import SandboxService
from tests.fakes.daytona.sessions import STDERR_MARK, STDOUT_MARK, demux, strip_marks
from tests.fakes.daytona.toolbox_files import FileRoutes

Handler = Callable[[web.Request, Runtime], Awaitable[web.StreamResponse]]
PREFIX = "/toolbox/{sandbox_id}"


def _version(text: str) -> tuple[int, ...]:
    core = text.split("-", 1)[0]
    try:
        return tuple(int(part) for part in core.split("."))
    except ValueError:
        return (1_000_000,)


def output_mode(request: web.Request) -> tuple[bool, bool]:
    """(combined output, skip the server-side demux) for this caller (``session/common.go``)."""
    sdk = request.headers.get("X-Daytona-SDK-Version", "")
    dev = "dev" in sdk
    combined = (bool(sdk) and not dev and _version(sdk) < (0, 27, 0)) or (
        not sdk and request.headers.get("X-Daytona-Split-Output") != "true"
    )
    skip_demux = not sdk or (not dev and _version(sdk) < (0, 167, 0))
    return combined, skip_demux


class _MarkFilter:
    """Strips stream markers from a byte stream cut at arbitrary points."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        keep = 0
        for size in (2, 1):
            tail = data[-size:]
            if len(data) >= size and (STDOUT_MARK.startswith(tail) or STDERR_MARK.startswith(tail)):
                keep = size
                break
        self._held = data[len(data) - keep :] if keep else b""
        return strip_marks(data[: len(data) - keep] if keep else data)

    def flush(self) -> bytes:
        held, self._held = self._held, b""
        return held


class Toolbox:
    """Routes of the toolbox proxy and daemon."""

    def __init__(self, service: SandboxService, lifecycle: Lifecycle) -> None:
        self.service = service
        self.lifecycle = lifecycle

    def routes(self) -> list[web.AbstractRouteDef]:
        file_routes = FileRoutes()
        table: list[tuple[str, str, Handler]] = [
            ("POST", "/process/execute", self.execute),
            ("GET", "/process/session", self.list_sessions),
            ("POST", "/process/session", self.create_session),
            ("GET", "/process/session/{session_id}", self.get_session),
            ("DELETE", "/process/session/{session_id}", self.delete_session),
            ("POST", "/process/session/{session_id}/exec", self.session_exec),
            ("GET", "/process/session/{session_id}/command/{command_id}", self.get_command),
            ("GET", "/process/session/{session_id}/command/{command_id}/logs", self.logs),
            ("POST", "/process/session/{session_id}/command/{command_id}/input", self.send_input),
            ("GET", "/files", file_routes.list_files),
            ("GET", "/files/", file_routes.list_files),
            ("DELETE", "/files", file_routes.delete_file),
            ("DELETE", "/files/", file_routes.delete_file),
            ("GET", "/files/info", file_routes.file_info),
            ("POST", "/files/folder", file_routes.create_folder),
            ("GET", "/files/download", file_routes.download_one),
            ("POST", "/files/bulk-download", file_routes.bulk_download),
            ("POST", "/files/bulk-upload", file_routes.bulk_upload),
            ("GET", "/user-home-dir", self.home_dir),
            ("GET", "/work-dir", self.work_dir),
            ("GET", "/version", self.version),
        ]
        return [
            web.route(method, PREFIX + path, self._wrap(handler)) for method, path, handler in table
        ]

    def _wrap(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def run(request: web.Request) -> web.StreamResponse:
            sandbox_id = request.match_info["sandbox_id"]
            record = self.service.records.get(sandbox_id)
            if record is None or record.state is State.DESTROYED:
                raise DaemonError(404, "sandbox not found", source=SOURCE_PROXY)
            async with self.lifecycle.open_request(record):
                if self.service.container(sandbox_id) is None:
                    raise DaemonError(404, "sandbox container not found", source=SOURCE_PROXY)
                runtime = self.service.runtime(sandbox_id)
                if runtime is None:
                    raise DaemonError(
                        400, "no IP address found. Is the Sandbox started?", source=SOURCE_PROXY
                    )
                return await handler(request, runtime)

        return run

    # -- process -------------------------------------------------------------------
    async def execute(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        body = await _json(request)
        result = await process.execute(
            runtime,
            str(body.get("command") or ""),
            cwd=body.get("cwd"),
            env=body.get("envs"),
            timeout=body.get("timeout"),
        )
        return web.json_response(result)

    # -- sessions ------------------------------------------------------------------
    async def create_session(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        body = await _json(request)
        session_id = body.get("sessionId")
        if not session_id:
            raise DaemonError(400, "sessionId is required", "INVALID_REQUEST_BODY")
        if session_id == "entrypoint":
            raise DaemonError(
                400, "provided session ID is reserved and cannot be created/overridden"
            )
        await runtime.guard(runtime.sessions.create(str(session_id)))
        return web.Response(status=201)

    @staticmethod
    def _session_dto(session: Any) -> dict[str, Any]:
        commands = []
        for command in session.commands.values():
            entry = {"id": command.id, "command": command.command}
            code = command.read_exit()
            if code is not None:
                entry["exitCode"] = code
            commands.append(entry)
        return {"sessionId": session.id, "commands": commands}

    async def list_sessions(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        return web.json_response([self._session_dto(s) for s in runtime.sessions.all()])

    async def get_session(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        session = runtime.sessions.get(request.match_info["session_id"])
        return web.json_response(self._session_dto(session))

    async def delete_session(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        await runtime.guard(runtime.sessions.delete(request.match_info["session_id"]))
        return web.Response(status=204)

    async def session_exec(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        session_id = request.match_info["session_id"]
        if session_id == "entrypoint":
            raise DaemonError(400, "can't execute command in entrypoint session")
        body = await _json(request)
        text = str(body.get("command") or "")
        if not text.strip():
            raise DaemonError(400, "command cannot be empty")
        run_async = bool(body.get("runAsync") or body.get("async"))
        session, command = await runtime.sessions.execute(
            session_id, text, run_async=run_async, suppress_echo=bool(body.get("suppressInputEcho"))
        )
        if run_async:
            return web.json_response(
                {
                    "cmdId": command.id,
                    "output": None,
                    "stdout": None,
                    "stderr": None,
                    "exitCode": None,
                },
                status=202,
            )

        def still_wanted() -> bool:
            return request.transport is not None and not request.transport.is_closing()

        code = await runtime.guard(runtime.sessions.wait(session, command, still_wanted))
        log = command.read_log()
        combined, skip_demux = output_mode(request)
        result: dict[str, Any] = {"cmdId": command.id, "exitCode": code}
        if combined:
            result.update(
                output=strip_marks(log).decode(errors="replace"), stdout=None, stderr=None
            )
        else:
            result["output"] = log.decode(errors="replace")
            if skip_demux:
                result.update(stdout=None, stderr=None)
            else:
                out, err = demux(log)
                result.update(
                    stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace")
                )
        return web.json_response(result)

    async def get_command(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        _, command = runtime.sessions.command(
            request.match_info["session_id"], request.match_info["command_id"]
        )
        body: dict[str, Any] = {"id": command.id, "command": command.command}
        code = command.read_exit()
        if code is not None:
            body["exitCode"] = code
        return web.json_response(body)

    async def logs(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        session, command = runtime.sessions.command(
            request.match_info["session_id"], request.match_info["command_id"]
        )
        combined, skip_demux = output_mode(request)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._stream_logs(request, runtime, session, command, combined)
        log = command.read_log()
        if combined:
            return web.Response(body=strip_marks(log), content_type="text/plain")
        if skip_demux:
            return web.Response(body=log, content_type="text/plain")
        out, err = demux(log)
        return web.json_response(
            {
                "output": log.decode(errors="replace"),
                "stdout": out.decode(errors="replace"),
                "stderr": err.decode(errors="replace"),
            }
        )

    async def _stream_logs(
        self, request: web.Request, runtime: Runtime, session: Any, command: Any, combined: bool
    ) -> web.StreamResponse:
        follow = request.query.get("follow") == "true"
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        marks = _MarkFilter()

        async def pump() -> None:
            if follow:
                async for chunk in runtime.sessions.follow(session, command):
                    data = marks.feed(chunk) if combined else chunk
                    if data:
                        await ws.send_bytes(data)
            else:
                log = command.read_log()
                if log:
                    await ws.send_bytes(strip_marks(log) if combined else log)
            rest = marks.flush()
            if rest:
                await ws.send_bytes(rest)

        async def client_left() -> None:
            async for message in ws:
                if message.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break

        try:
            await runtime.guard(_first(pump(), client_left()))
        except UpstreamGone:
            if request.transport is not None:
                request.transport.abort()
            return ws
        await ws.close(code=1000)
        return ws

    async def send_input(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        session_id = request.match_info["session_id"]
        if session_id == "entrypoint":
            raise DaemonError(400, "can't send input to entrypoint session")
        body = await _json(request)
        if "data" not in body:
            raise DaemonError(400, "data is required", "INVALID_REQUEST_BODY")
        await runtime.sessions.send_input(
            session_id, request.match_info["command_id"], str(body["data"])
        )
        return web.Response(status=204)

    # -- info ----------------------------------------------------------------------
    async def home_dir(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        return web.json_response({"dir": runtime.identity.home})

    async def work_dir(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        return web.json_response({"dir": runtime.identity.workdir})

    async def version(self, request: web.Request, runtime: Runtime) -> web.StreamResponse:
        return web.json_response({"version": "0.0.0-emulator"})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, json.JSONDecodeError):
        raise DaemonError(400, "invalid request body", "INVALID_REQUEST_BODY") from None
    if not isinstance(body, dict):
        raise DaemonError(400, "invalid request body", "INVALID_REQUEST_BODY")
    return body


async def _first(*work: Awaitable[None]) -> None:
    """Run until the first of ``work`` ends; cancel the rest."""
    import asyncio

    tasks = [asyncio.ensure_future(w) for w in work]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            task.result()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
