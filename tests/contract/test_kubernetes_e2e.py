"""Opt-in: the shared contract on a real cluster. Nothing here runs unless
``STIGMER_K8S_E2E_KUBECONFIG`` names a kubeconfig (CI here has no cluster and never
claims these). Apply ``deploy/kubernetes/namespace.yaml`` and ``rbac.yaml`` first and
make the image pullable there:

    STIGMER_K8S_E2E_KUBECONFIG=~/.kube/config \\
    STIGMER_K8S_E2E_IMAGE=ghcr.io/stigmer/agent-sandbox:latest \\
    .venv/bin/python -m pytest -m kubernetes_e2e tests/contract/test_kubernetes_e2e.py

``STIGMER_K8S_E2E_CONTEXT``, ``STIGMER_K8S_E2E_NAMESPACE`` (default stigmer-sandboxes)
and ``STIGMER_K8S_E2E_RUNTIME_CLASS`` (gvisor, kata) are optional. These prove what the
fake cannot: scheduling, the kubelet's real exec path and idle timeouts, the cluster's
PSA and RBAC.
"""

import os

import pytest

from agent_runner import ExecutionMode, Settings
from tests.contract.suite import BackendContract

KUBECONFIG = os.environ.get("STIGMER_K8S_E2E_KUBECONFIG", "")
pytestmark = pytest.mark.kubernetes_e2e

if KUBECONFIG:

    class TestKubernetesOnARealCluster(BackendContract):
        mode = ExecutionMode.SANDBOX
        backend = "kubernetes"

        @pytest.fixture
        def settings(self) -> Settings:
            section = {
                "kubeconfig": os.path.expanduser(KUBECONFIG),
                "context": os.environ.get("STIGMER_K8S_E2E_CONTEXT") or None,
                "namespace": os.environ.get("STIGMER_K8S_E2E_NAMESPACE", "stigmer-sandboxes"),
                "image": os.environ.get("STIGMER_K8S_E2E_IMAGE") or None,
                "runtime_class": os.environ.get("STIGMER_K8S_E2E_RUNTIME_CLASS") or None,
                "cpu": "1",
                "memory": "1Gi",
            }
            return Settings.defaults(
                mode="sandbox",
                sandbox={"backend": "kubernetes", "workspace": "copy", "kubernetes": section},
            )

else:

    def test_the_contract_suite_on_a_real_cluster():
        """Stands for the whole suite on a real cluster, so the summary says, once, why it
        did not run (the fake apiserver's run, tests/contract/test_kubernetes.py, always does)."""
        pytest.skip(
            "kubernetes_e2e: STIGMER_K8S_E2E_KUBECONFIG is not set, so the suite did not run on a real cluster"
        )
