"""What only the Kubernetes backend does, against the fake apiserver: its stream's faults
(an idle cut, a reset, a handshake that never answers, RBAC without pods/exec), pods that
never start or stop under a session, the OOM report, the heartbeats, the v4 hang-up, and
the warm pool's claim. Cleanup (Leases, the reaper, a runner killed with SIGKILL) and the
agent-sandbox provisioner have modules of their own beside this one.

Waits are bounded generously and never measured: the machine is shared.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from kubernetes_asyncio import client

from agent_runner import ExecutionMode, Runner
from agent_runner.backends.base import CommandRequest, ShellSpec
from agent_runner.backends.kubernetes import KubernetesBackend
from agent_runner.backends.kubernetes import manifests as m
from agent_runner.backends.kubernetes.shell import KubernetesShell
from agent_runner.backends.kubernetes.stream import V4, V5
from agent_runner.errors import SandboxUnavailable
from agent_runner.output import OutputCollector
from agent_runner.results import Stream
from tests.kubernetes.backend_fixtures import kube_sandbox_namespace, kube_settings, until

pytestmark = pytest.mark.docker
__all__ = ["kube_sandbox_namespace"]


@pytest.fixture
async def core(kube_config) -> AsyncIterator[Any]:
    async with client.ApiClient(kube_config) as api:
        yield client.CoreV1Api(api)


@pytest.fixture
async def backend_for(kube, kube_sandbox_namespace):
    """``backend_for(**settings)``: a backend on the fake, closed after the test."""
    made: list[KubernetesBackend] = []

    def make(**kubernetes: Any) -> KubernetesBackend:
        backend = KubernetesBackend(kube_settings(kube, kube_sandbox_namespace, **kubernetes))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.close()


async def open_shell(backend: KubernetesBackend, tmp_path, **env: str) -> KubernetesShell:
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    return await backend.open_shell(
        ShellSpec("k8s-test", backend.settings, str(workspace), env=env)
    )


async def run(shell: KubernetesShell, command: str, timeout: float = 60) -> tuple[int, str]:
    output = OutputCollector(1 << 20)
    outcome = await shell.run(CommandRequest(command, timeout), output)
    await output.close()
    return outcome.exit_code, output.text(Stream.STDOUT)


async def our_pods(core, namespace: str) -> list[Any]:
    found = await core.list_namespaced_pod(namespace, label_selector=f"{m.SANDBOX}=1")
    return [p for p in found.items if not p.metadata.deletion_timestamp]


# -- the stream ------------------------------------------------------------------------


async def test_v5_hangs_up_by_closing_stdin_and_the_executor_exits(backend_for, tmp_path):
    shell = await open_shell(backend_for(), tmp_path)
    assert shell.connection.protocol == V5
    assert await run(shell, "echo hi") == (0, "hi\n")
    stream = shell.connection.stream
    await shell.connection.aclose()
    assert stream.status == {"metadata": {}, "status": "Success"}


async def test_v4_hangs_up_with_the_executors_bye(kube, backend_for, tmp_path):
    kube.faults.v4only = True
    shell = await open_shell(backend_for(), tmp_path)
    assert shell.connection.protocol == V4
    assert await run(shell, "echo hi") == (0, "hi\n")
    stream = shell.connection.stream
    await shell.connection.aclose()
    assert stream.status == {"metadata": {}, "status": "Success"}, "bye ended the executor"


async def test_heartbeats_keep_an_idle_stream_open(kube, backend_for, tmp_path):
    shell = await open_shell(backend_for(heartbeat=0.2), tmp_path)
    kube.faults.cut_idle_exec_after(3)
    await run(shell, "export KEPT=1")
    await asyncio.sleep(4)
    assert not shell.connection.lost
    assert await run(shell, "echo $KEPT") == (0, "1\n")
    assert shell.reconnects == 0


async def test_an_idle_cut_reconnects_to_the_same_pod_and_adopts_the_state(
    kube, backend_for, tmp_path
):
    shell = await open_shell(backend_for(heartbeat=60), tmp_path, BASE="from-open")
    await run(shell, "mkdir -p sub && cd sub && export KEPT='a b'")
    first = shell.connection
    kube.faults.cut_idle_exec_after(0.5)

    async def cut() -> bool:
        return first.lost

    await until(cut)
    kube.faults.cut_idle_exec_after(None)
    assert await run(shell, 'pwd; echo "$KEPT $BASE"') == (0, "/workspace/sub\na b from-open\n")
    assert shell.reconnects == 1
    assert shell.connection.pod == first.pod


async def test_a_reset_mid_command_is_one_clear_error_and_the_session_goes_on(
    kube, backend_for, tmp_path
):
    shell = await open_shell(backend_for(), tmp_path)
    await run(shell, "export KEPT=yes")
    seen = asyncio.Event()
    output = OutputCollector(1 << 20, lambda chunk: seen.set())
    running = asyncio.ensure_future(shell.run(CommandRequest("echo started; sleep 30"), output))
    async with asyncio.timeout(60):
        await seen.wait()
    assert kube.faults.reset_exec_streams() == 1
    with pytest.raises(SandboxUnavailable) as error:
        await asyncio.wait_for(running, 60)
    assert "dropped while the command ran" in str(error.value)
    assert "\n" not in str(error.value)
    assert await run(shell, "echo $KEPT; pgrep -f 'slee[p] 30' || echo none") == (
        0,
        "yes\nnone\n",
    )


async def test_a_handshake_that_never_answers_fails_clearly_within_its_bound(
    kube, core, kube_sandbox_namespace, backend_for, tmp_path
):
    backend = backend_for(connect_timeout=1)
    kube.faults.hang_exec_handshake()
    with pytest.raises(SandboxUnavailable) as error:
        async with asyncio.timeout(60):
            await open_shell(backend, tmp_path)
    assert "did not open within 1 s" in str(error.value)
    await until(lambda: _none_left(core, kube_sandbox_namespace))


async def _none_left(core, namespace: str) -> bool:
    return not await our_pods(core, namespace)


async def test_forbidden_exec_is_one_line_naming_the_rbac_verb(kube, backend_for, tmp_path):
    kube.faults.forbid_exec()
    with pytest.raises(SandboxUnavailable) as error:
        await open_shell(backend_for(), tmp_path)
    message = str(error.value)
    assert "\n" not in message
    assert 'create and get on "pods/exec"' in message
    assert "deploy/kubernetes/rbac.yaml" in message


# -- pods ------------------------------------------------------------------------------


async def test_a_pod_stuck_pending_fails_after_the_start_timeout_and_is_deleted(
    kube, core, kube_sandbox_namespace, backend_for, tmp_path
):
    kube.faults.stuck_pending(labels={m.SANDBOX: "1"})
    with pytest.raises(SandboxUnavailable) as error:
        async with asyncio.timeout(90):
            await open_shell(backend_for(start_timeout=2), tmp_path)
    message = str(error.value)
    assert "was not running after 2 s" in message
    assert "Unschedulable: 0/1 nodes are available" in message
    await until(lambda: _none_left(core, kube_sandbox_namespace))


async def test_a_command_out_of_memory_is_reported_and_the_session_survives(backend_for, tmp_path):
    shell = await open_shell(backend_for(memory="64Mi"), tmp_path)
    output = OutputCollector(1 << 20)
    hog = "python3 -c 'x = bytearray(512 * 1024 * 1024); print(len(x))'"
    outcome = await shell.run(CommandRequest(hog, 60), output)
    assert (outcome.exit_code, outcome.oom_killed) == (137, True)
    assert await run(shell, "echo alive") == (0, "alive\n")


async def test_a_deleted_pod_is_a_clear_sandbox_unavailable(
    core, kube_sandbox_namespace, backend_for, tmp_path
):
    shell = await open_shell(backend_for(), tmp_path)
    await core.delete_namespaced_pod(shell.sandbox_id, kube_sandbox_namespace)

    async def dropped() -> bool:
        return shell.connection.lost

    await until(dropped)
    for _ in range(2):  # and it stays that way
        with pytest.raises(SandboxUnavailable, match=f"sandbox is gone: pod {shell.sandbox_id}"):
            await run(shell, "true")


async def test_a_pod_killed_under_a_command_says_so(
    kube, kube_sandbox_namespace, backend_for, tmp_path
):
    shell = await open_shell(backend_for(), tmp_path)
    running = asyncio.ensure_future(run(shell, "sleep 30"))
    await asyncio.sleep(0.5)
    kube.kill_pod_container(shell.sandbox_id, kube_sandbox_namespace)
    with pytest.raises(SandboxUnavailable) as error:
        await asyncio.wait_for(running, 60)
    assert f"pod {shell.sandbox_id}" in str(error.value)


async def test_the_pod_is_restricted_and_carries_no_session_variables(
    core, kube_sandbox_namespace, backend_for, tmp_path
):
    shell = await open_shell(backend_for(), tmp_path, SECRET="s3cret")
    assert await run(shell, "echo $SECRET; id -u") == (0, "s3cret\n1000\n")
    pod = await core.read_namespaced_pod(shell.sandbox_id, kube_sandbox_namespace)
    container = pod.spec.containers[0]
    assert "s3cret" not in str(pod.to_dict())
    assert pod.spec.automount_service_account_token is False
    assert pod.spec.security_context.seccomp_profile.type == "RuntimeDefault"
    assert container.security_context.read_only_root_filesystem is True
    assert container.resources.requests == container.resources.limits


async def test_sessions_on_a_runner_share_its_lease(kube, kube_sandbox_namespace, tmp_path):
    settings = kube_settings(kube, kube_sandbox_namespace)
    async with Runner(settings) as runner:
        first = await runner.session(cwd=tmp_path).open(ExecutionMode.SANDBOX)
        second = await runner.session(cwd=tmp_path).open(ExecutionMode.SANDBOX)
        backend = await runner.backend(ExecutionMode.SANDBOX)
        assert isinstance(backend, KubernetesBackend)
        owners = {s.sandbox_id: s.owner for s in await backend.sandboxes() if not s.orphaned}
        assert len(owners) == 2
        assert first != second


# -- the warm pool ---------------------------------------------------------------------


async def test_a_session_claims_a_warm_pod_and_the_pool_refills(backend_for, tmp_path):
    backend = backend_for(pool_size=1)
    await backend.warm(None)

    async def full() -> bool:
        return await backend.pool_level() == 1

    await until(full)
    shell = await open_shell(backend, tmp_path)
    assert shell.pod.warm
    assert shell.sandbox_id.startswith("stigmer-pool-")
    assert await run(shell, "pwd") == (0, "/workspace\n")
    await until(full)  # refilled
    mine = {s.name: s for s in await backend.sandboxes()}
    assert "(warm)" not in mine[shell.sandbox_id].state
    assert mine[shell.sandbox_id].execution_id == "k8s-test"


async def test_a_claim_that_loses_the_race_takes_the_next_warm_pod(
    core, kube_sandbox_namespace, backend_for
):
    backend = backend_for(pool_size=2)
    await backend.warm(None)
    provisioner = backend.provisioner

    async def full() -> bool:
        return await backend.pool_level() == 2

    await until(full)
    stale = await provisioner._warm_pods()  # what this runner saw...
    taken = stale[0]["metadata"]["name"]
    await core.patch_namespaced_pod(  # ...before another runner changed the first pod
        taken, kube_sandbox_namespace, {"metadata": {"labels": {"touched": "yes"}}}
    )
    provisioner._warm_pods = _returning(stale)
    pod = await provisioner._claim("race")
    assert pod is not None
    assert pod.name == stale[1]["metadata"]["name"]
    still_warm = await core.read_namespaced_pod(taken, kube_sandbox_namespace)
    assert still_warm.metadata.labels[m.POOL] == provisioner.pool


def _returning(value: Any):
    async def call() -> Any:
        return value

    return call


async def test_the_workspace_is_copied_in_whole_and_the_host_is_never_written(
    backend_for, tmp_path
):
    import hashlib

    workspace = tmp_path / "ws"
    (workspace / "deep" / "er").mkdir(parents=True)
    payload = os.urandom(3 * 1024 * 1024)  # several messages on the stream
    (workspace / "deep" / "er" / "blob.bin").write_bytes(payload)
    (workspace / "notes.txt").write_text("hello\n")
    shell = await open_shell(backend_for(heartbeat=0.05), tmp_path)
    code, out = await run(shell, "sha256sum deep/er/blob.bin; cat notes.txt; touch new; id -u")
    assert code == 0
    assert out.split("\n")[0].split()[0] == hashlib.sha256(payload).hexdigest()
    assert out.split("\n")[1:] == ["hello", "1000", ""]
    assert not (workspace / "new").exists()


async def test_a_missing_namespace_says_what_to_apply(kube, tmp_path):
    backend = KubernetesBackend(kube_settings(kube, "no-such-namespace"))
    try:
        with pytest.raises(SandboxUnavailable) as error:
            await open_shell(backend, tmp_path)
        assert 'namespaces "no-such-namespace" not found' in str(error.value)
        assert "deploy/kubernetes/namespace.yaml" in str(error.value)
    finally:
        await backend.close()


async def test_pid_1_reaps_the_orphans_of_commands(backend_for, tmp_path):
    shell = await open_shell(backend_for(), tmp_path)
    await run(shell, "(sleep 0.2 &); (sleep 0.3 &); true")
    code, out = await run(shell, "sleep 1; ps -eo stat= | grep -c '^Z' || true")
    assert (code, out) == (0, "0\n")
    assert (await run(shell, "ps -o args= -p 1"))[1].startswith("/bin/sh -c trap")
