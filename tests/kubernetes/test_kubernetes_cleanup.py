"""Cleanup in layers on the fake apiserver: a closed backend leaves nothing; everything a
runner makes is owned by its Lease; the reaper removes what dead runners left and pods
that ended; ``agent-runner sandbox ls|prune --backend kubernetes``; and a runner killed
with SIGKILL mid-command, whose pod and Lease another runner's reaper removes once the
Lease has expired."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from agent_runner import ExecutionMode, Runner
from agent_runner.backends.kubernetes import KubernetesBackend
from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.owner import Owner
from tests.conftest import ROOT, TEST_IMAGE, cli_environment, run_cli
from tests.kubernetes.backend_fixtures import kube_sandbox_namespace, kube_settings, until

pytestmark = pytest.mark.docker
__all__ = ["kube_sandbox_namespace"]


@pytest.fixture
async def api(kube_config) -> AsyncIterator[Any]:
    async with client.ApiClient(kube_config) as api_client:
        yield api_client


async def pods_of(api, namespace: str) -> list[Any]:
    found = await client.CoreV1Api(api).list_namespaced_pod(
        namespace, label_selector=f"{m.SANDBOX}=1"
    )
    return found.items


async def leases_of(api, namespace: str) -> list[Any]:
    found = await client.CoordinationV1Api(api).list_namespaced_lease(
        namespace, label_selector=f"{m.RUNNER_LEASE}=1"
    )
    return found.items


def gone(api, namespace: str):
    async def check() -> bool:
        return not await pods_of(api, namespace) and not await leases_of(api, namespace)

    return check


async def test_a_closed_backend_leaves_no_pod_lease_or_policy(
    kube, api, kube_sandbox_namespace, tmp_path
):
    settings = kube_settings(kube, kube_sandbox_namespace, pool_size=1)
    async with Runner(settings) as runner:
        session = runner.session(cwd=tmp_path)
        assert (await session.run("echo hi")).stdout == "hi\n"
        (lease,) = await leases_of(api, kube_sandbox_namespace)
        pods = await pods_of(api, kube_sandbox_namespace)
        policies = await client.NetworkingV1Api(api).list_namespaced_network_policy(
            kube_sandbox_namespace
        )
        owned = [*pods, *policies.items]
        assert len(pods) >= 1
        assert len(policies.items) == 1
        for thing in owned:
            (reference,) = thing.metadata.owner_references
            assert (reference.kind, reference.uid) == ("Lease", lease.metadata.uid)
        assert lease.metadata.annotations[m.OWNER_PID] == str(os.getpid())
    await until(gone(api, kube_sandbox_namespace))


async def test_egress_public_is_a_policy_without_private_addresses(
    kube, api, kube_sandbox_namespace, tmp_path
):
    async with Runner(kube_settings(kube, kube_sandbox_namespace)) as runner:
        await runner.session(cwd=tmp_path).open(ExecutionMode.SANDBOX)
        (policy,) = (
            await client.NetworkingV1Api(api).list_namespaced_network_policy(kube_sandbox_namespace)
        ).items
        assert policy.spec.pod_selector.match_labels == {m.NETWORK: "egress-public"}
        assert policy.spec.policy_types == ["Ingress", "Egress"]
        assert not policy.spec.ingress
        blocks = [peer.ip_block for peer in policy.spec.egress[0].to]
        assert blocks[0].cidr == "0.0.0.0/0"
        assert {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"} <= set(
            blocks[0]._except
        )
        pod = (await pods_of(api, kube_sandbox_namespace))[0]
        assert pod.metadata.labels[m.NETWORK] == "egress-public"
        assert pod.spec.dns_policy == "None"


async def plant_orphan(api, settings, namespace: str, name: str) -> None:
    """A pod of a runner that died: its Lease was last renewed long ago."""
    dead_owner = Owner(999999, "gone-host", "1")
    lease_name = f"stigmer-runner-dead-{name}"
    dead = m.runner_lease(lease_name, dead_owner, 5).body()
    dead["spec"]["renewTime"] = "2020-01-01T00:00:00.000000Z"
    dead_lease = await client.CoordinationV1Api(api).create_namespaced_lease(namespace, dead)
    orphan = m.sandbox_pod(
        settings,
        name=name,
        lease=(lease_name, dead_lease.metadata.uid),
        owner=dead_owner,
        execution_id="left-behind",
    ).body()
    await client.CoreV1Api(api).create_namespaced_pod(namespace, orphan)


async def test_a_runner_reaps_at_start_up_what_dead_runners_left(
    kube, api, kube_sandbox_namespace, tmp_path
):
    settings = kube_settings(kube, kube_sandbox_namespace)
    await plant_orphan(api, settings, kube_sandbox_namespace, "stigmer-orphan")
    async with Runner(settings) as runner:
        await runner.session(cwd=tmp_path).open(ExecutionMode.SANDBOX)

        async def reaped() -> bool:
            names = [p.metadata.name for p in await pods_of(api, kube_sandbox_namespace)]
            leases = await leases_of(api, kube_sandbox_namespace)
            return "stigmer-orphan" not in names and len(leases) == 1

        await until(reaped)


async def test_prune_removes_what_dead_runners_left_and_pods_that_ended(
    kube, api, kube_sandbox_namespace, tmp_path
):
    settings = kube_settings(kube, kube_sandbox_namespace)
    core = client.CoreV1Api(api)
    async with Runner(settings) as runner:
        session = runner.session(cwd=tmp_path)
        alive = await session.open(ExecutionMode.SANDBOX)
        backend = await runner.backend(ExecutionMode.SANDBOX)
        assert isinstance(backend, KubernetesBackend)
        await backend.reaper.stop()  # this test sweeps by hand
        await plant_orphan(api, settings, kube_sandbox_namespace, "stigmer-orphan")
        reference = await backend.lease.reference()
        finished = m.sandbox_pod(
            settings, name="stigmer-finished", lease=reference, owner=backend.owner,
            execution_id="done",
        ).body()  # fmt: skip
        finished["spec"]["containers"][0]["command"] = ["/bin/sh", "-c", "exit 0"]
        await core.create_namespaced_pod(kube_sandbox_namespace, finished)

        async def succeeded() -> bool:
            pod = await core.read_namespaced_pod("stigmer-finished", kube_sandbox_namespace)
            return pod.status.phase == "Succeeded"

        await until(succeeded)
        listed = {s.name: s for s in await backend.sandboxes()}
        assert listed["stigmer-orphan"].orphaned
        assert not listed[alive].orphaned
        removed = {s.name for s in await backend.prune()}
        assert removed == {"stigmer-orphan", "stigmer-finished"}
        leases = await leases_of(api, kube_sandbox_namespace)
        assert [lease.metadata.name for lease in leases] == [reference[0]]
        assert (await session.run("echo still-here")).stdout == "still-here\n"


async def test_sandbox_ls_and_prune_on_the_kubernetes_backend(
    kube, api, kube_sandbox_namespace, tmp_path
):
    environment = cli_environment(tmp_path, **_variables(kube, kube_sandbox_namespace))
    async with Runner(kube_settings(kube, kube_sandbox_namespace)) as runner:
        name = await runner.session(cwd=tmp_path).open(ExecutionMode.SANDBOX)
        listed = await asyncio.to_thread(
            run_cli, "sandbox", "ls", "--backend", "kubernetes", "--json", env=environment
        )
        assert listed.returncode == 0, listed.stderr
        (row,) = json.loads(listed.stdout)
        assert (row["name"], row["orphaned"]) == (name, False)
        pruned = await asyncio.to_thread(
            run_cli, "sandbox", "prune", "--backend", "kubernetes", env=environment
        )
        assert pruned.stdout.splitlines()[-1] == "0 sandbox(es) removed"
        everything = await asyncio.to_thread(
            run_cli, "sandbox", "prune", "--all", "--backend", "kubernetes", env=environment
        )
        assert everything.stdout.splitlines()[-1] == "1 sandbox(es) removed"


def _variables(kube, namespace: str, **more: str) -> dict[str, str]:
    return {
        "STIGMER_SANDBOX_KUBERNETES_KUBECONFIG": str(kube.kubeconfig),
        "STIGMER_SANDBOX_KUBERNETES_NAMESPACE": namespace,
        "STIGMER_SANDBOX_KUBERNETES_IMAGE": TEST_IMAGE,
        "STIGMER_SANDBOX_KUBERNETES_CPU": "500m",
        "STIGMER_SANDBOX_KUBERNETES_MEMORY": "256Mi",
        "STIGMER_SANDBOX_WORKSPACE": "none",
        **more,
    }


async def test_a_runner_killed_mid_command_is_cleaned_up_once_its_lease_expires(
    kube, api, kube_sandbox_namespace, tmp_path
):
    variables = _variables(
        kube, kube_sandbox_namespace, STIGMER_SANDBOX_KUBERNETES_LEASE_DURATION="2"
    )
    runner = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_runner", "exec", "--mode", "sandbox", "--backend",
        "kubernetes", "echo up; sleep 600",
        env=cli_environment(tmp_path, **variables),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert runner.stdout is not None
        line = await asyncio.wait_for(runner.stdout.readline(), 120)
        assert line == b"up\n", line
        (pod,) = await pods_of(api, kube_sandbox_namespace)
        (lease,) = await leases_of(api, kube_sandbox_namespace)
        assert pod.metadata.owner_references[0].uid == lease.metadata.uid
    finally:
        runner.send_signal(signal.SIGKILL)
        await asyncio.wait_for(runner.wait(), 30)
    survivor = KubernetesBackend(kube_settings(kube, kube_sandbox_namespace, lease_duration=2))
    try:
        await survivor.warm(None)  # starts its reaper, as any runner's first use does
        await until(gone(api, kube_sandbox_namespace), timeout=120)
    finally:
        await survivor.close()


async def test_listing_removes_nothing(kube, api, kube_sandbox_namespace):
    settings = kube_settings(kube, kube_sandbox_namespace)
    await plant_orphan(api, settings, kube_sandbox_namespace, "stigmer-listed")
    backend = KubernetesBackend(settings)
    try:
        (listed,) = await backend.sandboxes()
        assert (listed.name, listed.orphaned) == ("stigmer-listed", True)
        await asyncio.sleep(1)
        assert [p.metadata.name for p in await pods_of(api, kube_sandbox_namespace)] == [
            "stigmer-listed"
        ]
    finally:
        await backend.close()
