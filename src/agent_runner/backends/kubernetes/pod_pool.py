"""The ``pod`` provisioner: plain pods the runner makes itself, and a warm pool of them.

Needs nothing in the cluster but the RBAC in ``deploy/kubernetes/``. A session gets a new
pod, or, with ``pool_size``, claims a warm one: warm pods carry the ``stigmer.dev/pool``
label with the hash of their spec, so a runner only takes a pod it would have made itself,
and any runner with the same settings in the namespace may take it. The claim is a merge
patch guarded by the resourceVersion the runner saw: it drops the pool label and moves
the pod's ownerReference to the claimer's Lease in one write; a 409 means another runner
was faster, and the next candidate is tried. Each runner tops the pool up to ``pool_size``
after a claim; warm pods it made go with its Lease.

The NetworkPolicy of the configured network mode is created (once per Lease) before the
first pod, so no pod of ours ever runs unselected by it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.kubernetes import pods
from agent_runner.backends.kubernetes.cluster import Cluster, is_status
from agent_runner.backends.kubernetes.lease import RunnerLease
from agent_runner.backends.kubernetes.sandbox import SandboxPod
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import SandboxUnavailable

Object = dict[str, Any]
logger = logging.getLogger("agent_runner")
MERGE = "application/merge-patch+json"


class PodProvisioner:
    """Pods for sessions, cold or from the warm pool."""

    def __init__(
        self, cluster: Cluster, settings: Settings, lease: RunnerLease, owner: Owner
    ) -> None:
        self.cluster = cluster
        self.settings = settings
        self.kube = settings.sandbox.kubernetes
        self.lease = lease
        self.owner = owner
        self.pool = m.template_hash(m.pod_spec(settings))
        self._policies: set[str] = set()
        self._filling: asyncio.Task[None] | None = None
        self._closed = False

    async def _owner(self) -> tuple[str, str]:
        """The Lease everything is owned by, with this network mode's policy in place."""
        reference = await self.lease.reference()
        if reference[0] not in self._policies:
            policy = m.network_policy(self.kube.network, reference)
            if policy is not None:
                try:
                    await self.cluster.call(
                        f"create NetworkPolicy {policy.metadata.name}",
                        self.cluster.networking.create_namespaced_network_policy,
                        self.cluster.namespace,
                        policy.body(),
                    )
                except SandboxUnavailable as error:
                    if not is_status(error.__cause__, 409):
                        raise
            self._policies.add(reference[0])
        return reference

    # -- sessions -----------------------------------------------------------------------

    async def acquire(self, execution_id: str) -> SandboxPod:
        pod = await self._claim(execution_id) if self.kube.pool_size else None
        if pod is None:
            pod = await self._start(execution_id)
        self.refill()
        return pod

    async def release(self, pod: SandboxPod) -> None:
        await pods.delete(self.cluster, pod.name)

    async def _start(self, execution_id: str | None, *, wait: bool = True) -> SandboxPod:
        """A new pod; deleted again if it does not come up or the caller gives up."""
        reference = await self._owner()
        name = m.pod_name(execution_id)
        body = m.sandbox_pod(
            self.settings, name=name, lease=reference, owner=self.owner, execution_id=execution_id
        ).body()
        try:
            created = await self.cluster.read(
                f"create pod {name} in namespace {self.cluster.namespace}",
                self.cluster.core.create_namespaced_pod,
                self.cluster.namespace,
                body,
            )
            if wait:
                created = await pods.wait_running(self.cluster, created, self.kube.start_timeout)
        except BaseException:
            await asyncio.shield(pods.delete(self.cluster, name))
            raise
        return SandboxPod(name, created["metadata"]["uid"], m.CONTAINER)

    async def _claim(self, execution_id: str) -> SandboxPod | None:
        """A warm pod, claimed for ``execution_id``; ``None`` when there is none to take."""
        for candidate in await self._warm_pods():
            reference = await self._owner()
            meta = candidate["metadata"]
            patch = {
                "metadata": {
                    "resourceVersion": meta["resourceVersion"],
                    "labels": {m.POOL: None, m.RUNNER: reference[0]},
                    "annotations": {**m.owner_annotations(self.owner), m.EXECUTION: execution_id},
                    "ownerReferences": [m.lease_reference(*reference).body()],
                }
            }
            try:
                claimed = await self.cluster.read(
                    f"claim warm pod {meta['name']}",
                    self.cluster.core.patch_namespaced_pod,
                    meta["name"],
                    self.cluster.namespace,
                    patch,
                    _content_type=MERGE,
                )
            except SandboxUnavailable as error:
                if is_status(error.__cause__, 404, 409):
                    continue  # taken or gone meanwhile: the next one
                raise
            try:
                claimed = await pods.wait_running(self.cluster, claimed, self.kube.start_timeout)
            except BaseException:
                await asyncio.shield(pods.delete(self.cluster, meta["name"]))
                raise
            return SandboxPod(meta["name"], meta["uid"], m.CONTAINER, warm=True)
        return None

    async def _warm_pods(self) -> list[Object]:
        """Unclaimed pods of our spec, running ones first, oldest first."""
        listing = await self.cluster.read(
            "list warm pods",
            self.cluster.core.list_namespaced_pod,
            self.cluster.namespace,
            label_selector=f"{m.POOL}={self.pool}",
        )
        usable = [p for p in listing.get("items") or [] if pods.ended(p) is None]
        usable.sort(key=lambda p: (not pods.running(p), p["metadata"].get("creationTimestamp", "")))
        return usable

    # -- the pool -----------------------------------------------------------------------

    def refill(self) -> None:
        """Top the pool up to ``pool_size`` in the background (one filler at a time)."""
        if not self.kube.pool_size or self._closed:
            return
        if self._filling is None or self._filling.done():
            self._filling = asyncio.ensure_future(self._fill())

    async def _fill(self) -> None:
        try:
            missing = self.kube.pool_size - len(await self._warm_pods())
            if missing > 0:
                await asyncio.gather(*(self._start(None, wait=False) for _ in range(missing)))
        except asyncio.CancelledError:
            raise
        except Exception as error:  # the next claim tries again
            logger.warning("could not fill the Kubernetes warm pool: %s", error)

    async def ready(self) -> int:
        """Warm pods running now (benchmarks wait on it)."""
        return sum(1 for pod in await self._warm_pods() if pods.running(pod))

    async def close(self) -> None:
        """Stop filling; the warm pods this runner made go with its Lease."""
        self._closed = True
        if self._filling is not None:
            self._filling.cancel()
            await asyncio.gather(self._filling, return_exceptions=True)
