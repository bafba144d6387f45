"""Fixtures for the Kubernetes backend's tests against the fake apiserver.

``kube_sandbox_namespace`` is a namespace of the test's own that enforces Pod Security
"restricted", so every pod the backend makes in a test is checked by admission as a real
cluster would check it. ``kube_settings`` builds the settings that point the backend at
the fake; tests pass the keys they change (short bounds for the fault cases).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from agent_runner import Settings
from tests.conftest import TEST_IMAGE

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}


@pytest.fixture
async def kube_sandbox_namespace(kube_config, kube_namespace) -> str:
    from kubernetes_asyncio import client

    async with client.ApiClient(kube_config) as api:
        await client.CoreV1Api(api).patch_namespace(
            kube_namespace, {"metadata": {"labels": RESTRICTED}}
        )
    return kube_namespace


def kube_settings(kube: Any, namespace: str, **kubernetes: Any) -> Settings:
    """SANDBOX mode on the fake cluster, the workspace copied in; ``kubernetes`` on top of
    the test defaults (modest resources, generous bounds)."""
    section: dict[str, Any] = {
        "kubeconfig": str(kube.kubeconfig),
        "namespace": namespace,
        "image": TEST_IMAGE,
        "cpu": "1",
        "memory": "512Mi",
        "start_timeout": 120,
        "connect_timeout": 30,
        **kubernetes,
    }
    return Settings.defaults(
        mode="sandbox",
        sandbox={"backend": "kubernetes", "workspace": "copy", "kubernetes": section},
    )


async def until(check: Any, timeout: float = 90) -> Any:
    """Poll ``check`` (a coroutine function) until it returns something truthy; bounded."""
    async with asyncio.timeout(timeout):
        while not (found := await check()):  # noqa: ASYNC110 (polling the API, on purpose)
            await asyncio.sleep(0.1)
    return found
