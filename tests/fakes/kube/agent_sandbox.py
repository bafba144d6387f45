"""The agent-sandbox controllers (kubernetes-sigs/agent-sandbox), reduced to what a client sees.

Read from the upstream sources at commit 2fd412d5 (see the README for the list):

- **Sandbox** (controllers/sandbox_controller.go): keeps one pod named after the
  ``agents.x-k8s.io/pod-name`` annotation, or after the Sandbox; the pod gets the
  template's labels plus ``agents.x-k8s.io/sandbox-name-hash`` and a controller
  ownerReference to the Sandbox, which records the pod name in that annotation. Status:
  ``Ready`` (True, ``DependenciesReady``, only when the pod is Running, Ready and has an
  IP; else ``DependenciesNotReady``/``PodSucceeded``/``PodFailed``/``SandboxSuspended``/
  ``SandboxExpired``/``ReconcilerError``), ``Finished`` once the pod is terminal,
  ``podIPs``, ``nodeName``, ``selector``. ``operatingMode: Suspended`` deletes the pod;
  ``shutdownTime`` tears it down and, with ``shutdownPolicy: Delete``, the Sandbox too.
  A pod that disappears is recreated.
- **SandboxWarmPool** (extensions/controllers/sandboxwarmpool_controller.go): keeps
  ``replicas`` (default 1) Sandboxes named ``<pool>-xxxxx`` from the template named by
  ``sandboxTemplateRef``, controller-owned by the pool and labelled
  ``agents.x-k8s.io/warm-pool-sandbox: <fnv32a(pool)>``; status ``replicas``,
  ``readyReplicas``, ``selector``.
- **SandboxClaim** v1beta1 (extensions/controllers/sandboxclaim_controller.go):
  ``spec.warmPoolRef.name`` names the pool. A claim without ``env`` or
  ``volumeClaimTemplates`` adopts a pool Sandbox (a Ready one; it waits up to 2 s for a
  pending one, as ``warmCandidateGracePeriod`` does): it annotates itself
  ``agents.x-k8s.io/sandbox-name``, then moves the Sandbox's controller reference from the
  pool to itself, drops the pool labels, sets ``launch-type: warm`` and
  ``claim-uid``, with a resourceVersion precondition. Otherwise (or with no candidate) it
  creates a Sandbox named after itself from the pool's template (``launch-type: cold``),
  injecting ``env`` only if the template's ``envVarsInjectionPolicy`` is ``Allowed`` or
  ``Overrides`` (else ``Ready=False, EnvVarsInjectionRejected``). Status:
  ``Ready`` forwarded from the Sandbox (``observedGeneration`` the claim's),
  ``Finished`` mirrored, ``sandbox.name``, ``sandbox.podIPs``. Deleting the claim deletes
  its Sandbox and pod through ownerReferences (the garbage collector), and the pool,
  having lost nothing (an adopted Sandbox had already left it), stays full.

Not emulated: Services, NetworkPolicies the claim controller manages, PVCs from
``volumeClaimTemplates``, update strategies, expiry of claims, metrics and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.registry import Registry
from tests.fakes.kube.sandbox_api import (
    POD_NAME,
    POD_TEMPLATE_HASH,
    RELEVANT,
    SANDBOX_NAME_HASH,
    TEMPLATE_HASH,
    WARM_POOL,
    condition,
    controller_uid,
    is_ready,
    meta_condition,
    name_hash,
    owner_ref,
    put_condition,
)
from tests.fakes.kube.sandbox_claims import PoolsAndClaims
from tests.fakes.kube.status import ApiError
from tests.fakes.kube.store import Store, now_rfc3339

Object = dict[str, Any]


class AgentSandboxController:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store, self.registry = store, registry
        self.pools = PoolsAndClaims(store, registry, self._write_status)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        watcher = self.store.watch(None, None, None, limit=0)
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    event = await asyncio.wait_for(watcher.queue.get(), 0.5)
                    if event is None:
                        return
                    if event.resource not in RELEVANT:
                        continue
                    while not watcher.queue.empty():  # one pass for a burst of events
                        if watcher.queue.get_nowait() is None:
                            return
                self.reconcile()
        finally:
            self.store.unwatch(watcher)

    def reconcile(self) -> None:
        for kind, step in (
            (kinds.SANDBOXWARMPOOLS, self.pools.pool),
            (kinds.SANDBOXCLAIMS, self.pools.claim),
            (kinds.SANDBOXES, self._sandbox),
        ):
            for obj in self.store.list(kind):
                if obj["metadata"].get("deletionTimestamp"):
                    continue
                with contextlib.suppress(ApiError):
                    step(obj)

    def _write_status(self, resource: kinds.ResourceType, obj: Object, status: Object) -> None:
        def comparable(s: Object) -> str:
            conditions = [
                {k: v for k, v in c.items() if k != "lastTransitionTime"}
                for c in s.get("conditions") or []
            ]
            return json.dumps({**s, "conditions": conditions}, sort_keys=True)

        if comparable(status) == comparable(obj.get("status") or {}):
            return
        obj = copy.deepcopy(obj)
        obj["status"] = status
        meta = obj["metadata"]
        self.registry.update(resource, meta["namespace"], meta["name"], obj, "status")

    # -- Sandbox ---------------------------------------------------------------------
    def _sandbox(self, sandbox: Object) -> None:
        meta, spec = sandbox["metadata"], sandbox["spec"]
        namespace, name = meta["namespace"], meta["name"]
        pod_name = (meta.get("annotations") or {}).get(POD_NAME) or name
        pod = self.store.get(kinds.PODS, namespace, pod_name)
        owned = pod is not None and controller_uid(pod) == meta["uid"]
        status = copy.deepcopy(sandbox.get("status") or {})
        generation = meta.get("generation", 1)
        error = None
        shutdown = spec.get("shutdownTime") or ""
        if shutdown and shutdown <= now_rfc3339():
            if owned and pod is not None:
                self.registry.delete(kinds.PODS, namespace, pod_name)
            if spec.get("shutdownPolicy") == "Delete":
                self.registry.delete(kinds.SANDBOXES, namespace, name)
                return
            status.pop("podIPs", None)
            put_condition(
                status,
                meta_condition("Ready", False, "SandboxExpired", "Sandbox has expired", generation),
            )
            self._write_status(kinds.SANDBOXES, sandbox, status)
            return
        if spec.get("operatingMode") == "Suspended":
            if owned and pod is not None and not pod["metadata"].get("deletionTimestamp"):
                self.registry.delete(kinds.PODS, namespace, pod_name)
            gone = pod is None
            status.pop("podIPs", None)
            status.pop("nodeName", None)
            put_condition(status, meta_condition(
                "Suspended", gone, "PodTerminated" if gone else "PodTerminating", "", generation
            ))  # fmt: skip
            put_condition(status, meta_condition(
                "Ready", False, "SandboxSuspended",
                "Sandbox is suspended" if gone else "Sandbox is suspending", generation,
            ))  # fmt: skip
            self._write_status(kinds.SANDBOXES, sandbox, status)
            return
        template = spec.get("podTemplate") or {}
        wanted_labels = {
            **((template.get("metadata") or {}).get("labels") or {}),
            SANDBOX_NAME_HASH: name_hash(name),
        }
        if pod is None:
            body = {
                "metadata": {
                    "name": pod_name,
                    "namespace": namespace,
                    "labels": wanted_labels,
                    "annotations": dict((template.get("metadata") or {}).get("annotations") or {}),
                    "ownerReferences": [owner_ref(sandbox)],
                },
                "spec": copy.deepcopy(template.get("spec") or {}),
            }
            try:
                pod = self.registry.create(kinds.PODS, namespace, body)
                owned = True
            except ApiError as failure:
                error = failure.message
        elif not owned:
            error = f'pod "{pod_name}" is not owned by sandbox "{name}"'
        elif not pod["metadata"].get("deletionTimestamp"):
            labels = {
                k: v for k, v in (pod["metadata"].get("labels") or {}).items()
                if k not in (WARM_POOL, TEMPLATE_HASH, POD_TEMPLATE_HASH) or k in wanted_labels
            }  # fmt: skip
            labels.update(wanted_labels)
            if labels != pod["metadata"].get("labels"):
                pod["metadata"]["labels"] = labels
                self.registry.update(kinds.PODS, namespace, pod_name, pod)
        if owned and pod is not None and (meta.get("annotations") or {}).get(POD_NAME) != pod_name:
            sandbox = self.registry.patch(
                kinds.SANDBOXES, namespace, name, "application/merge-patch+json",
                {"metadata": {"annotations": {POD_NAME: pod_name}}},
            )  # fmt: skip
        self._write_status(
            kinds.SANDBOXES,
            sandbox,
            self._sandbox_status(sandbox, status, pod if owned else None, error),
        )

    def _sandbox_status(
        self, sandbox: Object, status: Object, pod: Object | None, error: str | None
    ) -> Object:
        generation = sandbox["metadata"].get("generation", 1)
        phase = ((pod or {}).get("status") or {}).get("phase")
        if error:
            ready = meta_condition(
                "Ready", False, "ReconcilerError", f"Error seen: {error}", generation
            )
        elif phase in ("Succeeded", "Failed"):
            reason = "PodSucceeded" if phase == "Succeeded" else "PodFailed"
            text = "Pod completed successfully" if phase == "Succeeded" else "Pod failed"
            ready = meta_condition("Ready", False, reason, text, generation)
            put_condition(status, meta_condition("Finished", True, reason, text, generation))
        elif pod is None:
            ready = meta_condition(
                "Ready", False, "DependenciesNotReady", "Pod does not exist", generation
            )
        elif phase == "Running" and is_ready(pod) and pod["status"].get("podIPs"):
            ready = meta_condition("Ready", True, "DependenciesReady", "Pod is Ready", generation)
        else:
            message = (
                "Pod is Running but not Ready"
                if phase == "Running"
                else f"Pod exists with phase: {phase}"
            )
            ready = meta_condition("Ready", False, "DependenciesNotReady", message, generation)
        if phase not in ("Succeeded", "Failed"):
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c["type"] != "Finished"
            ]
        put_condition(status, ready)
        if pod is not None and (scheduled := condition(pod, "PodScheduled")) is not None:
            put_condition(status, meta_condition(
                "PodScheduled", scheduled["status"] == "True",
                scheduled.get("reason") or "PodScheduled", scheduled.get("message", ""), generation,
            ))  # fmt: skip
        ips = [ip["ip"] for ip in ((pod or {}).get("status") or {}).get("podIPs") or []]
        if ips:
            status["podIPs"] = ips
        else:
            status.pop("podIPs", None)
        node = ((pod or {}).get("spec") or {}).get("nodeName")
        if node:
            status["nodeName"] = node
        else:
            status.pop("nodeName", None)
        status["selector"] = f"{SANDBOX_NAME_HASH}={name_hash(sandbox['metadata']['name'])}"
        return status

    # -- SandboxWarmPool -------------------------------------------------------------
