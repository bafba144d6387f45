"""Who may reach the HTTP transport: loopback by default, a bearer token otherwise.

The streamable HTTP transport runs commands for whoever can send it a request, so it binds
127.0.0.1 unless told otherwise, and binding anywhere else needs a token. With a token,
every request (each POST, the GET stream, DELETE) must carry ``Authorization: Bearer
TOKEN``; anything else is answered 401 before the MCP layer sees it. The comparison is in
constant time. On a loopback bind the Host and Origin headers must name loopback too (the
SDK's DNS-rebinding check, given every loopback name rather than only its three).
"""

from __future__ import annotations

import hmac
import ipaddress
from pathlib import Path

from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_runner.errors import InvalidSetting


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def load_token(token: str | None, token_file: Path | None) -> str | None:
    """The token from ``--token`` or the first line of ``--token-file`` (not both)."""
    if token is not None and token_file is not None:
        raise InvalidSetting("give --token or --token-file, not both")
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise InvalidSetting(f"--token-file {token_file}: {error.strerror}") from None
    if token is not None and len(token) < 16:
        raise InvalidSetting("the token must be at least 16 characters")
    return token


def rebinding_check(host: str) -> TransportSecuritySettings | None:
    """On a loopback bind, accept only loopback Host and Origin headers (a web page that
    resolves its own name to 127.0.0.1 must not reach the server); elsewhere the token is
    the check."""
    if not is_loopback(host):
        return None
    shown = f"[{host.strip('[]')}]" if ":" in host else host
    names = sorted({"127.0.0.1", "localhost", "[::1]", shown})
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{name}:*" for name in names],
        allowed_origins=[f"http://{name}:*" for name in names],
    )


def check_binding(host: str, token: str | None) -> None:
    if token is None and not is_loopback(host):
        raise InvalidSetting(
            f"--host {host} is reachable from other machines: give --token or --token-file "
            "(every request must then carry Authorization: Bearer TOKEN)"
        )


class BearerToken:
    """ASGI middleware: HTTP requests without the token get 401."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                await self._refuse(send)
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        body = b'{"error":"unauthorized: send Authorization: Bearer TOKEN"}'
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b"Bearer"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
