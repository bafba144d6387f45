"""Our pods in the namespace: listing them, and removing what no live runner holds.

Cleanup comes in layers: a session deletes its pod; a runner deletes its Lease at close
(which deletes whatever it still owns); the garbage collector deletes what a deleted Lease
owned; this reaper, in every runner at start-up and then every minute (and in
``agent-runner sandbox prune``), deletes the Leases that went unrenewed for twice their
duration (the runner behind them is dead), pods whose Lease is gone, pods that ended
(Succeeded or Failed: nothing runs in them any more) and warm pods too old to be worth
claiming; last, ``activeDeadlineSeconds`` stops every pod even with no runner left.

A sandbox's owner is judged by its Lease, not by a pid: runners run on many machines.
Pods are listed before Leases, so a pod created meanwhile is never judged against a Lease
list that predates it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agent_runner.backends.base import SandboxInfo
from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.kubernetes import pods
from agent_runner.backends.kubernetes.cluster import AGENT_SANDBOX, Cluster, is_status
from agent_runner.backends.owner import Owner
from agent_runner.errors import SandboxUnavailable

Object = dict[str, Any]
logger = logging.getLogger("agent_runner")
EXPIRY = 2
"""A Lease unrenewed for this many durations belongs to a dead runner (clock skew between
runners is tolerated up to one duration)."""


@dataclass(frozen=True)
class LeaseOwner(Owner):
    """A runner judged by its Lease (alive while renewed), wherever it runs."""

    alive: bool = True

    def is_alive(self) -> bool:
        return self.alive


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def lease_expired(lease: Object, now: datetime) -> bool:
    spec, meta = lease.get("spec") or {}, lease.get("metadata") or {}
    renewed = parse_time(spec.get("renewTime")) or parse_time(meta.get("creationTimestamp"))
    duration = float(spec.get("leaseDurationSeconds") or 60)
    return renewed is None or (now - renewed).total_seconds() > EXPIRY * duration


def lease_of(obj: Object) -> str | None:
    """The uid of the runner Lease that owns ``obj``."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("kind") == "Lease" and ref.get("apiVersion", "").startswith("coordination"):
            return str(ref.get("uid"))
    return None


def describe(obj: Object, live: set[str], kind: str = "pod") -> SandboxInfo:
    meta = obj.get("metadata") or {}
    notes = meta.get("annotations") or {}
    owner = LeaseOwner(
        int(notes.get(m.OWNER_PID) or 0),
        notes.get(m.OWNER_HOST, ""),
        notes.get(m.OWNER_STARTED, ""),
        alive=lease_of(obj) in live,
    )
    if kind == "pod":
        state = "Terminating" if meta.get("deletionTimestamp") else "?"
        state = (obj.get("status") or {}).get("phase", state) if state == "?" else state
        if m.POOL in (meta.get("labels") or {}):
            state += " (warm)"
        name = meta.get("name", "")
    else:
        ready = [
            c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"
        ]
        state = "Ready" if ready and ready[0].get("status") == "True" else "Pending"
        name = f"sandboxclaim/{meta.get('name', '')}"
    return SandboxInfo(
        sandbox_id=str(meta.get("uid", "")),
        name=name,
        execution_id=notes.get(m.EXECUTION, ""),
        state=state,
        image=notes.get(m.IMAGE, ""),
        created_at=notes.get(m.CREATED) or meta.get("creationTimestamp", ""),
        owner=owner,
    )


class Reaper:
    """Lists and reaps the sandboxes of every runner in one namespace."""

    def __init__(self, cluster: Cluster, *, interval: float, warm_age: float) -> None:
        self.cluster = cluster
        self.interval = interval
        self.warm_age = warm_age
        """Warm pods older than this are deleted (too little of their lifetime is left)."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._forever())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _forever(self) -> None:
        while True:
            try:
                removed = await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a failed round must not stop the next one
                logger.warning("the Kubernetes sandbox reaper failed a round: %s", error)
            else:
                for info in removed:
                    logger.info("reaped %s (%s, owner %s)", info.name, info.state, info.owner)
            await asyncio.sleep(self.interval)

    async def _listing(self) -> tuple[list[Object], list[Object], list[Object]]:
        cluster, namespace = self.cluster, self.cluster.namespace
        selector = f"{m.SANDBOX}=1"
        found = await cluster.read(
            f"list pods in namespace {namespace}",
            cluster.core.list_namespaced_pod,
            namespace,
            label_selector=selector,
        )
        claims = await self._claims(selector)
        leases = await cluster.read(
            f"list Leases in namespace {namespace}",
            cluster.leases.list_namespaced_lease,
            namespace,
            label_selector=f"{m.RUNNER_LEASE}=1",
        )
        return found.get("items") or [], claims, leases.get("items") or []

    async def _claims(self, selector: str) -> list[Object]:
        """Our SandboxClaims; none where agent-sandbox is not installed or not granted."""
        try:
            found = await self.cluster.read(
                "list SandboxClaims",
                self.cluster.custom.list_namespaced_custom_object,
                *AGENT_SANDBOX,
                self.cluster.namespace,
                "sandboxclaims",
                label_selector=selector,
            )
        except SandboxUnavailable as error:
            if is_status(error.__cause__, 403, 404):
                return []
            raise
        return list(found.get("items") or [])

    async def inventory(self) -> list[SandboxInfo]:
        found, claims, leases = await self._listing()
        now = datetime.now(UTC)
        live = {lease["metadata"]["uid"] for lease in leases if not lease_expired(lease, now)}
        return [describe(p, live) for p in found] + [describe(c, live, "claim") for c in claims]

    async def sweep(self, *, everything: bool = False) -> list[SandboxInfo]:
        """Remove what no live runner holds (``everything``: all our sandboxes)."""
        found, claims, leases = await self._listing()
        now = datetime.now(UTC)
        live: set[str] = set()
        for lease in leases:
            if lease_expired(lease, now):
                await self._delete_lease(lease)
            else:
                live.add(lease["metadata"]["uid"])
        doomed = [p for p in found if everything or self._doomed(p, live, now)]
        dropped = [c for c in claims if everything or lease_of(c) not in live]
        for pod in doomed:
            await pods.delete(self.cluster, pod["metadata"]["name"])
        for claim in dropped:
            await self._delete_claim(claim["metadata"]["name"])
        return [describe(p, live) for p in doomed] + [describe(c, live, "claim") for c in dropped]

    def _doomed(self, pod: Object, live: set[str], now: datetime) -> bool:
        meta = pod.get("metadata") or {}
        if meta.get("deletionTimestamp") or m.RUNNER not in (meta.get("labels") or {}):
            return False  # already going, or not a pod a runner made (an operator's)
        if lease_of(pod) not in live or (pod.get("status") or {}).get("phase") in (
            "Succeeded",
            "Failed",
        ):
            return True
        born = parse_time(meta.get("creationTimestamp"))
        warm = m.POOL in (meta.get("labels") or {})
        return warm and born is not None and (now - born).total_seconds() > self.warm_age

    async def _delete_lease(self, lease: Object) -> None:
        """Delete a dead runner's Lease, unless it was renewed since it was read."""
        meta = lease["metadata"]
        body = {"preconditions": {"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]}}
        try:
            await self.cluster.leases.delete_namespaced_lease(
                meta["name"], self.cluster.namespace, body=body, _request_timeout=30
            )
            logger.info("deleted the expired Lease %s (%s)", meta["name"], meta.get("uid"))
        except Exception as error:
            if not is_status(error, 404, 409):
                logger.warning("could not delete the expired Lease %s: %s", meta["name"], error)

    async def _delete_claim(self, name: str) -> None:
        try:
            await self.cluster.custom.delete_namespaced_custom_object(
                *AGENT_SANDBOX, self.cluster.namespace, "sandboxclaims", name, _request_timeout=30
            )
        except Exception as error:
            if not is_status(error, 404):
                logger.warning("could not delete SandboxClaim %s: %s", name, error)
