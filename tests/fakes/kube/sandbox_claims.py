"""The SandboxWarmPool and SandboxClaim controllers of agent-sandbox, as a client sees them.

From kubernetes-sigs/agent-sandbox (commit 2fd412d5)
``extensions/controllers/sandboxwarmpool_controller.go`` and ``sandboxclaim_controller.go``;
what is emulated is described in agent_sandbox.py, which runs these reconcilers.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.registry import Registry
from tests.fakes.kube.sandbox_api import (
    ASSIGNED,
    CLAIM_UID,
    LAUNCH_TYPE,
    POD_NAME,
    POD_TEMPLATE_HASH,
    TEMPLATE_HASH,
    TEMPLATE_REF,
    TEMPLATE_REF_HASH,
    WARM_GRACE_SECONDS,
    WARM_POOL,
    age,
    condition,
    controller_uid,
    is_ready,
    meta_condition,
    name_hash,
    owner_ref,
    put_condition,
)
from tests.fakes.kube.store import Store

Object = dict[str, Any]
StatusWriter = Callable[[kinds.ResourceType, Object, Object], None]


class PoolsAndClaims:
    def __init__(self, store: Store, registry: Registry, write_status: StatusWriter) -> None:
        self.store, self.registry, self._write_status = store, registry, write_status

    def pool(self, pool: Object) -> None:
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
    def claim(self, claim: Object) -> None:
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
                    elif candidates and age(claim) < WARM_GRACE_SECONDS:
                        return  # wait for a warm candidate to become ready
                if sandbox is None:
                    sandbox, failure = self._cold(claim, pool)
        if failure is not None:
            put_condition(
                status, meta_condition("Ready", False, failure[0], failure[1], generation)
            )
        elif sandbox is not None:
            forwarded = condition(sandbox, "Ready")
            if forwarded is None:
                forwarded = meta_condition(
                    "Ready", False, "SandboxNotReady", "Sandbox is not ready", generation
                )
            put_condition(status, {**forwarded, "observedGeneration": generation})
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
