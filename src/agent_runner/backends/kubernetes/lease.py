"""The runner's Lease: the one object that owns everything the runner makes in the cluster.

Every pod, NetworkPolicy and SandboxClaim a runner creates names its Lease in
``ownerReferences``, so deleting the Lease has the garbage collector delete all of them
(pods gracefully). The runner renews it every third of ``lease_duration`` with a merge
patch of ``spec.renewTime`` guarded by the resourceVersion it last saw, so nobody else's
write is ever overwritten; at close it deletes the Lease itself. A runner that dies stops
renewing, and any other runner's reaper (:mod:`.reaper`), or ``agent-runner sandbox prune``,
deletes the Lease once it has gone unrenewed for twice its duration: that one delete
cleans up after the dead runner, whatever it was doing when it died.

The Lease is created on first need (a one-shot ``sandbox ls`` makes none). If it vanishes
under a live runner (it stalled for longer than two durations and was reaped), the runner
says so and makes a new one for what comes next; what the old one owned is being deleted.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from agent_runner.backends.kubernetes import manifests
from agent_runner.backends.kubernetes.cluster import Cluster, explain, is_status
from agent_runner.backends.owner import Owner

logger = logging.getLogger("agent_runner")


class RunnerLease:
    """This runner's Lease in the backend's namespace, renewed while the backend is open."""

    def __init__(self, cluster: Cluster, owner: Owner, duration: float) -> None:
        self.cluster = cluster
        self.owner = owner
        self.duration = duration
        self.name = f"stigmer-runner-{secrets.token_hex(5)}"
        self._uid: str | None = None
        self._version: str | None = None
        self._lock = asyncio.Lock()
        self._renewer: asyncio.Task[None] | None = None

    @property
    def held(self) -> bool:
        return self._uid is not None

    async def reference(self) -> tuple[str, str]:
        """``(name, uid)`` for ownerReferences; the Lease is created on first call."""
        async with self._lock:
            if self._uid is None:
                body = manifests.runner_lease(self.name, self.owner, self.duration).body()
                created = await self.cluster.call(
                    f"create the runner's Lease in namespace {self.cluster.namespace}",
                    self.cluster.leases.create_namespaced_lease,
                    self.cluster.namespace,
                    body,
                )
                self._uid = str(created.metadata.uid)
                self._version = str(created.metadata.resource_version)
                if self._renewer is None or self._renewer.done():
                    self._renewer = asyncio.ensure_future(self._renew_forever())
            return self.name, self._uid

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.duration / 3)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the next round tries again; two durations is long
                logger.warning("could not renew Lease %s: %s", self.name, error)

    async def renew(self) -> None:
        """Push ``renewTime`` forward, guarded by the last resourceVersion seen."""
        leases, namespace = self.cluster.leases, self.cluster.namespace
        for _ in range(3):
            if self._uid is None:
                return  # lost: the next reference() makes a new one
            patch: dict[str, Any] = {
                "metadata": {"resourceVersion": self._version},
                "spec": {"renewTime": manifests.now_rfc3339(micro=True)},
            }
            try:
                renewed = await leases.patch_namespaced_lease(
                    self.name,
                    namespace,
                    patch,
                    _content_type="application/merge-patch+json",
                    _request_timeout=30,
                )
            except Exception as error:
                if is_status(error, 404):
                    self._lost()
                    return
                if not is_status(error, 409):
                    raise explain(error, f"renew Lease {self.name}") from error
                current = await leases.read_namespaced_lease(self.name, namespace)
                if current.spec.holder_identity != str(self.owner):
                    self._lost()
                    return
                self._version = str(current.metadata.resource_version)
                continue
            self._version = str(renewed.metadata.resource_version)
            return

    def _lost(self) -> None:
        logger.error(
            "the runner's Lease %s is gone (it was not renewed in time and was reaped): "
            "its sandboxes are being deleted; new ones get a new Lease",
            self.name,
        )
        self._uid = self._version = None
        self.name = f"stigmer-runner-{secrets.token_hex(5)}"

    async def release(self) -> None:
        """Stop renewing and delete the Lease (what it still owns goes with it)."""
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        if self._uid is None:
            return
        try:
            await self.cluster.leases.delete_namespaced_lease(
                self.name, self.cluster.namespace, _request_timeout=30
            )
        except Exception as error:
            if not is_status(error, 404):
                logger.warning(
                    "could not delete Lease %s (the reaper of another runner will): %s",
                    self.name,
                    explain(error, "delete it"),
                )
        self._uid = None
