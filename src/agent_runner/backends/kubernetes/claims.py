"""The ``agent-sandbox`` provisioner: pods from kubernetes-sigs/agent-sandbox warm pools.

The operator owns the pods: a ``SandboxTemplate`` says what they are (the restricted
profile and our sleeper as PID 1 are the template's job, see ``deploy/kubernetes/``) and a
``SandboxWarmPool`` keeps some ready. A session creates a ``SandboxClaim`` naming the pool
(v1beta1: ``spec.warmPoolRef.name``), owned by the runner's Lease; waits until the claim
is ``Ready``; finds the Sandbox through ``status.sandbox.name`` and the pod through the
Sandbox's ``agents.x-k8s.io/pod-name`` annotation; and deletes the claim at the end
(which deletes the Sandbox and its pod). The claim carries no ``env``: agent-sandbox
starts a cold pod for any claim that does, so the session's variables go through the
executor like everywhere else.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.kubernetes import pods
from agent_runner.backends.kubernetes.cluster import AGENT_SANDBOX, SANDBOXES, Cluster, is_status
from agent_runner.backends.kubernetes.lease import RunnerLease
from agent_runner.backends.kubernetes.sandbox import SandboxPod
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import InvalidSetting, SandboxUnavailable

Object = dict[str, Any]
logger = logging.getLogger("agent_runner")
POD_NAME = "agents.x-k8s.io/pod-name"
LAUNCH_TYPE = "agents.x-k8s.io/launch-type"
HOPELESS = {"WarmPoolNotFound", "TemplateNotFound", "EnvVarsInjectionRejected"}


def ready(claim: Object) -> tuple[bool, str, str]:
    """Whether the claim is Ready, and the reason and message of its Ready condition."""
    for condition in (claim.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            ok = condition.get("status") == "True"
            return ok, str(condition.get("reason", "")), str(condition.get("message", ""))
    return False, "NotReconciled", "the agent-sandbox controller has not answered yet"


class ClaimProvisioner:
    """Pods through SandboxClaims on an operator-owned SandboxWarmPool."""

    def __init__(
        self, cluster: Cluster, settings: Settings, lease: RunnerLease, owner: Owner
    ) -> None:
        self.cluster = cluster
        self.kube = settings.sandbox.kubernetes
        self.lease = lease
        self.owner = owner

    async def acquire(self, execution_id: str) -> SandboxPod:
        pool = self.kube.warm_pool
        if not pool:
            raise InvalidSetting(
                "execution.sandbox.kubernetes.warm_pool must name the SandboxWarmPool to "
                "claim from when the provisioner is agent-sandbox"
            )
        reference = await self.lease.reference()
        name = m.pod_name(execution_id)
        body = m.sandbox_claim(name, pool, reference, self.owner, execution_id).body()
        try:
            created = await self.cluster.call(
                f"create SandboxClaim {name} on warm pool {pool}",
                self.cluster.custom.create_namespaced_custom_object,
                *AGENT_SANDBOX,
                self.cluster.namespace,
                "sandboxclaims",
                body,
            )
            claim = await self._until_ready(created)
            return await self._pod_of(claim)
        except BaseException:
            await asyncio.shield(self._delete(name))
            raise

    async def release(self, pod: SandboxPod) -> None:
        if pod.claim is not None:
            await self._delete(pod.claim)

    async def _until_ready(self, claim: Object) -> Object:
        name = claim["metadata"]["name"]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.kube.start_timeout
        while True:
            ok, reason, message = ready(claim)
            if ok and ((claim.get("status") or {}).get("sandbox") or {}).get("name"):
                return claim
            if reason in HOPELESS:
                raise SandboxUnavailable(f"SandboxClaim {name} failed: {reason}: {message}")
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise SandboxUnavailable(
                    f"SandboxClaim {name} was not Ready after {self.kube.start_timeout:g} s "
                    f"(execution.sandbox.kubernetes.start_timeout): {reason}: {message}"
                )
            try:
                claim = await self._next(claim, remaining)
            except TimeoutError:
                claim = await self._read("sandboxclaims", name, AGENT_SANDBOX)
            except Exception as error:
                if not is_status(error, 410):
                    raise
                claim = await self._read("sandboxclaims", name, AGENT_SANDBOX)

    async def _next(self, claim: Object, seconds: float) -> Object:
        """The claim after its next change, or as it is after ``seconds``."""
        name = claim["metadata"]["name"]
        done, found = await self.cluster.watch_one(
            self.cluster.custom.list_namespaced_custom_object,
            *AGENT_SANDBOX,
            self.cluster.namespace,
            "sandboxclaims",
            current=claim,
            seconds=seconds,
            settled=lambda _changed: True,
        )
        if done and found is None:
            raise SandboxUnavailable(f"SandboxClaim {name} was deleted")
        return (
            found if found is not None else await self._read("sandboxclaims", name, AGENT_SANDBOX)
        )

    async def _pod_of(self, claim: Object) -> SandboxPod:
        sandbox_name = claim["status"]["sandbox"]["name"]
        sandbox = await self._read("sandboxes", sandbox_name, SANDBOXES)
        meta = sandbox.get("metadata") or {}
        pod_name = (meta.get("annotations") or {}).get(POD_NAME) or sandbox_name
        pod = await pods.read(self.cluster, pod_name)
        if pod is None:
            raise SandboxUnavailable(f"the pod {pod_name} of Sandbox {sandbox_name} is gone")
        pod = await pods.wait_running(self.cluster, pod, self.kube.start_timeout)
        container = pod["spec"]["containers"][0]["name"]
        warm = (meta.get("labels") or {}).get(LAUNCH_TYPE) == "warm"
        claim_name = claim["metadata"]["name"]
        return SandboxPod(pod_name, pod["metadata"]["uid"], container, claim=claim_name, warm=warm)

    async def _read(self, plural: str, name: str, api: tuple[str, str]) -> Object:
        return await self.cluster.read(
            f"read {plural}/{name}",
            self.cluster.custom.get_namespaced_custom_object,
            *api,
            self.cluster.namespace,
            plural,
            name,
        )

    async def _delete(self, name: str) -> None:
        try:
            await self.cluster.custom.delete_namespaced_custom_object(
                *AGENT_SANDBOX, self.cluster.namespace, "sandboxclaims", name, _request_timeout=30
            )
        except Exception as error:  # the Lease owns the claim: it goes with it at the latest
            if not is_status(error, 404):
                logger.warning("could not delete SandboxClaim %s: %s", name, error)

    async def ready(self) -> int:
        return 0

    def refill(self) -> None:
        """The operator keeps the pool."""

    async def close(self) -> None:
        """Nothing of its own: claims go with their sessions or the Lease."""
