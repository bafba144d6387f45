"""Pytest fixtures for the fake Kubernetes API server (registered in tests/conftest.py).

``kube_fake`` is session-scoped: one fake (one HTTP server, one kubelet) serves the whole
run from its own thread and loop, so each test's function-scoped asyncio loop can come and
go. ``kube_namespace`` gives a test a namespace of its own and deletes it afterwards (which
deletes its pods, and their containers, as a real namespace deletion does). ``kube_config``
is a kubernetes_asyncio ``Configuration`` loaded from the fake's kubeconfig. Faults are
switched off after every test that asked for the fake through ``kube``.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.fakes.kube.podspec import INSTANCE_LABEL, LABEL
from tests.fakes.kube.server import FakeKube


@pytest.fixture(scope="session")
def kube_fake(docker_api, sandbox_image) -> Iterator[FakeKube]:
    """The fake cluster, running for the whole session; its containers go with it."""
    fake = FakeKube().start()
    try:
        yield fake
    finally:
        fake.stop()
        left = docker_api.containers(
            all=True, filters={"label": [f"{LABEL}=kube", f"{INSTANCE_LABEL}={fake.instance}"]}
        )
        assert not left, f"the fake left containers behind: {[c['Id'][:12] for c in left]}"


@pytest.fixture
def kube(kube_fake: FakeKube) -> Iterator[FakeKube]:
    """The session's fake, with every fault switched off again after the test."""
    kube_fake.faults.clear()
    yield kube_fake
    kube_fake.faults.clear()


@pytest.fixture
async def kube_config(kube: FakeKube):
    from kubernetes_asyncio import client, config

    configuration = client.Configuration()
    await config.load_kube_config(
        config_file=str(kube.kubeconfig), client_configuration=configuration
    )
    return configuration


@pytest.fixture
async def kube_namespace(kube_config) -> AsyncIterator[str]:
    """A namespace of the test's own, deleted (with everything in it) afterwards."""
    from kubernetes_asyncio import client

    name = f"t-{secrets.token_hex(4)}"
    async with client.ApiClient(kube_config) as api:
        core = client.CoreV1Api(api)
        await core.create_namespace({"metadata": {"name": name}})
        yield name
        await core.delete_namespace(name)
