"""``pods/exec`` over a websocket, speaking the remotecommand channel protocols.

Mirrors the apiserver's exec path (pkg/registry/core/pod/strategy.go ``streamLocation``
for the 400s; the StreamTranslatorHandler for v5) and the kubelet's websocket streams
(pkg/kubelet/cri/streaming/remotecommand/websocket.go, apimachinery's wsstream):

- subprotocol: the first one *in the client's order* that the server supports
  (``v5.channel.k8s.io`` unless the fake is ``v4only``, ``v4.channel.k8s.io``,
  ``v4.base64.channel.k8s.io``, ``channel.k8s.io``, ``base64.channel.k8s.io``; none
  offered means plain ``channel.k8s.io``); offering only unknown ones is a 403;
- every message starts with its channel byte (0 stdin, 1 stdout, 2 stderr, 3 error,
  4 resize); the base64 protocols send text frames whose first character is the channel
  digit; an empty message on the lowest output channel announces the stream is open;
- v5 only: ``[255, channel]`` closes that channel, and closing 0 closes the process's
  stdin (a half-close on the engine's hijacked connection);
- at the end the error channel carries the ``Status`` JSON (v4 and v5): ``Success``, or
  ``Failure`` with ``reason: NonZeroExitCode`` and ``details.causes[{reason: ExitCode,
  message: "N"}]``; then the socket closes. Older protocols get only an error text;
- query booleans are parsed as Go's ``strconv.ParseBool`` (``True`` from
  kubernetes_asyncio, ``1``, ``t``, ...); a container that is not running is the kubelet's
  ``container not found ("main")``: an HTTP 500 before the upgrade, or, for v5 (which the
  apiserver translates to SPDY towards the kubelet), an InternalError status after it;
- output is sent as it comes, at most 32 KiB a message, each send awaited, and stdin is
  written to the process before the next message is read: back-pressure both ways.

When the client goes away first, the exec'd process is killed (containerd cancels the
exec with the stream's context); the engine's host pid is used for that.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.kube import resources as kinds
from tests.fakes.kube import status
from tests.fakes.kube.engine import Engine, EngineError, ExecStream
from tests.fakes.kube.faults import Faults
from tests.fakes.kube.kubelet import Kubelet
from tests.fakes.kube.store import Store

V5 = "v5.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V4_BASE64 = "v4.base64.channel.k8s.io"
V1 = "channel.k8s.io"
V1_BASE64 = "base64.channel.k8s.io"
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def parse_bool(name: str, value: str | None) -> bool:
    """Go's strconv.ParseBool, which is what the apiserver decodes query booleans with."""
    if value is None or value == "":
        return False
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise status.bad_request(f'strconv.ParseBool: parsing "{value}": invalid syntax')


def choose_protocol(offered: list[str], v4only: bool) -> str | None:
    supported = [V4, V4_BASE64, V1, V1_BASE64] if v4only else [V5, V4, V4_BASE64, V1, V1_BASE64]
    if not offered:
        return ""
    return next((p for p in offered if p in supported), None)


@dataclass(eq=False)
class Session:
    """One open exec: the websocket, the engine stream, and when traffic last moved."""

    ws: web.WebSocketResponse
    request: web.Request
    last_traffic: float = field(default_factory=time.monotonic)

    def touch(self) -> None:
        self.last_traffic = time.monotonic()

    def reset(self) -> None:
        transport = self.request.transport
        if transport is not None:
            transport.abort()


class ExecHandler:
    def __init__(self, store: Store, kubelet: Kubelet, engine: Engine, faults: Faults) -> None:
        self.store, self.kubelet, self.engine, self.faults = store, kubelet, engine, faults
        self.sessions: set[Session] = set()
        self.hung: set[asyncio.Event] = set()

    def reset_all(self) -> int:
        sessions = list(self.sessions)
        for session in sessions:
            session.reset()
        return len(sessions)

    def release_hung(self) -> None:
        for event in list(self.hung):
            event.set()

    async def handle(
        self, request: web.Request, namespace: str, name: str, user: str
    ) -> web.StreamResponse:
        query = request.query
        if self.faults.exec_forbidden:
            raise status.forbidden(
                "",
                "pods",
                name,
                f'User "{user}" cannot create resource "pods/exec" in API group "" in the namespace "{namespace}"',
            )
        if self.faults.exec_handshake_hangs:
            await self._hang(request)
            return web.Response(status=504)
        command = query.getall("command", [])
        flags = {k: parse_bool(k, query.get(k)) for k in ("stdin", "stdout", "stderr", "tty")}
        pod = self.store.require(kinds.PODS, namespace, name)
        container = self._container(pod, query.get("container", ""))
        if not (pod.get("spec") or {}).get("nodeName"):
            raise status.bad_request(f"pod {name} does not have a host assigned")
        if not command:
            raise status.bad_request("you must specify at least 1 command")
        if not (flags["stdin"] or flags["stdout"] or flags["stderr"]):
            raise status.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        if request.headers.get("Upgrade", "").lower() != "websocket":
            raise status.bad_request("Upgrade request required")
        offered = [
            p.strip()
            for header in request.headers.getall("Sec-WebSocket-Protocol", [])
            for p in header.split(",")
            if p.strip()
        ]
        protocol = choose_protocol(offered, self.faults.v4only)
        if protocol is None:
            return web.Response(status=403)
        worker = self.kubelet.worker(namespace, name)
        running = worker is not None and worker.running and worker.container_id
        not_found = f'container not found ("{container}")'
        if not running and protocol != V5:
            return web.Response(status=500, text=not_found)
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), autoping=True)
        await ws.prepare(request)
        session = Session(ws, request)
        self.sessions.add(session)
        try:
            if not running:
                failure = status.internal(
                    f"error upgrading connection: unable to upgrade connection: {not_found}"
                )
                await self._status(ws, protocol, _bare(failure.body()))
                return ws
            assert worker is not None
            assert worker.container_id is not None
            await self._run(session, protocol, worker.container_id, command, flags)
        except (ConnectionError, RuntimeError):
            pass
        finally:
            self.sessions.discard(session)
            if not ws.closed:
                with contextlib.suppress(Exception):
                    await ws.close()
        return ws

    def _container(self, pod: dict[str, Any], wanted: str) -> str:
        containers = [c["name"] for c in (pod.get("spec") or {}).get("containers") or []]
        name = pod["metadata"]["name"]
        if not wanted:
            if len(containers) == 1:
                return containers[0]
            raise status.bad_request(
                f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
            )
        if wanted not in containers:
            raise status.bad_request(f"container {wanted} is not valid for pod {name}")
        return wanted

    async def _hang(self, request: web.Request) -> None:
        """Hold the connection, answering nothing, until the client or the server gives up."""
        released = asyncio.Event()
        self.hung.add(released)
        try:
            while not released.is_set():
                transport = request.transport
                if transport is None or transport.is_closing():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(released.wait(), 0.2)
        finally:
            self.hung.discard(released)

    async def _send(self, session: Session, protocol: str, channel: int, data: bytes) -> None:
        session.touch()
        if protocol in (V4_BASE64, V1_BASE64):
            await session.ws.send_str(chr(ord("0") + channel) + base64.b64encode(data).decode())
        else:
            await session.ws.send_bytes(bytes([channel]) + data)

    async def _status(self, ws: web.WebSocketResponse, protocol: str, body: dict[str, Any]) -> None:
        if protocol in (V5, V4, V4_BASE64):
            payload = json.dumps(body, separators=(",", ":")).encode()
        elif body.get("status") == "Success":
            return
        else:
            payload = str(body.get("message", "")).encode()
        if protocol in (V4_BASE64, V1_BASE64):
            await ws.send_str(chr(ord("0") + ERROR) + base64.b64encode(payload).decode())
        else:
            await ws.send_bytes(bytes([ERROR]) + payload)

    async def _run(
        self,
        session: Session,
        protocol: str,
        container_id: str,
        command: list[str],
        flags: dict[str, bool],
    ) -> None:
        first = STDOUT if flags["stdout"] else STDERR if flags["stderr"] else ERROR
        await self._send(session, protocol, first, b"")
        exec_id = await self.engine.exec_create(container_id, command, flags["stdin"], flags["tty"])
        stream = await self.engine.exec_start(exec_id, flags["tty"])
        pump_in = asyncio.create_task(self._stdin(session, protocol, stream, exec_id, flags))
        idle = asyncio.create_task(self._idle(session))
        try:
            output = asyncio.create_task(self._stdout(session, protocol, stream, flags))
            done, _ = await asyncio.wait(
                [output, pump_in, idle], return_when=asyncio.FIRST_COMPLETED
            )
            if output not in done:  # the client left or the idle timeout hit
                await self._kill(exec_id)
                output.cancel()
                if idle in done and not session.ws.closed:
                    await session.ws.close()
                return
            info = await self._finished(exec_id)
            await self._status(session.ws, protocol, _exit_status(info, command))
            await session.ws.close()
        finally:
            for task in (pump_in, idle):
                task.cancel()
            stream.close()

    async def _stdout(
        self, session: Session, protocol: str, stream: ExecStream, flags: dict[str, bool]
    ) -> None:
        while (piece := await stream.read()) is not None:
            channel, data = piece
            if not flags["stdout" if channel == STDOUT else "stderr"]:
                continue
            for offset in range(0, len(data), 32 * 1024):
                await self._send(session, protocol, channel, data[offset : offset + 32 * 1024])

    async def _stdin(
        self,
        session: Session,
        protocol: str,
        stream: ExecStream,
        exec_id: str,
        flags: dict[str, bool],
    ) -> None:
        async for message in session.ws:
            session.touch()
            if message.type == WSMsgType.BINARY:
                data: bytes = message.data
            elif message.type == WSMsgType.TEXT and protocol in (V4_BASE64, V1_BASE64):
                text: str = message.data
                if not text:
                    continue
                data = bytes([ord(text[0]) - ord("0")]) + base64.b64decode(text[1:])
            else:
                continue
            if not data:
                continue
            if protocol == V5 and data[0] == CLOSE:
                if len(data) == 2 and data[1] == STDIN:
                    stream.close_stdin()
                continue
            if data[0] == STDIN and flags["stdin"] and len(data) > 1:
                await stream.write(data[1:])
            elif data[0] == RESIZE:
                with contextlib.suppress(ValueError, EngineError, KeyError):
                    size = json.loads(data[1:])
                    await self.engine.exec_resize(exec_id, int(size["Width"]), int(size["Height"]))

    async def _idle(self, session: Session) -> None:
        while True:
            limit = self.faults.exec_idle_timeout
            if limit is not None and time.monotonic() - session.last_traffic >= limit:
                return
            await asyncio.sleep(0.05 if limit is None else min(limit / 4, 0.25))

    async def _finished(self, exec_id: str) -> dict[str, Any]:
        """The exec's record once the engine has seen the process exit."""
        for _ in range(100):
            info = await self.engine.exec_inspect(exec_id)
            if not info.get("Running"):
                return info
            await asyncio.sleep(0.05)
        return info

    async def _kill(self, exec_id: str) -> None:
        with contextlib.suppress(EngineError, OSError):
            info = await self.engine.exec_inspect(exec_id)
            if info.get("Running") and info.get("Pid"):
                os.kill(int(info["Pid"]), signal.SIGKILL)


def _exit_status(info: dict[str, Any], command: list[str]) -> dict[str, Any]:
    code = info.get("ExitCode")
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    if code is None:
        return _bare(status.internal("error executing command in container: no exit code").body())
    return {
        "metadata": {},
        "status": "Failure",
        "message": (
            f"command terminated with non-zero exit code: error executing command "
            f"[{' '.join(command)}], exit code {code}"
        ),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def _bare(body: dict[str, Any]) -> dict[str, Any]:
    """A Status as the kubelet writes it on the error channel: no kind, no apiVersion."""
    return {k: v for k, v in body.items() if k not in ("kind", "apiVersion")}
