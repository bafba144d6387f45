"""``FakeKube``: the whole fake cluster, served from a thread with its own event loop.

This is the one object tests, benchmarks and the shell use. Starting it opens a Docker
engine client, seeds the namespaces a fresh cluster has (``default``, ``kube-system``,
``kube-public``, ``kube-node-lease``), starts the controllers (garbage collector,
kubelet, agent-sandbox) and serves HTTP on 127.0.0.1; it writes a kubeconfig (server
``http://127.0.0.1:PORT``, a bearer-token user) that kubernetes_asyncio loads as it
would any other. The server thread has its own loop, so the fake keeps answering while a
test's function-scoped loop comes and goes. Stopping it removes every container it
created, failed ones included (they are labelled ``stigmer.test-fake=kube`` and with
the instance id, and swept by label at the end).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import tempfile
import threading
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.agent_sandbox import AgentSandboxController
from tests.fakes.kube.deletion import Deleter
from tests.fakes.kube.engine import Engine
from tests.fakes.kube.exec import ExecHandler
from tests.fakes.kube.faults import Faults
from tests.fakes.kube.gc import GarbageCollector
from tests.fakes.kube.kubelet import Kubelet
from tests.fakes.kube.podspec import INSTANCE_LABEL
from tests.fakes.kube.registry import Registry
from tests.fakes.kube.rest import Rest
from tests.fakes.kube.store import Store

T = TypeVar("T")
SEED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


class FakeKube:
    def __init__(
        self,
        *,
        token: str | None = "stigmer-fake-token",
        user: str = "system:serviceaccount:stigmer:agent-runner",
        port: int = 0,
        network: str = "bridge",
        history: int = 5000,
        directory: Path | None = None,
        docker_host: str | None = None,
    ) -> None:
        self.token, self.user, self.port, self.network = token, user, port, network
        self.instance = secrets.token_hex(4)
        self.faults = Faults()
        self.faults._act = self._act
        self._history = history
        self._docker_host = docker_host
        self._own_directory = directory is None
        self.directory = directory or Path(tempfile.mkdtemp(prefix="kube-fake-"))
        self.kubeconfig = self.directory / "kubeconfig"
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._startup_error: BaseException | None = None

    # -- life ------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> FakeKube:
        self._thread = threading.Thread(target=self._main, name="kube-fake", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError("the fake Kubernetes API server did not start")
        if self._startup_error is not None:
            raise RuntimeError(
                "the fake Kubernetes API server failed to start"
            ) from self._startup_error
        return self

    def stop(self, timeout: float = 120) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._stopped is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
        self._thread.join(timeout)
        self._thread = None
        if self._own_directory:
            with contextlib.suppress(OSError):
                self.kubeconfig.unlink()
                self.directory.rmdir()

    def __enter__(self) -> FakeKube:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        try:
            await self._boot()
        except BaseException as error:
            self._startup_error = error
            self._ready.set()
            await self._teardown()
            return
        self._ready.set()
        await self._stopped.wait()
        await self._teardown()

    async def _boot(self) -> None:
        self.store = Store(self._history)
        self.deleter = Deleter(self.store)
        self.registry = Registry(self.store, self.deleter)
        self.engine = Engine(self._docker_host)
        await self.engine.open()
        self.gc = GarbageCollector(self.store, self.deleter)
        self.kubelet = Kubelet(
            self.store, self.deleter, self.engine, self.faults, self.instance, self.network
        )
        self.sandboxes = AgentSandboxController(self.store, self.registry)
        self.execs = ExecHandler(self.store, self.kubelet, self.engine, self.faults)
        self.rest = Rest(
            self.store, self.registry, self.kubelet, self.engine, self.execs, self.faults,
            self.token, self.user,
        )  # fmt: skip
        self.gc.start()
        self.kubelet.start()
        self.sandboxes.start()
        await asyncio.sleep(0)
        for name in SEED_NAMESPACES:
            self.registry.create(kinds.NAMESPACES, "", {"metadata": {"name": name}})
        self._runner = web.AppRunner(self.rest.app(), handle_signals=False, shutdown_timeout=1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.rest.address = f"127.0.0.1:{port}"
        self._write_kubeconfig()

    async def _teardown(self) -> None:
        rest = getattr(self, "rest", None)
        if rest is not None:
            rest.closing.set()
            self.execs.release_hung()
            self.execs.reset_all()
            self.store.close_watches()
        runner = getattr(self, "_runner", None)
        if runner is not None:
            with contextlib.suppress(Exception):
                await runner.cleanup()
        for controller in ("sandboxes", "gc"):
            if hasattr(self, controller):
                await getattr(self, controller).stop()
        if hasattr(self, "kubelet"):
            await self.kubelet.stop()
        if hasattr(self, "engine"):
            with contextlib.suppress(Exception):
                for leftover in await self.engine.containers(f"{INSTANCE_LABEL}={self.instance}"):
                    await self.engine.remove(leftover["Id"])
            await self.engine.close()

    def _write_kubeconfig(self) -> None:
        user: dict[str, Any] = {"token": self.token} if self.token else {}
        lines = [
            "apiVersion: v1",
            "kind: Config",
            "clusters:",
            "- name: stigmer-fake",
            "  cluster:",
            f"    server: {self.url}",
            "users:",
            "- name: stigmer-fake-user",
            "  user:" + ("" if user else " {}"),
            *([f"    token: {self.token}"] if self.token else []),
            "contexts:",
            "- name: stigmer-fake",
            "  context:",
            "    cluster: stigmer-fake",
            "    user: stigmer-fake-user",
            "    namespace: default",
            "current-context: stigmer-fake",
        ]
        self.kubeconfig.write_text("\n".join(lines) + "\n")

    # -- calls from other threads ----------------------------------------------------
    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coroutine`` on the server's loop and wait for its result."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def _act(self, action: str) -> Any:
        async def run() -> Any:
            if action == "reset_exec_streams":
                return self.execs.reset_all()
            raise ValueError(action)

        return self.call(run())

    def kill_pod_container(self, name: str, namespace: str = "default") -> None:
        """SIGKILL the pod's container, as an OOM killer or a node problem would."""
        self.call(self.kubelet.kill_container(namespace, name))

    def containers(self) -> list[dict[str, Any]]:
        """The Docker containers this fake owns now (the engine's summaries)."""

        async def listing() -> list[dict[str, Any]]:
            return await self.engine.containers(f"{INSTANCE_LABEL}={self.instance}")

        return self.call(listing())

    def container_of(self, name: str, namespace: str = "default") -> str | None:
        """The Docker container id behind a pod, once it has one."""

        async def lookup() -> str | None:
            worker = self.kubelet.worker(namespace, name)
            return worker.container_id if worker else None

        return self.call(lookup())

    def get(
        self, resource: kinds.ResourceType, name: str, namespace: str = "default"
    ) -> dict[str, Any] | None:
        """An object as stored, read without going through HTTP."""

        async def read() -> dict[str, Any] | None:
            return self.store.get(resource, namespace if resource.namespaced else "", name)

        return self.call(read())

    def compact(self) -> None:
        """Drop the watch history: any older resourceVersion now gets 410 Gone."""

        async def run() -> None:
            self.store.compact()

        self.call(run())
