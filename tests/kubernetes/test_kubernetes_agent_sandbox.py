"""The agent-sandbox provisioner against the fake's agent-sandbox controllers: the
SandboxTemplate and SandboxWarmPool of ``deploy/kubernetes/agent-sandbox.yaml`` (on the
test image), sessions that claim from the pool, set their variables through the executor
(never in the claim), and delete their claim at the end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client
from ruamel.yaml import YAML

from agent_runner import ExecutionMode, Runner
from agent_runner.backends.kubernetes import KubernetesBackend
from agent_runner.errors import InvalidSetting, SandboxUnavailable
from tests.conftest import ROOT, TEST_IMAGE
from tests.kubernetes.backend_fixtures import kube_sandbox_namespace, kube_settings, until

pytestmark = pytest.mark.docker
__all__ = ["kube_sandbox_namespace"]
GROUP, VERSION = "extensions.agents.x-k8s.io", "v1beta1"


@pytest.fixture
async def objects(kube_config) -> AsyncIterator[Any]:
    async with client.ApiClient(kube_config) as api:
        yield client.CustomObjectsApi(api)


@pytest.fixture
async def warm_pool(objects, kube_sandbox_namespace) -> str:
    """deploy/kubernetes/agent-sandbox.yaml in the test's namespace, on the test image."""
    with (ROOT / "deploy" / "kubernetes" / "agent-sandbox.yaml").open() as handle:
        template, pool = (d for d in YAML(typ="safe").load_all(handle) if d)
    container = template["spec"]["podTemplate"]["spec"]["containers"][0]
    container["image"] = TEST_IMAGE
    container["resources"] = {"requests": {"cpu": "500m", "memory": "256Mi"},
                              "limits": {"cpu": "500m", "memory": "256Mi"}}  # fmt: skip
    pool["spec"]["replicas"] = 1
    for document, plural in ((template, "sandboxtemplates"), (pool, "sandboxwarmpools")):
        document["metadata"]["namespace"] = kube_sandbox_namespace
        await objects.create_namespaced_custom_object(
            GROUP, VERSION, kube_sandbox_namespace, plural, document
        )
    name = pool["metadata"]["name"]

    async def ready() -> bool:
        found = await objects.get_namespaced_custom_object(
            GROUP, VERSION, kube_sandbox_namespace, "sandboxwarmpools", name
        )
        return (found.get("status") or {}).get("readyReplicas") == 1

    await until(ready)
    return str(name)


async def claims(objects, namespace: str) -> list[dict[str, Any]]:
    found = await objects.list_namespaced_custom_object(GROUP, VERSION, namespace, "sandboxclaims")
    return list(found["items"])


async def test_a_session_claims_a_warm_sandbox_and_releases_its_claim(
    kube, objects, kube_sandbox_namespace, warm_pool, tmp_path
):
    settings = kube_settings(
        kube, kube_sandbox_namespace, provisioner="agent-sandbox", warm_pool=warm_pool
    )
    async with Runner(settings) as runner:
        async with runner.session(cwd=tmp_path, env={"TASK": "42"}) as session:
            result = await session.run('echo "task $TASK"; id -u; cd /tmp; export WHERE=tmp')
            assert result.stdout == "task 42\n1000\n"
            assert (await session.run("pwd; echo $WHERE")).stdout == "/tmp\ntmp\n"
            (claim,) = await claims(objects, kube_sandbox_namespace)
            assert claim["spec"] == {"warmPoolRef": {"name": warm_pool}}, "no env in the claim"
            backend = await runner.backend(ExecutionMode.SANDBOX)
            assert isinstance(backend, KubernetesBackend)
            listed = await backend.sandboxes()
            assert [s.name for s in listed] == [f"sandboxclaim/{claim['metadata']['name']}"]
            sandbox = claim["status"]["sandbox"]["name"]
            assert result.sandbox_id == sandbox
            assert sandbox.startswith(f"{warm_pool}-"), "it came from the warm pool"

        async def released() -> bool:
            return not await claims(objects, kube_sandbox_namespace)

        await until(released)


async def test_a_missing_warm_pool_is_a_clear_error(kube, kube_sandbox_namespace, tmp_path):
    settings = kube_settings(
        kube, kube_sandbox_namespace, provisioner="agent-sandbox", warm_pool="nowhere"
    )
    async with Runner(settings) as runner:
        with pytest.raises(SandboxUnavailable, match='WarmPoolNotFound: SandboxWarmPool "nowhere"'):
            async with asyncio.timeout(90):
                await runner.run("true", mode="sandbox", cwd=tmp_path)


async def test_the_warm_pool_must_be_named(kube, kube_sandbox_namespace, tmp_path):
    settings = kube_settings(kube, kube_sandbox_namespace, provisioner="agent-sandbox")
    async with Runner(settings) as runner:
        with pytest.raises(InvalidSetting, match="warm_pool must name the SandboxWarmPool"):
            await runner.run("true", mode="sandbox", cwd=tmp_path)
