"""SANDBOX on Kubernetes: one restricted pod per session, its executor over one exec stream.

This module answers *where*: which pod a session gets (a new one, a warm one from our
pool, or one claimed from an agent-sandbox warm pool: :mod:`.pod_pool`, :mod:`.claims`),
how its executor is reached (:mod:`.connection`), what the session is set up with (its
variables through the executor, never in the manifest; its workspace copied in), and
what is cleaned up when: the session's pod when it closes, everything this runner still
owns when the backend closes (its Lease, :mod:`.lease`), and what dead runners left behind
(:mod:`.reaper`, at start-up and every minute). The shell (:mod:`.shell`) answers *how*.

Every background task here has one owner that ends it: the backend's close waits for its
releases, stops the reaper and the pool filler, deletes the Lease, and closes the clients.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from agent_runner.backends.base import SandboxInfo, ShellSpec
from agent_runner.backends.executor_shell import state_at_start
from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.kubernetes import pods
from agent_runner.backends.kubernetes.claims import ClaimProvisioner
from agent_runner.backends.kubernetes.cluster import Cluster
from agent_runner.backends.kubernetes.connection import Connection, close_quietly, connect
from agent_runner.backends.kubernetes.lease import RunnerLease
from agent_runner.backends.kubernetes.pod_pool import PodProvisioner
from agent_runner.backends.kubernetes.reaper import Reaper
from agent_runner.backends.kubernetes.sandbox import SandboxPod
from agent_runner.backends.kubernetes.shell import KubernetesShell
from agent_runner.backends.owner import Owner
from agent_runner.backends.uploads import copy_directory
from agent_runner.config import Settings
from agent_runner.errors import SessionClosed, WorkingDirectoryMissing

logger = logging.getLogger("agent_runner")
REAP_SECONDS = 60.0


class KubernetesBackend:
    """Pods for sessions in one namespace, for one set of settings."""

    name = "kubernetes"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.kube = settings.sandbox.kubernetes
        self.cluster = Cluster(self.kube)
        self.owner = Owner.current()
        self.lease = RunnerLease(self.cluster, self.owner, self.kube.lease_duration)
        self.reaper = Reaper(
            self.cluster,
            interval=min(REAP_SECONDS, self.kube.lease_duration),
            warm_age=self.kube.max_lifetime / 2,
        )
        provisioner = (
            ClaimProvisioner if self.kube.provisioner == "agent-sandbox" else PodProvisioner
        )
        self.provisioner = provisioner(self.cluster, settings, self.lease, self.owner)
        self._background: set[asyncio.Task[Any]] = set()
        self._bind_noted = False
        self._closed = False

    async def _clients(self) -> Cluster:
        """The clients, opened on first use."""
        if self._closed:
            raise SessionClosed("the Kubernetes backend is closed")
        await self.cluster.open()
        return self.cluster

    async def _started(self) -> Cluster:
        """The clients, with the reaper running: a runner that makes sandboxes also
        sweeps up after dead ones (listing alone, ``sandbox ls``, removes nothing)."""
        cluster = await self._clients()
        self.reaper.start()
        return cluster

    # -- shells ---------------------------------------------------------------------------

    async def open_shell(self, spec: ShellSpec) -> KubernetesShell:
        await self._started()
        workspace = self._workspace(spec.cwd)
        pod = await self._acquire(spec.execution_id)
        connection: Connection | None = None
        try:
            connection = await self.connect(pod, heartbeat=False)
            variables = {
                n: os.environ[n] for n in self.settings.sandbox.env_passthrough if n in os.environ
            }
            variables.update(spec.env)
            if variables or spec.unset:
                request = {"op": "env", "set": variables, "unset": sorted(spec.unset)}
                await connection.channel.send(request)
            if workspace is not None:
                await copy_directory(connection.channel, workspace, m.WORKSPACE)
            # Only now: a ping must never land inside the upload's body.
            connection.start_heartbeat(self.kube.heartbeat)
        except BaseException:
            await asyncio.shield(self._discard(pod, connection))
            raise
        changes: dict[str, str | None] = {**variables, **dict.fromkeys(spec.unset)}
        state = state_at_start(connection.channel, m.WORKSPACE, changes)
        return KubernetesShell(self, pod, connection, state)

    async def _acquire(self, execution_id: str) -> SandboxPod:
        """A pod for the session, made whole even if the caller is cancelled meanwhile (and
        then released): an API call abandoned half-way would leave a pod nobody uses."""
        task = asyncio.ensure_future(self.provisioner.acquire(execution_id))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            try:
                pod = await task
            except BaseException:
                raise asyncio.CancelledError from None
            await asyncio.shield(self.provisioner.release(pod))
            raise

    def _workspace(self, cwd: str | None) -> Path | None:
        """The host directory to copy in. There is no host path to mount into a pod, so
        ``bind`` is copied too (said once): what the sandbox writes stays in the pod."""
        strategy = self.settings.sandbox.workspace
        if strategy == "none":
            return None
        if strategy == "bind" and not self._bind_noted:
            self._bind_noted = True
            logger.warning(
                "the Kubernetes backend cannot mount the host's workspace: it is copied into "
                "each pod (execution.sandbox.workspace copy), and what commands write there "
                "stays in the pod"
            )
        path = Path(cwd or os.getcwd()).resolve()
        if not path.is_dir():
            raise WorkingDirectoryMissing(
                f"workspace {path} does not exist or is not a directory; pass an existing "
                "--cwd or set execution.sandbox.workspace to none"
            )
        return path

    async def connect(self, pod: SandboxPod, *, heartbeat: bool = True) -> Connection:
        """A new executor in ``pod``, its heartbeat on (a shell reconnecting calls this)."""
        cluster = await self._started()
        connection = await connect(cluster, pod, timeout=self.kube.connect_timeout)
        if heartbeat:
            connection.start_heartbeat(self.kube.heartbeat)
        return connection

    async def gone(self, pod: SandboxPod) -> str | None:
        found = await pods.read(await self._clients(), pod.name)
        if found is None or found["metadata"].get("uid") != pod.uid:
            return f"pod {pod.name} was deleted"
        return pods.ended(found)

    def release(self, pod: SandboxPod, connection: Connection) -> None:
        self._spawn(self._discard(pod, connection))

    async def _discard(self, pod: SandboxPod, connection: Connection | None) -> None:
        await close_quietly(connection)
        await self.provisioner.release(pod)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- the pool, inventory, cleanup --------------------------------------------------------

    async def warm(self, cwd: str | None) -> None:
        """Start filling the warm pool (returns at once)."""
        await self._started()
        self.provisioner.refill()

    async def pool_level(self) -> int:
        """Warm pods running now."""
        await self._clients()
        return await self.provisioner.ready()

    async def sandboxes(self) -> list[SandboxInfo]:
        await self._clients()
        return await self.reaper.inventory()

    async def prune(self, *, everything: bool = False) -> list[SandboxInfo]:
        await self._clients()
        return await self.reaper.sweep(everything=everything)

    async def close(self) -> None:
        """Release every session's pod, stop the background work, delete the Lease (and
        so whatever it still owns), close the clients."""
        self._closed = True
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)
        await self.provisioner.close()
        await self.reaper.stop()
        if self.cluster.opened:
            await self.lease.release()
        await self.cluster.close()
