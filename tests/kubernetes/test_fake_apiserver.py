"""The fake Kubernetes API server, proven through the real client (kubernetes_asyncio).

Every behaviour the Kubernetes backend will lean on is shown here the way the backend
will meet it: REST answers and errors, watches, patches with preconditions, graceful
deletion, garbage collection, pod phases driven by real containers, exec over v4 and v5
websockets, the fault switches, Pod Security Admission and the agent-sandbox controllers.
Waiting is always on a watch event or a bounded poll, never on a sleep.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.stream import WsApiClient

from tests.conftest import TEST_IMAGE
from tests.fakes.kube import FakeKube
from tests.fakes.kube import resources as kinds

pytestmark = pytest.mark.docker

V5_FIRST = {"sec-websocket-protocol": "v5.channel.k8s.io,v4.channel.k8s.io"}
V4_ONLY = {"sec-websocket-protocol": "v4.channel.k8s.io"}
MERGE = "application/merge-patch+json"
RESTRICTED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
}
RESTRICTED_POD = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                  "seccompProfile": {"type": "RuntimeDefault"}}  # fmt: skip
Pred = Callable[[dict[str, Any]], bool]


def pod_body(name: str = "", *command: str, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": TEST_IMAGE}
    container["command"] = list(command) or ["sleep", "300"]
    container.update(spec.pop("container", {}))
    meta: dict[str, Any] = {"name": name} if name else {"generateName": "pod-"}
    meta.update(spec.pop("metadata", {}))
    return {
        "metadata": meta,
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            **spec,
        },
    }


@pytest.fixture
async def api(kube_config):
    async with client.ApiClient(kube_config) as api_client:
        yield api_client


@pytest.fixture
async def ws_api(kube_config):
    async with WsApiClient(kube_config) as api_client:
        yield api_client


@pytest.fixture
def core(api) -> client.CoreV1Api:
    return client.CoreV1Api(api)


async def wait_pod(
    core: client.CoreV1Api, ns: str, name: str, pred: Pred, timeout: int = 90
) -> dict[str, Any]:
    """The pod as it first satisfies ``pred``, waiting on the watch (ADDED replays the present)."""
    events = watch.Watch()
    async with asyncio.timeout(timeout + 5):
        async for event in events.stream(
            core.list_namespaced_pod,
            ns,
            field_selector=f"metadata.name={name}",
            timeout_seconds=timeout,
        ):
            if event["type"] != "DELETED" and pred(event["raw_object"]):
                await events.close()
                return event["raw_object"]
    raise AssertionError(f"pod {name} never got there")


async def wait_deleted(
    core: client.CoreV1Api, ns: str, name: str, since: str, timeout: int = 90
) -> None:
    events = watch.Watch()
    async with asyncio.timeout(timeout + 5):
        async for event in events.stream(
            core.list_namespaced_pod, ns, field_selector=f"metadata.name={name}",
            resource_version=since, timeout_seconds=timeout,
        ):  # fmt: skip
            if event["type"] == "DELETED":
                await events.close()
                return
    raise AssertionError(f"pod {name} was never deleted")


def phase(wanted: str) -> Pred:
    return lambda pod: pod["status"].get("phase") == wanted


def waiting_reason(*reasons: str) -> Pred:
    def check(pod: dict[str, Any]) -> bool:
        statuses = pod["status"].get("containerStatuses") or [{}]
        return (statuses[0].get("state", {}).get("waiting") or {}).get("reason") in reasons

    return check


async def running_pod(core: client.CoreV1Api, ns: str, body: dict[str, Any] | None = None) -> str:
    created = await core.create_namespaced_pod(ns, body or pod_body())
    await wait_pod(core, ns, created.metadata.name, phase("Running"))
    return str(created.metadata.name)


async def until(check: Callable[[], Any], timeout: float = 90) -> Any:
    """Poll ``check`` (a coroutine function) until it returns something truthy."""
    async with asyncio.timeout(timeout):
        while not (result := await check()):  # noqa: ASYNC110 (polling the API, on purpose)
            await asyncio.sleep(0.1)
    return result


async def open_exec(
    ws_api, ns: str, name: str, command: list[str], headers: dict[str, str], **flags: Any
) -> Any:
    """The websocket context manager for an exec, as a backend would open it."""
    v1 = client.CoreV1Api(ws_api)
    options = {"stdin": True, "stdout": True, "stderr": True, "tty": False, **flags}
    return await v1.connect_get_namespaced_pod_exec(
        name, ns, command=command, _preload_content=False, _headers=headers, **options
    )


async def collect(ws) -> tuple[bytes, bytes, dict[str, Any] | None]:
    """Everything until the server closes: stdout, stderr and the status on channel 3."""
    out, err, status = bytearray(), bytearray(), None
    async with asyncio.timeout(60):
        async for message in ws:
            if message.type != aiohttp.WSMsgType.BINARY:
                continue
            channel, data = message.data[0], message.data[1:]
            if channel == 1:
                out += data
            elif channel == 2:
                err += data
            elif channel == 3:
                status = json.loads(data)
    return bytes(out), bytes(err), status


# -- REST ------------------------------------------------------------------------------
async def test_discovery_lists_the_served_groups(api):
    assert (await client.VersionApi(api).get_code()).git_version.startswith("v1.")
    groups = {g.name for g in (await client.ApisApi(api).get_api_versions()).groups}
    assert {
        "coordination.k8s.io",
        "networking.k8s.io",
        "agents.x-k8s.io",
        "extensions.agents.x-k8s.io",
    } <= groups
    resources = await client.CoreV1Api(api).get_api_resources()
    assert {"pods", "pods/exec", "namespaces"} <= {r.name for r in resources.resources}


async def test_generate_name_uid_and_one_resource_version_counter(api, kube_namespace):
    leases = client.CoordinationV1Api(api)
    first = await leases.create_namespaced_lease(
        kube_namespace, {"metadata": {"generateName": "lock-"}}
    )
    second = await leases.create_namespaced_lease(
        kube_namespace, {"metadata": {"generateName": "lock-"}}
    )
    assert first.metadata.name.startswith("lock-")
    assert len(first.metadata.name) == len("lock-") + 5
    assert first.metadata.name != second.metadata.name
    assert first.metadata.uid != second.metadata.uid
    assert int(second.metadata.resource_version) > int(first.metadata.resource_version)
    assert first.metadata.creation_timestamp is not None


async def test_errors_are_status_objects_with_the_real_codes(core, kube_namespace):
    with pytest.raises(ApiException) as missing:
        await core.read_namespaced_pod("nope", kube_namespace)
    body = json.loads(missing.value.body)
    assert (missing.value.status, body["reason"], body["message"]) == (
        404,
        "NotFound",
        'pods "nope" not found',
    )
    assert body["details"] == {"name": "nope", "kind": "pods"}

    with pytest.raises(ApiException) as no_namespace:
        await core.create_namespaced_pod("absent", pod_body("x"))
    assert no_namespace.value.status == 404
    assert json.loads(no_namespace.value.body)["message"] == 'namespaces "absent" not found'

    await core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "twice"}})
    with pytest.raises(ApiException) as twice:
        await core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "twice"}})
    assert (twice.value.status, json.loads(twice.value.body)["reason"]) == (409, "AlreadyExists")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": {"name": "empty"}, "spec": {"containers": []}}, "spec.containers"),
        (pod_body("Bad_Name"), "metadata.name"),
        (pod_body("ok", metadata={"labels": {"bad key!": "v"}}), "metadata.labels"),
        (pod_body("ok", metadata={"labels": {"k": "-not-valid-"}}), "metadata.labels"),
        (pod_body("ok", container={"image": ""}), "spec.containers[0].image"),
    ],
)
async def test_what_validation_rejects_is_422(core, kube_namespace, body, field):
    with pytest.raises(ApiException) as rejected:
        await core.create_namespaced_pod(kube_namespace, body)
    status = json.loads(rejected.value.body)
    assert (rejected.value.status, status["reason"]) == (422, "Invalid")
    assert field in [cause["field"] for cause in status["details"]["causes"]]
    assert status["message"].startswith(f'Pod "{body["metadata"]["name"]}" is invalid: ')


async def test_label_and_field_selectors(core, kube_namespace):
    for name, labels in (("a", {"tier": "web", "env": "prod"}), ("b", {"tier": "db"}), ("c", {})):
        await core.create_namespaced_config_map(
            kube_namespace, {"metadata": {"name": name, "labels": labels}}
        )

    async def names(**selectors: str) -> list[str]:
        found = await core.list_namespaced_config_map(kube_namespace, **selectors)
        return sorted(i.metadata.name for i in found.items if i.metadata.name != "kube-root-ca.crt")

    assert await names(label_selector="tier=web") == ["a"]
    assert await names(label_selector="tier!=web") == ["b", "c"]
    assert await names(label_selector="tier in (web,db)") == ["a", "b"]
    assert await names(label_selector="tier notin (web)") == ["b", "c"]
    assert await names(label_selector="env") == ["a"]
    assert await names(label_selector="!env,tier") == ["b"]
    assert await names(field_selector="metadata.name=b") == ["b"]
    assert await names(field_selector="metadata.name!=b") == ["a", "c"]
    with pytest.raises(ApiException) as bad:
        await names(field_selector="spec.nothing=1")
    assert bad.value.status == 400


async def test_pod_field_selector_on_phase(core, kube_namespace):
    name = await running_pod(core, kube_namespace)
    running = await core.list_namespaced_pod(kube_namespace, field_selector="status.phase=Running")
    pending = await core.list_namespaced_pod(kube_namespace, field_selector="status.phase=Pending")
    assert [p.metadata.name for p in running.items] == [name]
    assert pending.items == []


async def test_watch_replays_changes_in_order_from_a_resource_version(api, kube_namespace):
    leases = client.CoordinationV1Api(api)
    created = await leases.create_namespaced_lease(
        kube_namespace, {"metadata": {"name": "w"}, "spec": {"holderIdentity": "a"}}
    )
    await leases.patch_namespaced_lease("w", kube_namespace, {"spec": {"holderIdentity": "b"}})
    await leases.delete_namespaced_lease("w", kube_namespace)
    seen = []
    events = watch.Watch()
    async with asyncio.timeout(30):
        async for event in events.stream(
            leases.list_namespaced_lease, kube_namespace,
            resource_version=created.metadata.resource_version, timeout_seconds=5,
        ):  # fmt: skip
            seen.append((event["type"], event["object"].spec.holder_identity))
            if event["type"] == "DELETED":
                break
    await events.close()
    assert seen == [("MODIFIED", "b"), ("DELETED", "b")]


async def test_watch_from_a_compacted_resource_version_is_410(api, kube, kube_namespace):
    leases = client.CoordinationV1Api(api)
    old = await leases.create_namespaced_lease(kube_namespace, {"metadata": {"name": "old"}})
    await leases.patch_namespaced_lease("old", kube_namespace, {"metadata": {"labels": {"x": "1"}}})
    kube.compact()
    events = watch.Watch()

    async def drain() -> None:
        async with asyncio.timeout(30):
            async for _ in events.stream(
                leases.list_namespaced_lease, kube_namespace,
                resource_version=old.metadata.resource_version, timeout_seconds=5,
            ):  # fmt: skip
                pass

    with pytest.raises(ApiException) as expired:
        await drain()
    await events.close()
    assert expired.value.status == 410


async def test_patch_types_and_resource_version_preconditions(api, kube_namespace):
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease(
        kube_namespace, {"metadata": {"name": "claim", "labels": {"owner": ""}}}
    )
    stale = lease.metadata.resource_version
    claimed = await leases.patch_namespaced_lease(
        "claim", kube_namespace,
        {"metadata": {"labels": {"owner": "runner-1"}, "resourceVersion": stale}},
        _content_type=MERGE,
    )  # fmt: skip
    assert claimed.metadata.labels == {"owner": "runner-1"}
    with pytest.raises(ApiException) as lost:
        await leases.patch_namespaced_lease(
            "claim", kube_namespace,
            {"metadata": {"labels": {"owner": "runner-2"}, "resourceVersion": stale}},
            _content_type=MERGE,
        )  # fmt: skip
    assert (lost.value.status, json.loads(lost.value.body)["reason"]) == (409, "Conflict")
    strategic = await leases.patch_namespaced_lease(
        "claim", kube_namespace, {"metadata": {"annotations": {"a": "1"}}}
    )
    assert strategic.metadata.annotations == {"a": "1"}
    removed = await leases.patch_namespaced_lease(
        "claim", kube_namespace, [{"op": "remove", "path": "/metadata/annotations/a"}]
    )
    assert not removed.metadata.annotations
    with pytest.raises(ApiException) as failed_test:
        await leases.patch_namespaced_lease(
            "claim", kube_namespace,
            [{"op": "test", "path": "/metadata/resourceVersion", "value": stale},
             {"op": "replace", "path": "/metadata/labels/owner", "value": "runner-3"}],
        )  # fmt: skip
    assert failed_test.value.status == 422
    current = await leases.read_namespaced_lease("claim", kube_namespace)
    assert current.metadata.labels == {"owner": "runner-1"}


async def test_update_with_a_stale_resource_version_is_409(api, kube_namespace):
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease(kube_namespace, {"metadata": {"name": "put"}})
    body = lease.to_dict()
    lease.spec = client.V1LeaseSpec(holder_identity="first")
    await leases.replace_namespaced_lease("put", kube_namespace, lease)
    body_stale = client.V1Lease(
        metadata=client.V1ObjectMeta(
            name="put", resource_version=body["metadata"]["resource_version"]
        )
    )
    with pytest.raises(ApiException) as conflict:
        await leases.replace_namespaced_lease("put", kube_namespace, body_stale)
    assert conflict.value.status == 409


async def test_network_policies_are_stored(api, kube_namespace):
    networking = client.NetworkingV1Api(api)
    policy = {
        "metadata": {"name": "deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    await networking.create_namespaced_network_policy(kube_namespace, policy)
    found = await networking.read_namespaced_network_policy("deny", kube_namespace)
    assert found.spec.policy_types == ["Ingress", "Egress"]
    await networking.delete_namespaced_network_policy("deny", kube_namespace)
    assert (await networking.list_namespaced_network_policy(kube_namespace)).items == []


async def test_unauthenticated_requests_are_401(kube):
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{kube.url}/api/v1/namespaces") as response,
    ):
        assert response.status == 401
        assert (await response.json())["reason"] == "Unauthorized"


# -- pods ------------------------------------------------------------------------------
async def test_pod_runs_then_succeeds(core, kube_namespace):
    created = await core.create_namespaced_pod(
        kube_namespace, pod_body("", "sh", "-c", "echo done")
    )
    assert created.status.phase == "Pending"
    pod = await wait_pod(core, kube_namespace, created.metadata.name, phase("Succeeded"))
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    log = await core.read_namespaced_pod_log(created.metadata.name, kube_namespace)
    assert log == "done\n"


async def test_running_pod_is_ready_with_an_ip(core, kube_namespace):
    name = await running_pod(core, kube_namespace)
    pod = await core.read_namespaced_pod(name, kube_namespace)
    assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    assert pod.status.container_statuses[0].state.running.started_at is not None
    assert pod.status.pod_ip
    assert pod.spec.node_name


async def test_pod_fails_with_its_exit_code(core, kube_namespace):
    created = await core.create_namespaced_pod(kube_namespace, pod_body("", "sh", "-c", "exit 3"))
    pod = await wait_pod(core, kube_namespace, created.metadata.name, phase("Failed"))
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")


async def test_memory_limit_gives_oom_killed(core, kube_namespace):
    body = pod_body(
        "", "python3", "-c", "x = bytearray(512 * 1024 * 1024)",
        container={"resources": {"limits": {"memory": "32Mi"}}},
    )  # fmt: skip
    created = await core.create_namespaced_pod(kube_namespace, body)
    pod = await wait_pod(core, kube_namespace, created.metadata.name, phase("Failed"))
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "OOMKilled"


async def test_active_deadline_fails_the_pod(core, kube, kube_namespace):
    created = await core.create_namespaced_pod(kube_namespace, pod_body(activeDeadlineSeconds=2))
    pod = await wait_pod(core, kube_namespace, created.metadata.name, phase("Failed"))
    assert pod["status"]["reason"] == "DeadlineExceeded"
    container = kube.container_of(created.metadata.name, kube_namespace)
    assert container is not None
    assert not any(c["Id"] == container and c["State"] == "running" for c in kube.containers())


async def test_missing_image_stays_pending_with_image_pull_errors(core, kube_namespace):
    body = pod_body(container={"image": "stigmer/does-not-exist:never"})
    created = await core.create_namespaced_pod(kube_namespace, body)
    await wait_pod(core, kube_namespace, created.metadata.name, waiting_reason("ErrImagePull"))
    pod = await wait_pod(
        core, kube_namespace, created.metadata.name, waiting_reason("ImagePullBackOff")
    )
    assert pod["status"]["phase"] == "Pending"


async def test_run_as_non_root_with_a_root_image_is_a_config_error(core, kube_namespace):
    body = pod_body(securityContext={"runAsNonRoot": True})
    created = await core.create_namespaced_pod(kube_namespace, body)
    pod = await wait_pod(
        core, kube_namespace, created.metadata.name, waiting_reason("CreateContainerConfigError")
    )
    assert (
        "image will run as root"
        in pod["status"]["containerStatuses"][0]["state"]["waiting"]["message"]
    )


async def test_stuck_pending_pod_is_unschedulable(core, kube, kube_namespace):
    kube.faults.stuck_pending(labels={"stuck": "yes"})
    created = await core.create_namespaced_pod(
        kube_namespace, pod_body(metadata={"labels": {"stuck": "yes"}})
    )
    pod = await wait_pod(
        core, kube_namespace, created.metadata.name,
        lambda p: any(c.get("reason") == "Unschedulable" for c in p["status"].get("conditions") or []),
    )  # fmt: skip
    assert pod["status"]["phase"] == "Pending"
    assert not pod["spec"].get("nodeName")


async def test_killed_container_fails_the_pod(core, kube, kube_namespace):
    name = await running_pod(core, kube_namespace)
    kube.kill_pod_container(name, kube_namespace)
    pod = await wait_pod(core, kube_namespace, name, phase("Failed"))
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137


async def test_graceful_delete_marks_then_removes_the_pod(core, kube, kube_namespace):
    name = await running_pod(core, kube_namespace)
    container = kube.container_of(name, kube_namespace)
    deleted = await core.delete_namespaced_pod(name, kube_namespace, grace_period_seconds=2)
    assert deleted.metadata.deletion_timestamp is not None
    assert deleted.metadata.deletion_grace_period_seconds == 2
    await wait_deleted(core, kube_namespace, name, deleted.metadata.resource_version)
    await until(lambda: _gone(kube, container))


async def _gone(kube: FakeKube, container: str | None) -> bool:
    return all(c["Id"] != container for c in kube.containers())


async def test_pods_owned_by_a_lease_go_with_it(api, core, kube_namespace):
    leases = client.CoordinationV1Api(api)
    lease = await leases.create_namespaced_lease(kube_namespace, {"metadata": {"name": "session"}})
    owner = {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "name": "session",
        "uid": lease.metadata.uid,
    }
    name = await running_pod(core, kube_namespace, pod_body(metadata={"ownerReferences": [owner]}))
    deleted = await leases.delete_namespaced_lease("session", kube_namespace)
    await wait_deleted(core, kube_namespace, name, deleted.metadata.resource_version)


async def test_psa_restricted_rejects_and_admits(core, kube_namespace):
    await core.patch_namespace(
        kube_namespace,
        {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}},
    )
    with pytest.raises(ApiException) as rejected:
        await core.create_namespaced_pod(kube_namespace, pod_body("loose"))
    status = json.loads(rejected.value.body)
    assert (rejected.value.status, status["reason"]) == (403, "Forbidden")
    assert status["message"].startswith(
        'pods "loose" is forbidden: violates PodSecurity "restricted:latest": '
    )
    for check in (
        "allowPrivilegeEscalation != false",
        "unrestricted capabilities",
        "runAsNonRoot != true",
        "seccompProfile",
    ):
        assert check in status["message"]
    hostpath = pod_body("host", volumes=[{"name": "h", "hostPath": {"path": "/"}}], securityContext=RESTRICTED_POD,
                        container={"securityContext": RESTRICTED_CONTAINER})  # fmt: skip
    with pytest.raises(ApiException) as host:
        await core.create_namespaced_pod(kube_namespace, hostpath)
    assert (
        'restricted volume types (volume "h" uses restricted volume type "hostPath")'
        in json.loads(host.value.body)["message"]
    )
    body = pod_body(
        "tight", securityContext=RESTRICTED_POD, container={"securityContext": RESTRICTED_CONTAINER}
    )
    await running_pod(core, kube_namespace, body)


# -- exec ------------------------------------------------------------------------------
async def test_exec_v5_closes_stdin_with_the_close_message(core, ws_api, kube_namespace):
    name = await running_pod(core, kube_namespace)
    async with await open_exec(
        ws_api, kube_namespace, name, ["sh", "-c", "cat; echo eof"], V5_FIRST
    ) as ws:
        assert ws._response.headers["Sec-WebSocket-Protocol"] == "v5.channel.k8s.io"
        await ws.send_bytes(b"\x00hello\n")
        await ws.send_bytes(b"\xff\x00")
        out, err, status = await collect(ws)
    assert (out, err) == (b"hello\neof\n", b"")
    assert status == {"metadata": {}, "status": "Success"}


async def test_exec_v4_keeps_stdin_open(core, kube, ws_api, kube_namespace):
    kube.faults.v4only = True
    name = await running_pod(core, kube_namespace)
    script = 'while read line; do echo got:$line; [ "$line" = bye ] && exit 0; done; echo eof'
    async with await open_exec(ws_api, kube_namespace, name, ["sh", "-c", script], V5_FIRST) as ws:
        assert ws._response.headers["Sec-WebSocket-Protocol"] == "v4.channel.k8s.io"
        await ws.send_bytes(b"\x00one\n")
        await ws.send_bytes(b"\xff\x00")  # no meaning under v4: stdin stays open
        await ws.send_bytes(b"\x00bye\n")
        out, _, status = await collect(ws)
    assert out == b"got:one\ngot:bye\n"
    assert status is not None
    assert status["status"] == "Success"


async def test_exec_exit_code_is_in_the_status(core, ws_api, kube_namespace):
    name = await running_pod(core, kube_namespace)
    async with await open_exec(
        ws_api,
        kube_namespace,
        name,
        ["sh", "-c", "echo out; echo err >&2; exit 3"],
        V4_ONLY,
        stdin=False,
    ) as ws:
        out, err, status = await collect(ws)
    assert (out, err) == (b"out\n", b"err\n")
    assert status is not None
    assert status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    assert WsApiClient.parse_error_data(json.dumps(status)) == 3


@pytest.mark.parametrize("spelling", ["1", "t", "TRUE", "True", "true"])
async def test_exec_booleans_are_parsed_as_go_does(core, kube, kube_namespace, spelling):
    name = await running_pod(core, kube_namespace)
    url = f"{kube.url}/api/v1/namespaces/{kube_namespace}/pods/{name}/exec?command=cat&stdin={spelling}&stdout={spelling}"
    headers = {"Authorization": f"Bearer {kube.token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(url, headers=headers, protocols=["v5.channel.k8s.io"]) as ws,
    ):
        await ws.send_bytes(b"\x00ping")
        await ws.send_bytes(b"\xff\x00")
        out, _, status = await collect(ws)
    assert out == b"ping"
    assert status == {"metadata": {}, "status": "Success"}


async def test_exec_protocol_follows_the_clients_order(core, kube, kube_namespace):
    name = await running_pod(core, kube_namespace)
    url = f"{kube.url}/api/v1/namespaces/{kube_namespace}/pods/{name}/exec?command=echo&command=hi&stdout=1"
    headers = {"Authorization": f"Bearer {kube.token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        offered = ["v4.base64.channel.k8s.io", "v5.channel.k8s.io"]
        async with session.ws_connect(url, protocols=offered) as ws:
            assert ws.protocol == "v4.base64.channel.k8s.io"
            texts = [m.data async for m in ws if m.type == aiohttp.WSMsgType.TEXT]
        assert texts[0] == "1"  # the empty message that opens stdout
        assert base64.b64decode(texts[1][1:]) == b"hi\n"
        assert texts[-1][0] == "3"
        assert json.loads(base64.b64decode(texts[-1][1:]))["status"] == "Success"
        with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
            async with session.ws_connect(url, protocols=["v9.channel.k8s.io"]):
                pass
        assert unknown.value.status == 403


async def test_exec_into_a_pod_that_is_not_running(core, ws_api, kube, kube_namespace):
    kube.faults.stuck_pending(name="parked")
    await core.create_namespaced_pod(kube_namespace, pod_body("parked"))
    with pytest.raises(aiohttp.WSServerHandshakeError) as unscheduled:
        async with await open_exec(ws_api, kube_namespace, "parked", ["true"], V5_FIRST):
            pass
    assert unscheduled.value.status == 400
    kube.faults.unstick()
    body = pod_body("pulling", container={"image": "stigmer/does-not-exist:never"})
    await core.create_namespaced_pod(kube_namespace, body)
    await wait_pod(
        core, kube_namespace, "pulling", waiting_reason("ErrImagePull", "ImagePullBackOff")
    )
    with pytest.raises(aiohttp.WSServerHandshakeError) as v4:
        async with await open_exec(ws_api, kube_namespace, "pulling", ["true"], V4_ONLY):
            pass
    assert v4.value.status == 500
    async with await open_exec(ws_api, kube_namespace, "pulling", ["true"], V5_FIRST) as ws:
        _, _, status = await collect(ws)
    assert status is not None
    assert status["reason"] == "InternalError"
    assert 'container not found ("main")' in status["message"]


async def test_exec_with_an_unknown_container_is_400(core, kube, kube_namespace):
    name = await running_pod(core, kube_namespace)
    url = f"{kube.url}/api/v1/namespaces/{kube_namespace}/pods/{name}/exec?command=true&stdout=1&container=other"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {kube.token}"}) as session,
        session.get(url) as response,
    ):
        assert response.status == 400
        assert (await response.json())["message"] == f"container other is not valid for pod {name}"


async def test_idle_exec_is_cut(core, kube, ws_api, kube_namespace):
    name = await running_pod(core, kube_namespace)
    kube.faults.cut_idle_exec_after(0.5)
    async with await open_exec(ws_api, kube_namespace, name, ["sleep", "30"], V5_FIRST) as ws:
        out, _, status = await collect(ws)
    assert (out, status) == (b"", None)


async def test_reset_drops_open_exec_streams(core, kube, ws_api, kube_namespace):
    name = await running_pod(core, kube_namespace)
    async with await open_exec(
        ws_api, kube_namespace, name, ["sh", "-c", "echo started; sleep 30"], V5_FIRST
    ) as ws:
        async with asyncio.timeout(30):
            while (await ws.receive_bytes()) != b"\x01started\n":
                pass
        assert kube.faults.reset_exec_streams() == 1
        _out, _, status = await collect(ws)
    assert status is None


async def test_hung_exec_handshake_is_left_to_the_client_timeout(
    core, kube, ws_api, kube_namespace
):
    name = await running_pod(core, kube_namespace)
    kube.faults.hang_exec_handshake()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1):
            await (await open_exec(ws_api, kube_namespace, name, ["true"], V5_FIRST)).__aenter__()
    kube.faults.hang_exec_handshake(False)
    async with await open_exec(ws_api, kube_namespace, name, ["true"], V5_FIRST, stdin=False) as ws:
        _, _, status = await collect(ws)
    assert status is not None
    assert status["status"] == "Success"


async def test_forbidden_exec_is_rbac_403(core, kube, ws_api, kube_namespace):
    name = await running_pod(core, kube_namespace)
    kube.faults.forbid_exec()
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        async with await open_exec(ws_api, kube_namespace, name, ["true"], V5_FIRST):
            pass
    assert refused.value.status == 403
    url = f"{kube.url}/api/v1/namespaces/{kube_namespace}/pods/{name}/exec?command=true&stdout=1"
    async with (
        aiohttp.ClientSession(headers={"Authorization": f"Bearer {kube.token}"}) as session,
        session.get(url) as response,
    ):
        message = (await response.json())["message"]
    assert message == (
        f'pods "{name}" is forbidden: User "{kube.user}" cannot create resource "pods/exec" '
        f'in API group "" in the namespace "{kube_namespace}"'
    )


# -- agent-sandbox ---------------------------------------------------------------------
GROUP, VERSION = "extensions.agents.x-k8s.io", "v1beta1"


def template_body(name: str, **extra: Any) -> dict[str, Any]:
    pod = pod_body()
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SandboxTemplate",
        "metadata": {"name": name},
        "spec": {
            "podTemplate": {"metadata": {"labels": {"app": "agent"}}, "spec": pod["spec"]},
            **extra,
        },
    }


async def custom(
    objects: client.CustomObjectsApi, ns: str, plural: str, name: str, group: str = GROUP
) -> dict[str, Any]:
    return await objects.get_namespaced_custom_object(group, VERSION, ns, plural, name)


async def test_warm_pool_claim_binds_a_ready_sandbox(api, core, kube_namespace):
    objects = client.CustomObjectsApi(api)
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxtemplates", template_body("tpl")
    )
    pool = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxWarmPool", "metadata": {"name": "pool"},
            "spec": {"replicas": 1, "sandboxTemplateRef": {"name": "tpl"}}}  # fmt: skip
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxwarmpools", pool
    )

    async def pool_ready() -> bool:
        found = await custom(objects, kube_namespace, "sandboxwarmpools", "pool")
        return (found.get("status") or {}).get("readyReplicas") == 1

    await until(pool_ready)
    listed = await objects.list_namespaced_custom_object(
        "agents.x-k8s.io", VERSION, kube_namespace, "sandboxes"
    )
    warm = listed["items"][0]["metadata"]["name"]
    assert warm.startswith("pool-")
    claim = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxClaim", "metadata": {"name": "job-1"},
             "spec": {"warmPoolRef": {"name": "pool"}}}  # fmt: skip
    created = await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxclaims", claim
    )

    async def bound() -> dict[str, Any] | None:
        found = await custom(objects, kube_namespace, "sandboxclaims", "job-1")
        ready = [
            c for c in (found.get("status") or {}).get("conditions") or [] if c["type"] == "Ready"
        ]
        return found if ready and ready[0]["status"] == "True" else None

    claimed = await until(bound)
    assert claimed["status"]["sandbox"]["name"] == warm
    sandbox = await custom(objects, kube_namespace, "sandboxes", warm, "agents.x-k8s.io")
    assert sandbox["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert sandbox["metadata"]["annotations"]["agents.x-k8s.io/pod-name"] == warm
    assert sandbox["metadata"]["labels"]["agents.x-k8s.io/launch-type"] == "warm"
    pod = await core.read_namespaced_pod(warm, kube_namespace)
    assert pod.metadata.labels["agents.x-k8s.io/claim-uid"] == created["metadata"]["uid"]
    await until(pool_ready)  # the pool refills
    deleted = await objects.delete_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxclaims", "job-1"
    )
    await wait_deleted(core, kube_namespace, warm, deleted["metadata"]["resourceVersion"])


async def test_claim_with_env_starts_cold(api, core, kube_namespace):
    objects = client.CustomObjectsApi(api)
    template = template_body("tpl", envVarsInjectionPolicy="Allowed")
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxtemplates", template
    )
    pool = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxWarmPool", "metadata": {"name": "pool"},
            "spec": {"replicas": 1, "sandboxTemplateRef": {"name": "tpl"}}}  # fmt: skip
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxwarmpools", pool
    )
    claim = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "SandboxClaim", "metadata": {"name": "with-env"},
             "spec": {"warmPoolRef": {"name": "pool"}, "env": [{"name": "TASK", "value": "42"}]}}  # fmt: skip
    await objects.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, "sandboxclaims", claim
    )
    pod = await wait_pod(core, kube_namespace, "with-env", phase("Running"))
    assert {"name": "TASK", "value": "42"} in pod["spec"]["containers"][0]["env"]
    sandbox = await custom(objects, kube_namespace, "sandboxes", "with-env", "agents.x-k8s.io")
    assert sandbox["metadata"]["labels"]["agents.x-k8s.io/launch-type"] == "cold"


async def test_claim_without_warm_pool_ref_is_422(api, kube_namespace):
    objects = client.CustomObjectsApi(api)
    claim = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SandboxClaim",
        "metadata": {"name": "bad"},
        "spec": {},
    }
    with pytest.raises(ApiException) as rejected:
        await objects.create_namespaced_custom_object(
            GROUP, VERSION, kube_namespace, "sandboxclaims", claim
        )
    assert rejected.value.status == 422
    assert json.loads(rejected.value.body)["message"].startswith(
        'SandboxClaim.extensions.agents.x-k8s.io "bad" is invalid'
    )


# -- the fake itself -------------------------------------------------------------------
async def test_requests_are_counted_by_verb_and_resource(api, kube, kube_namespace):
    before = kube.faults.counts()
    await client.CoreV1Api(api).list_namespaced_pod(kube_namespace)
    after = kube.faults.counts()
    assert after[("list", "pods")] == before[("list", "pods")] + 1


def test_stopping_the_fake_removes_its_containers(sandbox_image):
    with FakeKube() as fake:

        async def scenario() -> None:
            from kubernetes_asyncio import config

            configuration = client.Configuration()
            await config.load_kube_config(
                config_file=str(fake.kubeconfig), client_configuration=configuration
            )
            async with client.ApiClient(configuration) as api_client:
                core = client.CoreV1Api(api_client)
                await running_pod(core, "default", pod_body("alive"))
                failed = await core.create_namespaced_pod(
                    "default", pod_body("", "sh", "-c", "exit 1")
                )
                await wait_pod(core, "default", failed.metadata.name, phase("Failed"))

        asyncio.run(scenario())
        assert len(fake.containers()) == 2
        assert fake.get(kinds.PODS, "alive") is not None
    import docker

    engine = docker.APIClient(version="auto")
    left = engine.containers(
        all=True, filters={"label": f"stigmer.test-fake.instance={fake.instance}"}
    )
    engine.close()
    assert left == []
