"""A sandbox pod's life as the runner follows it: started, running, gone.

Waiting is on a watch from the resourceVersion the create returned (re-listing after a
410), always bounded: a pod that is not running within ``start_timeout`` fails the session
with what held it up (``Unschedulable: 0/3 nodes are available ...``, ``ImagePullBackOff``)
and is deleted. What cannot get better (a container config the kubelet refuses, a pod that
ended) fails at once. Deletions never fail a caller: a pod already gone is what was wanted.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent_runner.backends.kubernetes.cluster import Cluster, explain, is_status
from agent_runner.errors import SandboxUnavailable

Object = dict[str, Any]
logger = logging.getLogger("agent_runner")
HOPELESS = {"CreateContainerConfigError", "InvalidImageName", "CreateContainerError"}
"""Waiting reasons that no amount of waiting fixes."""


def container_status(pod: Object) -> Object:
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return dict(statuses[0] or {})


def ended(pod: Object) -> str | None:
    """Why ``pod`` can no longer run commands, or ``None`` while it can (or may soon)."""
    meta, status = pod.get("metadata") or {}, pod.get("status") or {}
    name = meta.get("name", "?")
    if meta.get("deletionTimestamp"):
        return f"pod {name} is being deleted"
    phase = status.get("phase")
    if phase not in ("Succeeded", "Failed"):
        return None
    if status.get("reason") == "DeadlineExceeded":
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        return (
            f"pod {name} reached its max_lifetime ({deadline} s, activeDeadlineSeconds) "
            "and was stopped"
        )
    terminated = (container_status(pod).get("state") or {}).get("terminated") or {}
    if terminated.get("reason") == "OOMKilled":
        return f"pod {name} ran out of memory (OOMKilled) and stopped"
    code = terminated.get("exitCode", "?")
    return f"pod {name} has {phase.lower()} (its main process exited {code})"


def held_up(pod: Object) -> str:
    """What keeps ``pod`` from running, as the cluster says it."""
    status = pod.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"{condition.get('reason')}: {condition.get('message', '')}".strip()
    waiting = (container_status(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason"):
        return f"{waiting['reason']}: {waiting.get('message', '')}".strip(": ")
    return f"phase {status.get('phase', 'unknown')}"


def running(pod: Object) -> bool:
    state = container_status(pod).get("state") or {}
    return (pod.get("status") or {}).get("phase") == "Running" and "running" in state


def verdict(pod: Object) -> str | None:
    """``""`` once running, a reason once it never will, ``None`` while it may."""
    if running(pod):
        return ""
    reason = ended(pod)
    if reason is not None:
        return reason
    waiting = (container_status(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in HOPELESS:
        return f"pod {pod['metadata']['name']} cannot start: {held_up(pod)}"
    return None


async def read(cluster: Cluster, name: str) -> Object | None:
    """The pod as stored (a plain dict), or ``None`` when there is none."""
    try:
        return await cluster.read(
            f"read pod {name}", cluster.core.read_namespaced_pod, name, cluster.namespace
        )
    except SandboxUnavailable as error:
        if is_status(error.__cause__, 404):
            return None
        raise


async def wait_running(cluster: Cluster, pod: Object, timeout: float) -> Object:
    """``pod`` once it runs; :class:`SandboxUnavailable` (after deleting it) if it does not
    within ``timeout`` or cannot."""
    name = pod["metadata"]["name"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    current: Object | None = pod
    while current is not None:
        found = verdict(current)
        if found == "":
            return current
        if found is not None:
            await delete(cluster, name)
            raise SandboxUnavailable(found)
        remaining = deadline - loop.time()
        if remaining <= 0:
            await delete(cluster, name)
            raise SandboxUnavailable(
                f"pod {cluster.namespace}/{name} was not running after {timeout:g} s "
                f"(execution.sandbox.kubernetes.start_timeout): {held_up(current)}"
            )
        try:
            current = await _until_settled(cluster, current, remaining)
        except TimeoutError:
            current = await read(cluster, name)
        except Exception as error:
            if not is_status(error, 410):
                raise explain(error, f"watch pod {name}") from error
            current = await read(cluster, name)  # the history moved on: start from now
    raise SandboxUnavailable(f"pod {cluster.namespace}/{name} was deleted while it started")


async def _until_settled(cluster: Cluster, pod: Object, seconds: float) -> Object | None:
    """The pod once it runs or never will (``None``: deleted), or as it is after
    ``seconds``; one watch from the pod's resourceVersion."""
    done, found = await cluster.watch_one(
        cluster.core.list_namespaced_pod,
        cluster.namespace,
        current=pod,
        seconds=seconds,
        settled=lambda changed: verdict(changed) is not None,
    )
    return found if done else await read(cluster, pod["metadata"]["name"])


async def delete(cluster: Cluster, name: str, *, grace: int | None = None) -> None:
    """Delete pod ``name`` (gracefully: its main process exits on TERM); gone is fine."""
    options: dict[str, Any] = {} if grace is None else {"grace_period_seconds": grace}
    try:
        await cluster.core.delete_namespaced_pod(
            name, cluster.namespace, _request_timeout=30, **options
        )
    except Exception as error:  # the reaper and the Lease are the next layers
        if not is_status(error, 404):
            logger.warning("could not delete pod %s: %s", name, explain(error, "delete it"))
