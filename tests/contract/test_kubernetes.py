"""The shared contract, unchanged, on the Kubernetes backend against the fake apiserver:
once with the v5 stream protocol (stdin can be closed) and once with v4 only (it cannot,
so hanging up is the executor's in-band ``bye``). Every pod is admitted under Pod Security
"restricted"."""

import pytest

from agent_runner import ExecutionMode, Settings
from tests.contract.suite import BackendContract
from tests.kubernetes.backend_fixtures import kube_sandbox_namespace, kube_settings

pytestmark = pytest.mark.docker
__all__ = ["kube_sandbox_namespace"]


class TestKubernetes(BackendContract):
    mode = ExecutionMode.SANDBOX
    backend = "kubernetes"

    @pytest.fixture
    def settings(self, kube, kube_sandbox_namespace, sandbox_image) -> Settings:
        return kube_settings(kube, kube_sandbox_namespace)


class TestKubernetesV4Only(TestKubernetes):
    """An apiserver without the v5 protocol (before 1.30): no half-close of stdin."""

    @pytest.fixture(autouse=True)
    def only_v4(self, kube):
        kube.faults.v4only = True
