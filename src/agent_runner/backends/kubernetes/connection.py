"""A session's executor in its pod, reached over one ``pods/exec`` stream.

The exec runs a launcher (``sh``: is there bash, is there python3) and then a tiny
bootstrap that reads exactly the executor's source from stdin with ``os.read`` and runs
it, so the source never goes in a URL and nothing the runner sends next is lost in a
Python buffer: the executor reads its requests from the same descriptor. From then on the
stream carries the same framed protocol as Docker's attach stream.

Remote streams die quietly (kubelets cut idle ones, load balancers reset them), so once a
session is set up the connection sends the executor ``hello`` with a heartbeat: the
executor then beats every ``heartbeat`` seconds and exits after three silent ones; the
runner pings as often and counts a stream silent for three beats as dead. The executor is
started with a record file (``RECORD_FILE``) where it keeps the session's cwd and
variables, so a later connection to the same pod takes them over.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes_asyncio.client.exceptions import ApiException

from agent_runner.backends import executor
from agent_runner.backends.channel import ExecutorChannel
from agent_runner.backends.kubernetes.cluster import RBAC_HINT, Cluster
from agent_runner.backends.kubernetes.manifests import WORKSPACE
from agent_runner.backends.kubernetes.sandbox import SandboxPod
from agent_runner.backends.kubernetes.stream import PROTOCOLS, V4, ExecStream
from agent_runner.errors import SandboxUnavailable

EXECUTOR_SOURCE = Path(executor.__file__).read_bytes()
STATE_FILE = "/tmp/.stigmer-executor-state"
RECORD_FILE = "/tmp/.stigmer-executor-record"
BYE = b'{"op": "bye"}\n'
MISSED_BEATS = executor.MISSED_HEARTBEATS
NO_BASH = b"stigmer-launcher: no bash"
NO_PYTHON = b"stigmer-launcher: no python3"
BOOTSTRAP = (
    "import os,sys\n"
    "n=int(sys.argv[1]);b=bytearray()\n"
    "while len(b)<n:\n"
    " c=os.read(0,n-len(b))\n"
    " if not c:sys.exit('stigmer-bootstrap: stdin closed before the executor came')\n"
    " b+=c\n"
    "sys.argv=['stigmer-executor']+sys.argv[2:]\n"
    "exec(compile(bytes(b),'stigmer-executor','exec'),{'__name__':'__main__'})\n"
)
"""Reads ``argv[1]`` bytes of source from fd 0, unbuffered, then runs it as ``__main__``."""
LAUNCHER = (
    f"cd {WORKSPACE} 2>/dev/null; "
    f"command -v bash >/dev/null 2>&1 || {{ echo '{NO_BASH.decode()}'; exit 127; }}; "
    f"command -v python3 >/dev/null 2>&1 || {{ echo '{NO_PYTHON.decode()}'; exit 127; }}; "
    'exec python3 -I -S -c "$@"'
)
"""Starts in the workspace (the pod sets no workingDir: some runtimes would chmod the
emptyDir to 0755 for it, and the sandbox user could no longer write there)."""


def exec_command() -> list[str]:
    return [
        "/bin/sh",
        "-c",
        LAUNCHER,
        "stigmer-launcher",
        BOOTSTRAP,
        str(len(EXECUTOR_SOURCE)),
        STATE_FILE,
        RECORD_FILE,
    ]


class Connection:
    """One exec stream to one pod's executor; its owner closes it (:meth:`aclose`)."""

    def __init__(self, pod: SandboxPod, stream: ExecStream, channel: ExecutorChannel) -> None:
        self.pod = pod
        self.stream = stream
        self.channel = channel
        self._beating: asyncio.Task[None] | None = None

    @property
    def lost(self) -> bool:
        return self.channel.lost is not None

    @property
    def protocol(self) -> str:
        return self.stream.protocol

    def start_heartbeat(self, interval: float) -> None:
        """Ask the executor to beat every ``interval`` s, and ping it as often."""
        if self._beating is None and not self.lost:
            self.channel.post({"op": "hello", "heartbeat": interval})
            self._beating = asyncio.ensure_future(self._beat(interval))

    async def _beat(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        while not self.lost:
            await asyncio.sleep(interval)
            silent = loop.time() - self.stream.last_received
            if silent > MISSED_BEATS * interval:
                self.stream.abort(
                    TimeoutError(
                        f"no heartbeat from the executor in pod {self.pod.name} for {silent:.0f} s"
                    )
                )
                return
            self.channel.post({"op": "ping"})

    def close(self) -> None:
        """Hang up now, without waiting (the executor kills what runs and exits)."""
        if self._beating is not None:
            self._beating.cancel()
        self.channel.close()

    async def aclose(self) -> None:
        self.close()
        if self._beating is not None:
            await asyncio.gather(self._beating, return_exceptions=True)
        await self.stream.aclose()


async def connect(cluster: Cluster, pod: SandboxPod, *, timeout: float) -> Connection:
    """Open the exec, send the executor in, and wait for its hello (all within ``timeout``
    each); the connection is closed again if anything fails or the caller is cancelled."""
    channel = ExecutorChannel()
    ws = await _handshake(cluster, pod, timeout)
    protocol = _chosen_protocol(ws)
    stream = ExecStream(ws, protocol, channel, goodbye=BYE, name=f"pod {pod.name}")
    channel.attach(stream)
    connection = Connection(pod, stream, channel)
    try:
        await channel.write(EXECUTOR_SOURCE)
        await _hello(connection, timeout)
    except BaseException:
        await connection.aclose()
        raise
    return connection


async def _handshake(cluster: Cluster, pod: SandboxPod, timeout: float) -> Any:
    where = f"pod {cluster.namespace}/{pod.name}"
    try:
        async with asyncio.timeout(timeout):
            context = await cluster.streams.connect_get_namespaced_pod_exec(
                pod.name,
                cluster.namespace,
                container=pod.container,
                command=exec_command(),
                stdin=True,
                stdout=True,
                stderr=True,
                tty=False,
                _preload_content=False,
                _headers={"sec-websocket-protocol": PROTOCOLS},
            )
            return await context
    except TimeoutError:
        raise SandboxUnavailable(
            f"the exec stream to {where} did not open within {timeout:g} s (the connection "
            "was accepted but the websocket upgrade never answered: a proxy or load balancer "
            "in front of the apiserver?)"
        ) from None
    except aiohttp.WSServerHandshakeError as error:
        raise _refused(error, where, cluster.namespace) from None
    except (aiohttp.ClientError, OSError, ApiException) as error:
        raise SandboxUnavailable(f"cannot open an exec stream to {where}: {error}") from None


def _refused(
    error: aiohttp.WSServerHandshakeError, where: str, namespace: str
) -> SandboxUnavailable:
    if error.status == 403:
        return SandboxUnavailable(
            f"not allowed to exec into {where}: the runner needs the RBAC verbs create and get "
            f'on "pods/exec" in namespace {namespace} (websocket exec checks create since '
            f"Kubernetes 1.35, get before); {RBAC_HINT}"
        )
    if error.status == 404:
        return SandboxUnavailable(f"{where} is gone (404 on its exec)")
    return SandboxUnavailable(
        f"the apiserver refused the exec into {where}: {error.status} {error.message} "
        "(is the pod running?)"
    )


def _chosen_protocol(ws: Any) -> str:
    """The subprotocol the server chose (aiohttp leaves ``ws.protocol`` empty when the
    client offered its protocols through a header, as kubernetes_asyncio does)."""
    response = getattr(ws, "_response", None)
    headers = getattr(response, "headers", None) or {}
    return str(headers.get("Sec-WebSocket-Protocol") or ws.protocol or V4)


async def _hello(connection: Connection, timeout: float) -> None:
    channel, name = connection.channel, connection.pod.name
    try:
        async with asyncio.timeout(timeout):
            opening = await channel.opening()
    except (EOFError, TimeoutError):
        status = connection.stream.status or {}
        detail = status.get("message") or channel.last_diagnostic() or "no output"
        raise SandboxUnavailable(f"the executor did not start in pod {name}: {detail}") from None
    if opening == NO_BASH:
        raise SandboxUnavailable(f"the image of pod {name} has no bash; sandbox images need bash")
    if opening == NO_PYTHON:
        raise SandboxUnavailable(
            f"the image of pod {name} has no python3, which the Kubernetes backend needs to "
            "run its executor; use an image with python3"
        )
    if opening != executor.HELLO:
        line = opening.decode(errors="replace")
        raise SandboxUnavailable(f"the executor did not start in pod {name}: {line}")
    version = (channel.hello or {}).get("version")
    if version != executor.PROTOCOL_VERSION:
        raise SandboxUnavailable(
            f"the executor in pod {name} speaks protocol {version}, this runner "
            f"{executor.PROTOCOL_VERSION}"
        )


async def close_quietly(connection: Connection | None) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            await connection.aclose()
