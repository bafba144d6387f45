"""The cluster as the backend reaches it: two API clients, and errors as one line each.

kubernetes_asyncio's ``WsApiClient`` sends every request it makes as a websocket, so REST
calls and exec streams need clients of their own: one ``ApiClient`` for REST (and
watches), one ``WsApiClient`` for ``pods/exec``, both on one ``Configuration`` (token
refresh hooks are shared) and both closed by :meth:`Cluster.close`. Every REST call has a
bound (``REQUEST_SECONDS``); the exec handshake is bounded by its caller, since the client
ignores ``_request_timeout`` there.

An ``ApiException`` becomes a :class:`~agent_runner.errors.SandboxUnavailable` whose one
line says what was being done, what the apiserver said, and, for a 403, that the RBAC in
``deploy/kubernetes/`` is what grants it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.exceptions import ApiException
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.stream import WsApiClient

from agent_runner.config import KubernetesSettings
from agent_runner.errors import SandboxUnavailable

T = TypeVar("T")
logger = logging.getLogger("agent_runner")
REQUEST_SECONDS = 30.0
RBAC_HINT = "the runner's RBAC is in deploy/kubernetes/rbac.yaml"
AGENT_SANDBOX = ("extensions.agents.x-k8s.io", "v1beta1")
SANDBOXES = ("agents.x-k8s.io", "v1beta1")


def status_of(error: ApiException) -> dict[str, Any]:
    """The ``Status`` body of an API error (empty when it has none)."""
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def explain(error: BaseException, doing: str) -> SandboxUnavailable:
    """One line for a failed API call: what we did, what the cluster said, what to do."""
    if isinstance(error, ApiException):
        message = status_of(error).get("message") or error.reason or "no detail"
        hint = f"; {RBAC_HINT}" if error.status == 403 else ""
        if error.status == 404 and str(message).startswith('namespaces "'):
            hint = (
                "; apply deploy/kubernetes/namespace.yaml or set "
                "execution.sandbox.kubernetes.namespace"
            )
        return SandboxUnavailable(f"cannot {doing}: {error.status} {message}{hint}")
    if isinstance(error, aiohttp.ClientError | OSError | TimeoutError):
        detail = str(error) or type(error).__name__
        return SandboxUnavailable(f"cannot {doing}: the Kubernetes API is unreachable ({detail})")
    return SandboxUnavailable(f"cannot {doing}: {error}")


def is_status(error: BaseException | None, *codes: int) -> bool:
    return isinstance(error, ApiException) and error.status in codes


class Cluster:
    """The backend's clients for one cluster and namespace, created on first use."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self.settings = settings
        self.namespace = settings.namespace
        self._configuration: Any = None
        self._rest: Any = None
        self._streams: Any = None
        self.core: Any = None
        self.streams: Any = None
        """``CoreV1Api`` on the websocket client: ``pods/exec`` only."""
        self.leases: Any = None
        self.networking: Any = None
        self.custom: Any = None

    @property
    def opened(self) -> bool:
        return self._rest is not None

    async def open(self) -> None:
        if self._rest is not None:
            return
        configuration = type.__call__(client.Configuration)
        try:
            if self.settings.in_cluster:
                config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            else:
                path = self.settings.kubeconfig
                await config.load_kube_config(
                    config_file=str(path.expanduser()) if path else None,
                    context=self.settings.context,
                    client_configuration=configuration,
                )
        except (ConfigException, OSError) as error:
            where = "in_cluster" if self.settings.in_cluster else "kubeconfig"
            raise SandboxUnavailable(
                f"cannot load the Kubernetes configuration ({where}): {error}; set "
                "execution.sandbox.kubernetes.kubeconfig (or KUBECONFIG), context or in_cluster"
            ) from None
        self._configuration = configuration
        self._rest = client.ApiClient(configuration)
        # One long-lived websocket per session: no pool limit for the stream client.
        limit, configuration.connection_pool_maxsize = configuration.connection_pool_maxsize, 0
        try:
            self._streams = WsApiClient(configuration)
        finally:
            configuration.connection_pool_maxsize = limit
        self.core = client.CoreV1Api(self._rest)
        self.streams = client.CoreV1Api(self._streams)
        self.leases = client.CoordinationV1Api(self._rest)
        self.networking = client.NetworkingV1Api(self._rest)
        self.custom = client.CustomObjectsApi(self._rest)

    @property
    def server(self) -> str:
        return str(getattr(self._configuration, "host", "") or "?")

    async def call(
        self, doing: str, function: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any
    ) -> T:
        """``function(*args, **kwargs)`` with a bound, its failure as one line."""
        kwargs.setdefault("_request_timeout", REQUEST_SECONDS)
        try:
            return await function(*args, **kwargs)
        except (ApiException, aiohttp.ClientError, OSError, TimeoutError) as error:
            raise explain(error, doing) from error

    async def read(
        self, doing: str, function: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        """A GET or LIST as the plain JSON the apiserver sent (no model classes built)."""
        response = await self.call(doing, function, *args, _preload_content=False, **kwargs)
        async with response:
            raw = await response.read()
        if not 200 <= response.status <= 299:  # unread responses are not checked for us
            error = ApiException(status=response.status, reason=response.reason)
            error.body = raw.decode(errors="replace")
            raise explain(error, doing) from error
        body: dict[str, Any] = json.loads(raw)
        return body

    async def watch_one(
        self,
        function: Callable[..., Awaitable[Any]],
        *args: Any,
        current: dict[str, Any],
        seconds: float,
        settled: Callable[[dict[str, Any]], bool],
    ) -> tuple[bool, dict[str, Any] | None]:
        """Watch the object ``current`` (listed by ``function(*args)``) from its
        resourceVersion until ``settled`` says so: ``(True, object)``, ``(True, None)`` once
        it is deleted, or ``(False, None)`` after ``seconds`` (the caller reads it again).
        A 410 (the history moved on) is raised as the ``ApiException``."""
        name = current["metadata"]["name"]
        async with watch.Watch(return_type="object") as events:
            stream = events.stream(
                function,
                *args,
                field_selector=f"metadata.name={name}",
                resource_version=current["metadata"].get("resourceVersion"),
                timeout_seconds=max(1, int(seconds)),
            )
            async with asyncio.timeout(seconds + 5):
                async for event in stream:
                    if event["type"] == "DELETED":
                        return True, None
                    if event["type"] in ("ADDED", "MODIFIED") and settled(event["raw_object"]):
                        return True, dict(event["raw_object"])
        return False, None

    async def close(self) -> None:
        """Close both clients (their aiohttp sessions); safe to call twice."""
        for api in (self._streams, self._rest):
            if api is not None:
                try:
                    await api.close()
                except Exception:  # closing must not hide the error that brought us here
                    logger.debug("closing a Kubernetes client failed", exc_info=True)
        self._rest = self._streams = None
