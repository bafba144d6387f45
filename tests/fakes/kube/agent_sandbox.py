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
from datetime import UTC, datetime
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.registry import Registry
from tests.fakes.kube.status import ApiError
from tests.fakes.kube.store import Store, now_rfc3339

Object = dict[str, Any]
POD_NAME = "agents.x-k8s.io/pod-name"
TEMPLATE_REF = "agents.x-k8s.io/sandbox-template-ref"
LAUNCH_TYPE = "agents.x-k8s.io/launch-type"
WARM_POOL = "agents.x-k8s.io/warm-pool-sandbox"
TEMPLATE_REF_HASH = "agents.x-k8s.io/sandbox-template-ref-hash"
TEMPLATE_HASH = "agents.x-k8s.io/sandbox-template-hash"
POD_TEMPLATE_HASH = "agents.x-k8s.io/sandbox-pod-template-hash"
SANDBOX_NAME_HASH = "agents.x-k8s.io/sandbox-name-hash"
CLAIM_UID = "agents.x-k8s.io/claim-uid"
ASSIGNED = "agents.x-k8s.io/sandbox-name"
WARM_GRACE_SECONDS = 2.0
RELEVANT = {r.key for r in (kinds.PODS, kinds.SANDBOXES, kinds.SANDBOXTEMPLATES,
                            kinds.SANDBOXCLAIMS, kinds.SANDBOXWARMPOOLS)}  # fmt: skip


def name_hash(name: str) -> str:
    """``NameHash``: FNV-1a (32 bit) of the name, as 8 hex digits."""
    value = 0x811C9DC5
    for byte in name.encode():
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def owner_ref(owner: Object) -> Object:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_uid(obj: Object) -> str | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid"))
    return None


def condition(obj: Object, kind: str) -> Object | None:
    return next(
        (c for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None
    )


def is_ready(obj: Object) -> bool:
    found = condition(obj, "Ready")
    return found is not None and found["status"] == "True"


def _age(obj: Object) -> float:
    created = datetime.strptime(obj["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    return (datetime.now(UTC).replace(tzinfo=None) - created).total_seconds()


def _meta_condition(kind: str, ok: bool, reason: str, message: str, generation: int) -> Object:
    return {
        "type": kind,
        "status": "True" if ok else "False",
        "reason": reason,
        "message": message,
        "observedGeneration": generation,
        "lastTransitionTime": now_rfc3339(),
    }


def _put_condition(status: Object, new: Object) -> None:
    conditions = status.setdefault("conditions", [])
    for index, old in enumerate(conditions):
        if old["type"] == new["type"]:
            if old["status"] == new["status"]:
                new = {**new, "lastTransitionTime": old.get("lastTransitionTime")}
            conditions[index] = new
            return
    conditions.append(new)


class AgentSandboxController:
    def __init__(self, store: Store, registry: Registry) -> None:
        self.store, self.registry = store, registry
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
            (kinds.SANDBOXWARMPOOLS, self._pool),
            (kinds.SANDBOXCLAIMS, self._claim),
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
            _put_condition(
                status,
                _meta_condition(
                    "Ready", False, "SandboxExpired", "Sandbox has expired", generation
                ),
            )
            self._write_status(kinds.SANDBOXES, sandbox, status)
            return
        if spec.get("operatingMode") == "Suspended":
            if owned and pod is not None and not pod["metadata"].get("deletionTimestamp"):
                self.registry.delete(kinds.PODS, namespace, pod_name)
            gone = pod is None
            status.pop("podIPs", None)
            status.pop("nodeName", None)
            _put_condition(status, _meta_condition(
                "Suspended", gone, "PodTerminated" if gone else "PodTerminating", "", generation
            ))  # fmt: skip
            _put_condition(status, _meta_condition(
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
            ready = _meta_condition(
                "Ready", False, "ReconcilerError", f"Error seen: {error}", generation
            )
        elif phase in ("Succeeded", "Failed"):
            reason = "PodSucceeded" if phase == "Succeeded" else "PodFailed"
            text = "Pod completed successfully" if phase == "Succeeded" else "Pod failed"
            ready = _meta_condition("Ready", False, reason, text, generation)
            _put_condition(status, _meta_condition("Finished", True, reason, text, generation))
        elif pod is None:
            ready = _meta_condition(
                "Ready", False, "DependenciesNotReady", "Pod does not exist", generation
            )
        elif phase == "Running" and is_ready(pod) and pod["status"].get("podIPs"):
            ready = _meta_condition("Ready", True, "DependenciesReady", "Pod is Ready", generation)
        else:
            message = (
                "Pod is Running but not Ready"
                if phase == "Running"
                else f"Pod exists with phase: {phase}"
            )
            ready = _meta_condition("Ready", False, "DependenciesNotReady", message, generation)
        if phase not in ("Succeeded", "Failed"):
            status["conditions"] = [
                c for c in status.get("conditions") or [] if c["type"] != "Finished"
            ]
        _put_condition(status, ready)
        if pod is not None and (scheduled := condition(pod, "PodScheduled")) is not None:
            _put_condition(status, _meta_condition(
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
    def _pool(self, pool: Object) -> None:
        meta = pool["metadata"]
        namespace = meta["namespace"]
        template_name = ((pool.get("spec") or {}).get("sandboxTemplateRef") or {}).get("name", "")
        template = self.store.get(kinds.SANDBOXTEMPLATES, namespace, template_name)
        members = [
            s
            for s in self.store.list(kinds.SANDBOXES, namespace)
            if controller_uid(s) == meta["uid"]
        ]
        active = [s for s in members if not s["metadata"].get("deletionTimestamp")]
        replicas = (pool.get("spec") or {}).get("replicas")
        desired = 1 if replicas is None else int(replicas)
        if template is not None:
            for _ in range(desired - len(members)):
                self.registry.create(kinds.SANDBOXES, namespace, self._pool_sandbox(pool, template))
        if len(active) > desired:
            doomed = sorted(active, key=lambda s: (is_ready(s), s["metadata"]["creationTimestamp"]))
            for extra in doomed[: len(active) - desired]:
                self.registry.delete(kinds.SANDBOXES, namespace, extra["metadata"]["name"])
            active = doomed[len(active) - desired :]
        status = {
            "replicas": len(active),
            "readyReplicas": sum(1 for s in active if is_ready(s)),
            "selector": f"{WARM_POOL}={name_hash(meta['name'])}",
            "observedGeneration": meta.get("generation", 1),
        }
        self._write_status(kinds.SANDBOXWARMPOOLS, pool, status)

    def _pool_sandbox(self, pool: Object, template: Object) -> Object:
        blueprint = copy.deepcopy(template.get("spec") or {})
        for field in (
            "networkPolicy",
            "networkPolicyManagement",
            "envVarsInjectionPolicy",
            "volumeClaimTemplatesPolicy",
        ):
            blueprint.pop(field, None)
        template_name = template["metadata"]["name"]
        spec_hash = name_hash(json.dumps(template.get("spec") or {}, sort_keys=True))
        pod_template = blueprint.setdefault("podTemplate", {})
        labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update({
            WARM_POOL: name_hash(pool["metadata"]["name"]),
            TEMPLATE_REF_HASH: name_hash(template_name),
            POD_TEMPLATE_HASH: spec_hash,
            TEMPLATE_HASH: spec_hash,
        })  # fmt: skip
        pod_template.setdefault("spec", {}).setdefault("automountServiceAccountToken", False)
        return {
            "apiVersion": kinds.SANDBOXES.api_version,
            "kind": "Sandbox",
            "metadata": {
                "generateName": f"{pool['metadata']['name']}-",
                "namespace": pool["metadata"]["namespace"],
                "labels": {
                    WARM_POOL: name_hash(pool["metadata"]["name"]),
                    TEMPLATE_REF_HASH: name_hash(template_name),
                    LAUNCH_TYPE: "warm",
                },
                "annotations": {TEMPLATE_REF: template_name},
                "ownerReferences": [owner_ref(pool)],
            },
            "spec": blueprint,
        }

    # -- SandboxClaim ----------------------------------------------------------------
    def _claim(self, claim: Object) -> None:
        meta, spec = claim["metadata"], claim.get("spec") or {}
        namespace = meta["namespace"]
        status = copy.deepcopy(claim.get("status") or {})
        generation = meta.get("generation", 1)
        sandbox = self._bound(claim)
        failure: tuple[str, str] | None = None
        if sandbox is None:
            pool_name = (spec.get("warmPoolRef") or {}).get("name", "")
            pool = self.store.get(kinds.SANDBOXWARMPOOLS, namespace, pool_name)
            if pool is None:
                failure = ("WarmPoolNotFound", f'SandboxWarmPool "{pool_name}" not found')
            else:
                cold = bool(spec.get("env") or spec.get("volumeClaimTemplates"))
                if not cold:
                    candidates = [
                        s for s in self.store.list(kinds.SANDBOXES, namespace)
                        if controller_uid(s) == pool["metadata"]["uid"]
                        and not s["metadata"].get("deletionTimestamp")
                        and WARM_POOL in (s["metadata"].get("labels") or {})
                    ]  # fmt: skip
                    candidates.sort(key=lambda s: s["metadata"]["creationTimestamp"])
                    ready = [s for s in candidates if is_ready(s)]
                    if ready:
                        sandbox = self._adopt(claim, ready[0])
                    elif candidates and _age(claim) < WARM_GRACE_SECONDS:
                        return  # wait for a warm candidate to become ready
                if sandbox is None:
                    sandbox, failure = self._cold(claim, pool)
        if failure is not None:
            _put_condition(
                status, _meta_condition("Ready", False, failure[0], failure[1], generation)
            )
        elif sandbox is not None:
            forwarded = condition(sandbox, "Ready")
            if forwarded is None:
                forwarded = _meta_condition(
                    "Ready", False, "SandboxNotReady", "Sandbox is not ready", generation
                )
            _put_condition(status, {**forwarded, "observedGeneration": generation})
            finished = condition(sandbox, "Finished")
            conditions = [c for c in status.get("conditions") or [] if c["type"] != "Finished"]
            status["conditions"] = conditions + ([finished] if finished else [])
            status["sandbox"] = {"name": sandbox["metadata"]["name"]}
            ips = (sandbox.get("status") or {}).get("podIPs")
            if ips:
                status["sandbox"]["podIPs"] = ips
        self._write_status(kinds.SANDBOXCLAIMS, claim, status)

    def _bound(self, claim: Object) -> Object | None:
        meta = claim["metadata"]
        names = [
            ((claim.get("status") or {}).get("sandbox") or {}).get("name"),
            (meta.get("annotations") or {}).get(ASSIGNED),
            meta["name"],
        ]
        for name in names:
            if name:
                found = self.store.get(kinds.SANDBOXES, meta["namespace"], name)
                if found is not None and controller_uid(found) == meta["uid"]:
                    return found
        return None

    def _adopt(self, claim: Object, sandbox: Object) -> Object:
        namespace, name = claim["metadata"]["namespace"], sandbox["metadata"]["name"]
        self.registry.patch(
            kinds.SANDBOXCLAIMS, namespace, claim["metadata"]["name"], "application/merge-patch+json",
            {"metadata": {"annotations": {ASSIGNED: name}}},
        )  # fmt: skip
        adopted = copy.deepcopy(sandbox)
        meta = adopted["metadata"]
        labels = {
            k: v
            for k, v in (meta.get("labels") or {}).items()
            if k not in (WARM_POOL, TEMPLATE_HASH, POD_TEMPLATE_HASH)
        }
        labels.update({LAUNCH_TYPE: "warm", CLAIM_UID: claim["metadata"]["uid"]})
        meta["labels"] = labels
        meta["ownerReferences"] = [owner_ref(claim)]
        meta.setdefault("annotations", {})[POD_NAME] = name
        template_meta = adopted["spec"].setdefault("podTemplate", {}).setdefault("metadata", {})
        pod_labels = {
            k: v
            for k, v in (template_meta.get("labels") or {}).items()
            if k not in (WARM_POOL, TEMPLATE_HASH, POD_TEMPLATE_HASH)
        }
        pod_labels[CLAIM_UID] = claim["metadata"]["uid"]
        pod_labels.update((claim["spec"].get("additionalPodMetadata") or {}).get("labels") or {})
        template_meta["labels"] = pod_labels
        return self.registry.update(kinds.SANDBOXES, namespace, name, adopted)

    def _cold(self, claim: Object, pool: Object) -> tuple[Object | None, tuple[str, str] | None]:
        namespace = claim["metadata"]["namespace"]
        template_name = ((pool.get("spec") or {}).get("sandboxTemplateRef") or {}).get("name", "")
        template = self.store.get(kinds.SANDBOXTEMPLATES, namespace, template_name)
        if template is None:
            return None, ("TemplateNotFound", f'SandboxTemplate "{template_name}" not found')
        blueprint = copy.deepcopy(template.get("spec") or {})
        policy = blueprint.pop("envVarsInjectionPolicy", "")
        for field in ("networkPolicy", "networkPolicyManagement", "volumeClaimTemplatesPolicy"):
            blueprint.pop(field, None)
        pod_template = blueprint.setdefault("podTemplate", {})
        containers = pod_template.setdefault("spec", {}).get("containers") or []
        env = claim["spec"].get("env") or []
        if env:
            if policy not in ("Allowed", "Overrides"):
                return None, ("EnvVarsInjectionRejected",
                              "environment variable injection rejected: environment variable "
                              "injection is not allowed by the template policy")  # fmt: skip
            for variable in env:
                target = next(
                    (c for c in containers if c["name"] == variable.get("containerName")),
                    containers[0] if containers and not variable.get("containerName") else None,
                )
                if target is None:
                    return None, (
                        "EnvVarsInjectionRejected",
                        f'target container "{variable.get("containerName")}" not found in template',
                    )
                existing = [
                    e for e in target.setdefault("env", []) if e["name"] == variable["name"]
                ]
                if existing and policy != "Overrides":
                    return None, (
                        "EnvVarsInjectionRejected",
                        f'environment variable "{variable["name"]}" is already set in the template',
                    )
                target["env"] = [e for e in target["env"] if e["name"] != variable["name"]]
                target["env"].append({"name": variable["name"], "value": variable.get("value", "")})
        labels = pod_template.setdefault("metadata", {}).setdefault("labels", {})
        labels.update(
            {CLAIM_UID: claim["metadata"]["uid"], TEMPLATE_REF_HASH: name_hash(template_name)}
        )
        labels.update((claim["spec"].get("additionalPodMetadata") or {}).get("labels") or {})
        pod_template["spec"].setdefault("automountServiceAccountToken", False)
        body = {
            "apiVersion": kinds.SANDBOXES.api_version,
            "kind": "Sandbox",
            "metadata": {
                "name": claim["metadata"]["name"],
                "namespace": namespace,
                "labels": {
                    CLAIM_UID: claim["metadata"]["uid"],
                    LAUNCH_TYPE: "cold",
                    TEMPLATE_REF_HASH: name_hash(template_name),
                },
                "annotations": {TEMPLATE_REF: template_name},
                "ownerReferences": [owner_ref(claim)],
            },
            "spec": blueprint,
        }
        return self.registry.create(kinds.SANDBOXES, namespace, body), None
