"""What the kubelet reports about a pod: phase, conditions and container statuses.

Mirrors pkg/kubelet/kubelet_pods.go (generateAPIPodStatus, getPhase) and
pkg/kubelet/status (conditions with ``lastTransitionTime`` moving only on a change):
``Pending`` with a ``waiting`` reason, ``Running`` with every condition True,
``Succeeded``/``Failed`` with ``terminated`` (and ``PodCompleted`` on Ready),
``CrashLoopBackOff`` between restarts, ``DeadlineExceeded``. ``PodStatusWriter`` is the
half of a pod worker that writes these; kubelet.py is the half that acts.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.store import now_rfc3339

if TYPE_CHECKING:
    from tests.fakes.kube.kubelet import Kubelet

Object = dict[str, Any]
NODE_IP = "10.0.0.10"
_fake_ips = itertools.count(2)


def docker_time(stamp: str | None) -> str:
    """Docker's nanosecond timestamps as the seconds-precision RFC 3339 of the API."""
    if not stamp or stamp.startswith("0001"):
        return now_rfc3339()
    return stamp.split(".")[0].rstrip("Z") + "Z"


def set_condition(
    status: Object, kind: str, value: bool, reason: str | None = None, message: str | None = None
) -> None:
    conditions = status.setdefault("conditions", [])
    text = "True" if value else "False"
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != text:
                condition["lastTransitionTime"] = now_rfc3339()
            condition["status"] = text
            break
    else:
        condition = {
            "type": kind,
            "status": text,
            "lastProbeTime": None,
            "lastTransitionTime": now_rfc3339(),
        }
        conditions.append(condition)
    for key, val in (("reason", reason), ("message", message)):
        if val is None:
            condition.pop(key, None)
        else:
            condition[key] = val


class PodStatusWriter:
    """Status writes for one pod; the worker sets the fields below."""

    kubelet: Kubelet
    namespace: str
    name: str
    uid: str
    container: Object
    container_id: str | None
    image_id: str
    restarts: int
    running: bool

    def _status(self, change: Any) -> None:
        store = self.kubelet.store
        pod = store.get(kinds.PODS, self.namespace, self.name)
        if pod is None or pod["metadata"]["uid"] != self.uid:
            return
        change(pod)
        store.replace(kinds.PODS, pod)

    def _container_status(self, state: Object, ready: bool, last: Object | None = None) -> Object:
        status: Object = {
            "name": self.container["name"],
            "image": self.container["image"],
            "imageID": self.image_id,
            "ready": ready,
            "restartCount": self.restarts,
            "started": "running" in state,
            "state": state,
            "lastState": last or {},
        }
        if self.container_id:
            status["containerID"] = f"docker://{self.container_id}"
        return status

    def _pending(self, reason: str, message: str | None = None) -> None:
        waiting: Object = {"reason": reason}
        if message:
            waiting["message"] = message

        def change(pod: Object) -> None:
            status = pod["status"]
            status["phase"] = "Pending"
            unready = f"containers with unready status: [{self.container['name']}]"
            set_condition(status, "PodReadyToStartContainers", self.container_id is not None)
            set_condition(status, "Initialized", True)
            set_condition(status, "Ready", False, "ContainersNotReady", unready)
            set_condition(status, "ContainersReady", False, "ContainersNotReady", unready)
            status["containerStatuses"] = [self._container_status({"waiting": waiting}, False)]

        self._status(change)

    def _running(self, details: Object, last: Object | None) -> None:
        network = details.get("NetworkSettings") or {}
        ip = network.get("IPAddress") or next(
            (
                n.get("IPAddress")
                for n in (network.get("Networks") or {}).values()
                if n.get("IPAddress")
            ),
            None,
        )
        if details["HostConfig"].get("NetworkMode") == "host":
            ip = NODE_IP
        ip = ip or f"10.244.0.{next(_fake_ips) % 250 + 2}"
        started = docker_time(details["State"].get("StartedAt"))
        self.running = True

        def change(pod: Object) -> None:
            status = pod["status"]
            status["phase"] = "Running"
            status["podIP"], status["podIPs"] = ip, [{"ip": ip}]
            for kind in ("PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready"):
                set_condition(status, kind, True)
            status["containerStatuses"] = [
                self._container_status({"running": {"startedAt": started}}, True, last)
            ]

        self._status(change)

    def _back_off(self, terminated: Object, last: Object) -> None:
        self.running = False
        message = (
            f"back-off {min(2 ** (self.restarts - 1), 10)}s restarting failed "
            f"container={self.container['name']} pod={self.name}_{self.namespace}({self.uid})"
        )

        def change(pod: Object) -> None:
            status = pod["status"]
            unready = f"containers with unready status: [{self.container['name']}]"
            set_condition(status, "Ready", False, "ContainersNotReady", unready)
            set_condition(status, "ContainersReady", False, "ContainersNotReady", unready)
            status["containerStatuses"] = [
                self._container_status(
                    {"waiting": {"reason": "CrashLoopBackOff", "message": message}}, False, last
                )
            ]

        self._status(change)

    async def _finished(self, terminated: Object, last: Object | None) -> None:
        self.running = False
        phase = "Succeeded" if terminated["exitCode"] == 0 else "Failed"

        def change(pod: Object) -> None:
            status = pod["status"]
            status["phase"] = phase
            for kind in ("Ready", "ContainersReady"):
                set_condition(status, kind, False, "PodCompleted")
            set_condition(status, "PodReadyToStartContainers", False)
            status["containerStatuses"] = [
                self._container_status({"terminated": terminated}, False, last)
            ]

        self._status(change)

    def _fail_deadline(self, terminated: Object | None = None) -> None:
        self.running = False

        def change(pod: Object) -> None:
            status = pod["status"]
            status["phase"] = "Failed"
            status["reason"] = "DeadlineExceeded"
            status["message"] = "Pod was active on the node longer than the specified deadline"
            for kind in ("Ready", "ContainersReady"):
                set_condition(status, kind, False, "PodFailed")
            if terminated is not None:
                status["containerStatuses"] = [
                    self._container_status({"terminated": terminated}, False)
                ]

        self._status(change)
