"""Error bodies exactly as each real Daytona service writes them.

Two shapes reach the SDK, and it decodes both (``daytona/_utils/errors.py``):

- the API (NestJS, ``apps/api/src/filters/all-exceptions.filter.ts``):
  ``{"path", "timestamp", "statusCode", "error", "message"}``, where ``error`` is the HTTP
  reason phrase;
- the toolbox daemon, runner and proxy (Go, ``libs/common-go/pkg/errors/middleware.go``):
  ``{"statusCode", "message", "code", "source", "timestamp", "path", "method"}``. ``code``
  and ``source`` (``DAYTONA_DAEMON``/``DAYTONA_PROXY``) let SDK 0.226 pick a precise class
  such as ``DaytonaSessionEndedError``; v0.190 of the open-source daemon wrote ``code`` but
  no ``source`` (the later typed-error branch adds it).

Handlers raise :class:`ApiError` or :class:`DaemonError`; the server turns them into
responses, so a handler never formats a body itself.
"""

from __future__ import annotations

from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

from aiohttp import web

SOURCE_DAEMON = "DAYTONA_DAEMON"
SOURCE_PROXY = "DAYTONA_PROXY"


def now_iso() -> str:
    """ISO 8601 with milliseconds and ``Z``, as JavaScript's ``toISOString()`` writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiError(Exception):
    """An error of the REST API, answered in the NestJS shape."""

    def __init__(self, status: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}

    def response(self, request: web.Request) -> web.Response:
        body = {
            "path": request.path_qs,
            "timestamp": now_iso(),
            "statusCode": self.status,
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
        }
        return web.json_response(body, status=self.status, headers=self.headers)


class DaemonError(Exception):
    """An error of the toolbox path (daemon, runner or proxy), in the common-go shape."""

    def __init__(
        self, status: int, message: str, code: str = "", *, source: str = SOURCE_DAEMON
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _DEFAULT_CODES.get(status, "")
        self.source = source

    def body(self, request: web.Request) -> dict[str, Any]:
        body: dict[str, Any] = {
            "statusCode": self.status,
            "message": self.message,
            "source": self.source,
            "timestamp": now_iso(),
            "path": request.path,
            "method": request.method,
        }
        if self.code:
            body["code"] = self.code
        return body

    def response(self, request: web.Request) -> web.Response:
        return web.json_response(self.body(request), status=self.status)


_DEFAULT_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    408: "REQUEST_TIMEOUT",
    409: "CONFLICT",
    410: "GONE",
    422: "UNPROCESSABLE_ENTITY",
    500: "INTERNAL_SERVER_ERROR",
}


class UpstreamGone(Exception):
    """The sandbox's daemon vanished under an open request (container removed or crashed).

    Go's reverse proxy answers that with a bare ``502`` when nothing was written yet, and
    drops the connection when something was (``libs/common-go/pkg/proxy/proxy.go``).
    """
