"""The switches a test flips to make the fake misbehave the way real clusters do.

Each fault is named after what happens in production: the kubelet's
``--streaming-connection-idle-timeout`` cutting a quiet exec, a load balancer resetting
every stream, an apiserver that accepts the TCP connection but never answers the
upgrade, RBAC without ``create`` on ``pods/exec``, a pod the scheduler cannot place, an
apiserver older than the v5 stream protocol. Attributes are read by the server thread and
written by the test's; each write is one atomic assignment, and the few faults that act at
once (resetting streams) run on the server's loop through ``_act``.

``requests`` counts what the client asked for, by (verb, resource) as the apiserver's
audit log names them (``("create", "pods/exec")``, ``("watch", "pods")``...).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StuckRule:
    name: str | None
    labels: dict[str, str] | None

    def matches(self, pod: dict[str, Any]) -> bool:
        meta = pod.get("metadata") or {}
        if self.name is not None and meta.get("name") != self.name:
            return False
        labels = meta.get("labels") or {}
        return self.labels is None or all(labels.get(k) == v for k, v in self.labels.items())


@dataclass
class Faults:
    v4only: bool = False
    """Offer only v4 and older stream protocols, as an apiserver before 1.30 (or with the
    TranslateStreamCloseWebsocketRequests gate off) does."""
    exec_idle_timeout: float | None = None
    exec_handshake_hangs: bool = False
    exec_forbidden: bool = False
    stuck: list[StuckRule] = field(default_factory=list)
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _act: Callable[[str], Any] | None = field(default=None, repr=False)

    def cut_idle_exec_after(self, seconds: float | None) -> None:
        """Close any exec stream with no traffic either way for ``seconds`` (the kubelet's
        streaming-connection-idle-timeout; ``None`` turns it off)."""
        self.exec_idle_timeout = seconds

    def reset_exec_streams(self) -> int:
        """Abort every open exec connection now, mid-stream (no close frame, no status).
        Returns how many were reset."""
        if self._act is None:
            return 0
        return int(self._act("reset_exec_streams"))

    def hang_exec_handshake(self, hang: bool = True) -> None:
        """Accept exec connections but never answer the websocket upgrade."""
        self.exec_handshake_hangs = hang

    def forbid_exec(self, forbid: bool = True) -> None:
        """Answer ``pods/exec`` with RBAC's 403, as a Role without that verb would."""
        self.exec_forbidden = forbid

    def stuck_pending(self, name: str | None = None, labels: dict[str, str] | None = None) -> None:
        """Pods matching ``name`` and/or ``labels`` stay unschedulable (Pending)."""
        self.stuck.append(StuckRule(name, labels))

    def unstick(self) -> None:
        self.stuck.clear()

    def is_stuck(self, pod: dict[str, Any]) -> bool:
        return any(rule.matches(pod) for rule in list(self.stuck))

    def count(self, verb: str, resource: str) -> None:
        with self._lock:
            self.requests[(verb, resource)] += 1

    def counts(self) -> Counter[tuple[str, str]]:
        """A copy of the request counters."""
        with self._lock:
            return Counter(self.requests)

    def clear(self) -> None:
        """Every fault off, counters kept."""
        self.v4only = False
        self.exec_idle_timeout = None
        self.exec_handshake_hangs = False
        self.exec_forbidden = False
        self.stuck.clear()
