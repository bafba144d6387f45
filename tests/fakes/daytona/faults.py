"""Fault injection: make the emulator fail the way real Daytona fails.

Tests (on their own event loop and thread) call these methods while the server runs on
its own loop, so every rule lives behind a lock and is consulted per request by the
server's middleware or, for lifecycle faults, by the sandbox service.

Endpoints are named as the request counters name them, ``"METHOD /route"`` with the
route's placeholders, e.g. ``"POST /api/sandbox"`` or
``"POST /toolbox/{sandbox_id}/process/session/{session_id}/exec"``; shell-style patterns
(``"* /toolbox/*"``) match several. The messages are the real ones:

- an unexpected server error: ``500`` "An unexpected error occurred." (NestJS filter);
- quota: ``400`` "Total CPU limit exceeded. Maximum allowed: N.\\nTo increase concurrency
  limits, upgrade your organization's Tier by visiting <dashboard>/limits."
  (``sandbox.service.ts`` ``validateOrganizationQuotas``), on create and on start;
- rate limit: ``429`` "ThrottlerException: Too Many Requests" with ``Retry-After`` and
  ``X-RateLimit-*-<throttler>`` headers (``rate-limit-headers.util.ts``).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

DASHBOARD_URL = "https://app.daytona.io/dashboard"
UPGRADE_TIER = (
    "To increase concurrency limits, upgrade your organization's Tier by visiting "
    f"{DASHBOARD_URL}/limits."
)
ARCHIVE_HINT = "Consider archiving your unused Sandboxes to free up available storage."
SCOPES = {"all": "*", "api": "* /api/*", "toolbox": "* /toolbox/*"}


@dataclass
class Failure:
    """An answer to give instead of the real one."""

    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class _Rule:
    pattern: str
    failure: Failure
    remaining: int | None


@dataclass
class StartFailure:
    reason: str
    recoverable: bool


class Faults:
    """The faults an emulator instance is told to show."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.clear()

    def clear(self) -> None:
        """Back to a healthy service."""
        with self._lock:
            self._rules: list[_Rule] = []
            self._unreachable: list[str] = []
            self._slow: list[tuple[str, float]] = []
            self._quota: str | None = None
            self._start_delay = 0.0
            self._start_failures: list[StartFailure] = []

    # -- answers -------------------------------------------------------------------
    def fail_next(
        self,
        endpoint: str,
        *,
        status: int = 500,
        message: str = "An unexpected error occurred.",
        times: int | None = 1,
        headers: dict[str, str] | None = None,
    ) -> None:
        """The next ``times`` calls to ``endpoint`` (``None``: all, until cleared) fail."""
        with self._lock:
            self._rules.append(_Rule(endpoint, Failure(status, message, headers or {}), times))

    def fail_next_create(self, status: int = 500, message: str | None = None) -> None:
        """The next ``POST /api/sandbox`` fails (500 "An unexpected error occurred.")."""
        self.fail_next(
            "POST /api/sandbox", status=status, message=message or "An unexpected error occurred."
        )

    def quota_exceeded(self, resource: str = "cpu", limit: int = 10) -> None:
        """Every create and start fails with the real quota message until :meth:`clear`."""
        messages = {
            "cpu": f"Total CPU limit exceeded. Maximum allowed: {limit}.\n{UPGRADE_TIER}",
            "memory": f"Total memory limit exceeded. Maximum allowed: {limit}GiB.\n{UPGRADE_TIER}",
            "disk": (
                f"Total disk limit exceeded. Maximum allowed: {limit}GiB.\n{ARCHIVE_HINT}\n"
                f"{UPGRADE_TIER}"
            ),
        }
        with self._lock:
            self._quota = messages[resource]

    def rate_limited(
        self, endpoint: str = "*", *, times: int | None = 1, retry_after: int = 1
    ) -> None:
        """``429`` ThrottlerException for the next ``times`` matching calls."""
        headers = {
            "Retry-After": str(retry_after),
            "X-RateLimit-Limit-authenticated": "100",
            "X-RateLimit-Remaining-authenticated": "0",
            "X-RateLimit-Reset-authenticated": str(retry_after),
        }
        self.fail_next(
            endpoint,
            status=429,
            message="ThrottlerException: Too Many Requests",
            times=times,
            headers=headers,
        )

    # -- transport -----------------------------------------------------------------
    def unreachable(self, scope: str = "all") -> None:
        """Drop every connection of ``scope`` (``all``, ``api``, ``toolbox``) at once."""
        with self._lock:
            self._unreachable.append(SCOPES.get(scope, scope))

    def reachable(self) -> None:
        with self._lock:
            self._unreachable.clear()

    def slow(self, seconds: float, endpoint: str = "*") -> None:
        """Answer matching calls only after ``seconds`` (a large value: a hung service)."""
        with self._lock:
            self._slow.append((SCOPES.get(endpoint, endpoint), seconds))

    # -- lifecycle -----------------------------------------------------------------
    def delay_start(self, seconds: float) -> None:
        """Sandboxes take ``seconds`` longer to reach ``started`` (create, start, restore)."""
        with self._lock:
            self._start_delay = seconds

    def fail_next_start(self, reason: str, *, recoverable: bool = False) -> None:
        """The next sandbox to be created or started lands in ``error`` with ``reason``."""
        with self._lock:
            self._start_failures.append(StartFailure(reason, recoverable))

    # -- consulted by the server ---------------------------------------------------
    def take_failure(self, endpoint: str) -> Failure | None:
        with self._lock:
            for rule in self._rules:
                if fnmatchcase(endpoint, rule.pattern):
                    if rule.remaining is not None:
                        rule.remaining -= 1
                        if rule.remaining <= 0:
                            self._rules.remove(rule)
                    return rule.failure
        return None

    def is_unreachable(self, endpoint: str) -> bool:
        with self._lock:
            return any(fnmatchcase(endpoint, pattern) for pattern in self._unreachable)

    def delay_for(self, endpoint: str) -> float:
        with self._lock:
            return max(
                (s for pattern, s in self._slow if fnmatchcase(endpoint, pattern)), default=0.0
            )

    def quota_message(self) -> str | None:
        with self._lock:
            return self._quota

    def start_delay(self) -> float:
        with self._lock:
            return self._start_delay

    def take_start_failure(self) -> StartFailure | None:
        with self._lock:
            return self._start_failures.pop(0) if self._start_failures else None
