"""The scheduler and the kubelet of a one-node cluster whose pods are Docker containers.

What it reports (phases, conditions, container statuses) is written by pod_status.py;
this module is what it does.

Mirrors what a client sees of kube-scheduler (``spec.nodeName`` and the ``PodScheduled``
condition, or ``Unschedulable`` for a pod the ``stuck_pending`` fault holds back) and of
the kubelet's pod workers (pkg/kubelet/kubelet_pods.go ``generateAPIPodStatus``,
pkg/kubelet/status): ``Pending`` with the container ``waiting`` (``ContainerCreating``,
``ErrImagePull`` then ``ImagePullBackOff`` while the image is missing,
``CreateContainerConfigError`` when runAsNonRoot cannot hold), then ``Running`` with
``Ready``, then ``Succeeded``/``Failed`` with ``state.terminated`` (``Completed``,
``Error``, ``OOMKilled``, ``StartError``); ``restartPolicy`` ``Always``/``OnFailure``
restarts with a (shortened) back-off and ``CrashLoopBackOff``; ``activeDeadlineSeconds``
fails the pod with ``DeadlineExceeded``; a graceful delete sends SIGTERM, SIGKILL after
the grace period, and then lets the object go.

The fake never pulls: an image is either in the local engine or ``ErrImagePull``
(re-checked with back-off, so an image built later is picked up). Only the first
container of a pod runs; init, sidecar and further containers are not emulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from tests.fakes.kube import resources as kinds
from tests.fakes.kube.deletion import Deleter
from tests.fakes.kube.engine import Engine, EngineError
from tests.fakes.kube.faults import Faults
from tests.fakes.kube.pod_status import NODE_IP, PodStatusWriter, docker_time, set_condition
from tests.fakes.kube.podspec import INSTANCE_LABEL, docker_config, non_root_error
from tests.fakes.kube.store import Store, now_rfc3339

Object = dict[str, Any]
log = logging.getLogger(__name__)
NODE = "stigmer-fake-node"
BACKOFF_CAP = 10.0


class PodWorker(PodStatusWriter):
    """Drives one pod from admission to deletion."""

    def __init__(self, kubelet: Kubelet, pod: Object) -> None:
        self.kubelet = kubelet
        meta = pod["metadata"]
        self.namespace, self.name, self.uid = meta.get("namespace", ""), meta["name"], meta["uid"]
        self.spec: Object = pod["spec"]
        self.container: Object = self.spec["containers"][0]
        self.container_id: str | None = None
        self.running = False
        self.restarts = 0
        self.image_id = ""
        self.terminating = asyncio.Event()
        self.grace = 30
        self.grace_changed = asyncio.Event()
        self.deadline = asyncio.Event()
        self.unstuck = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    # -- events from the store -------------------------------------------------------
    def changed(self, pod: Object) -> None:
        meta = pod["metadata"]
        if meta.get("deletionTimestamp"):
            grace = int(meta.get("deletionGracePeriodSeconds") or 0)
            if not self.terminating.is_set() or grace < self.grace:
                self.grace = grace
                self.grace_changed.set()
            self.terminating.set()
        deadline = (pod.get("spec") or {}).get("activeDeadlineSeconds")
        if deadline != self.spec.get("activeDeadlineSeconds"):
            self.spec["activeDeadlineSeconds"] = deadline
            self._arm_deadline()

    def gone(self) -> None:
        self.grace = 0
        self.grace_changed.set()
        self.terminating.set()

    # -- status ----------------------------------------------------------------------
    # -- the pod's life --------------------------------------------------------------
    def start(self) -> None:
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            if not await self._schedule():
                return
            self._admit()
            image = await self._image()
            if image is None:
                return
            refusal = non_root_error(
                self.kubelet.store.get(kinds.PODS, self.namespace, self.name) or {},
                self.container,
                image.get("Config") or {},
            )
            if refusal:
                self._pending("CreateContainerConfigError", refusal)
                await self._until_terminated()
                return
            await self._supervise(image)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("fake kubelet: pod %s/%s", self.namespace, self.name)
        finally:
            if self.terminating.is_set():
                self.kubelet.deleter.pod_terminated(self.namespace, self.name, self.uid)

    async def _schedule(self) -> bool:
        faults: Faults = self.kubelet.faults
        marked = False
        while True:
            pod = self.kubelet.store.get(kinds.PODS, self.namespace, self.name)
            if pod is None or self.terminating.is_set():
                return False
            if not faults.is_stuck(pod):
                break
            if not marked:
                marked = True
                self._status(
                    lambda p: set_condition(
                        p["status"],
                        "PodScheduled",
                        False,
                        "Unschedulable",
                        "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
                        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.",
                    )
                )
            await self._wait(self.terminating, timeout=0.2)

        def bind(pod: Object) -> None:
            pod["spec"]["nodeName"] = NODE
            set_condition(pod["status"], "PodScheduled", True)

        self._status(bind)
        return True

    def _admit(self) -> None:
        def change(pod: Object) -> None:
            pod["status"].update({"hostIP": NODE_IP, "hostIPs": [{"ip": NODE_IP}]})
            pod["status"]["startTime"] = now_rfc3339()

        self._status(change)
        self._pending("ContainerCreating")
        self._arm_deadline()

    def _arm_deadline(self) -> None:
        seconds = self.spec.get("activeDeadlineSeconds")
        if seconds:
            asyncio.get_running_loop().call_later(float(seconds), self.deadline.set)

    async def _wait(self, *events: asyncio.Event, timeout: float | None = None) -> None:
        waiters = [asyncio.ensure_future(e.wait()) for e in events]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _wait_with(self, exited: asyncio.Future[int]) -> None:
        """Until the container exits, the pod is being deleted, or its deadline passes."""
        waiters = [asyncio.ensure_future(e.wait()) for e in (self.terminating, self.deadline)]
        try:
            await asyncio.wait([exited, *waiters], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _until_terminated(self) -> None:
        await self.terminating.wait()

    async def _image(self) -> Object | None:
        engine: Engine = self.kubelet.engine
        name = self.container["image"]
        backoff = 1.0
        attempt = 0
        while not self.terminating.is_set():
            image = await engine.image(name)
            if image is not None:
                self.image_id = f"docker://{image['Id']}"
                return image
            if self.deadline.is_set():
                self._fail_deadline()
                await self._until_terminated()
                return None
            attempt += 1
            if attempt % 2 == 1:
                self._pending(
                    "ErrImagePull",
                    f'Failed to pull image "{name}": rpc error: code = NotFound desc = failed to '
                    f'pull and unpack image "{name}": not found (the fake kubelet never pulls)',
                )
            else:
                self._pending("ImagePullBackOff", f'Back-off pulling image "{name}"')
            await self._wait(self.terminating, self.deadline, timeout=backoff)
            backoff = min(backoff * 2, BACKOFF_CAP)
        return None

    async def _supervise(self, image: Object) -> None:
        engine: Engine = self.kubelet.engine
        pod = self.kubelet.store.get(kinds.PODS, self.namespace, self.name)
        if pod is None:
            return
        config = docker_config(
            pod, self.kubelet.instance, NODE, self.kubelet.network, image.get("Config") or {}
        )
        container_name = f"kube-fake-{self.kubelet.instance}-{self.namespace}-{self.name}"[:200]
        try:
            self.container_id = await engine.create(container_name, config)
        except EngineError as error:
            self._pending("CreateContainerError", error.message)
            await self._until_terminated()
            return
        self.kubelet.containers[self.uid] = self.container_id
        last: Object | None = None
        while True:
            try:
                await engine.start(self.container_id)
            except EngineError as error:
                await self._finished(
                    {"exitCode": 128, "reason": "StartError", "message": error.message}, last
                )
                return
            details = await engine.inspect(self.container_id)
            self._running(details, last)
            exited = asyncio.ensure_future(engine.wait(self.container_id))
            await self._wait_with(exited)
            if self.terminating.is_set() and not exited.done():
                await self._stop(exited)
                await self._finished(await self._terminated(), last)
                return
            if self.deadline.is_set() and not exited.done():
                await engine.kill(self.container_id)
                await exited
                terminated = await self._terminated()
                self._fail_deadline(terminated)
                await self._until_terminated()
                return
            await exited
            terminated = await self._terminated()
            policy = self.spec.get("restartPolicy", "Always")
            if policy == "Never" or (policy == "OnFailure" and terminated["exitCode"] == 0):
                await self._finished(terminated, last)
                await self._until_terminated()
                return
            last = {"terminated": terminated}
            self.restarts += 1
            delay = min(2.0 ** (self.restarts - 1), BACKOFF_CAP)
            self._back_off(terminated, last)
            await self._wait(self.terminating, self.deadline, timeout=delay)
            if self.terminating.is_set():
                await self._finished(terminated, last)
                return
            if self.deadline.is_set():
                self._fail_deadline(terminated)
                await self._until_terminated()
                return

    async def _stop(self, exited: asyncio.Future[int]) -> None:
        """SIGTERM, then SIGKILL once the grace period (possibly shortened) runs out."""
        engine: Engine = self.kubelet.engine
        assert self.container_id is not None
        await engine.kill(self.container_id, "SIGTERM")
        loop = asyncio.get_running_loop()
        while not exited.done():
            self.grace_changed.clear()
            deadline = loop.time() + self.grace
            while not exited.done() and not self.grace_changed.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    await engine.kill(self.container_id, "SIGKILL")
                    break
                changed = asyncio.ensure_future(self.grace_changed.wait())
                try:
                    await asyncio.wait(
                        [exited, changed], timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    changed.cancel()
            if not exited.done() and not self.grace_changed.is_set():
                await exited

    async def _terminated(self) -> Object:
        assert self.container_id is not None
        state = (await self.kubelet.engine.inspect(self.container_id))["State"]
        code = int(state.get("ExitCode", 0))
        reason = "OOMKilled" if state.get("OOMKilled") else ("Completed" if code == 0 else "Error")
        return {
            "exitCode": code,
            "reason": reason,
            "startedAt": docker_time(state.get("StartedAt")),
            "finishedAt": docker_time(state.get("FinishedAt")),
            "containerID": f"docker://{self.container_id}",
        }


class Kubelet:
    def __init__(
        self,
        store: Store,
        deleter: Deleter,
        engine: Engine,
        faults: Faults,
        instance: str,
        network: str,
    ) -> None:
        self.store, self.deleter, self.engine, self.faults = store, deleter, engine, faults
        self.instance, self.network = instance, network
        self.workers: dict[str, PodWorker] = {}
        self.containers: dict[str, str] = {}
        """Pod uid -> Docker container id, for every container this kubelet created."""
        self._task: asyncio.Task[None] | None = None
        self._cleanups: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    def worker(self, namespace: str, name: str) -> PodWorker | None:
        pod = self.store.get(kinds.PODS, namespace, name)
        return self.workers.get(pod["metadata"]["uid"]) if pod else None

    async def _run(self) -> None:
        watcher = self.store.watch(kinds.PODS, None, None, limit=0)
        try:
            while (event := await watcher.queue.get()) is not None:
                uid = event.object["metadata"]["uid"]
                if event.type == "ADDED":
                    worker = PodWorker(self, event.object)
                    self.workers[uid] = worker
                    worker.start()
                elif event.type == "MODIFIED" and uid in self.workers:
                    self.workers[uid].changed(event.object)
                elif event.type == "DELETED" and uid in self.workers:
                    worker = self.workers.pop(uid)
                    worker.gone()
                    cleanup = asyncio.create_task(self._clean(worker))
                    self._cleanups.add(cleanup)
                    cleanup.add_done_callback(self._cleanups.discard)
        finally:
            self.store.unwatch(watcher)

    async def _clean(self, worker: PodWorker) -> None:
        if worker.task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(worker.task, 60)
        container = self.containers.pop(worker.uid, None)
        if container:
            await self.engine.remove(container)

    async def kill_container(self, namespace: str, name: str) -> None:
        worker = self.worker(namespace, name)
        if worker is None or worker.container_id is None:
            raise LookupError(f"pod {namespace}/{name} has no container")
        await self.engine.kill(worker.container_id)

    async def stop(self) -> None:
        """Stop every pod and remove every container this fake made, errors included."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        tasks = [w.task for w in self.workers.values() if w.task is not None]
        tasks += list(self._cleanups)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A create cancelled in flight may still land in the engine: sweep until it is quiet.
        for attempt in range(3):
            ids = set(self.containers.values())
            with contextlib.suppress(Exception):
                found = await self.engine.containers(f"{INSTANCE_LABEL}={self.instance}")
                ids |= {c["Id"] for c in found}
            self.containers.clear()
            if not ids and attempt > 0:
                return
            await asyncio.gather(*(self.engine.remove(i) for i in ids), return_exceptions=True)
            await asyncio.sleep(0.2)
