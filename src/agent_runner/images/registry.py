"""Pulling an image through the engine: the user's credentials, a bound on waiting, and one
line that says why a registry refused.

Credentials are the user's Docker ones, resolved as docker-py resolves them
(``$DOCKER_CONFIG/config.json`` or ``~/.docker/config.json``, ``credsStore`` and
``credHelpers`` included), read afresh for every pull so a ``docker login`` made while a
runner runs counts; the engine receives them in ``X-Registry-Auth``.

The engine answers ``/images/create`` only once the registry has answered it, and
docker-py waits for that without any limit; behind a firewall that drops packets that is
a connect timeout per command. So the request is made here with a read timeout: the
registry's first answer must come within ``registry_timeout``, and once it has, a
download may stall for up to :data:`STALL_SECONDS` between two progress messages.

The engine (API 1.41) passes a registry's 404 on as a 404 but its 401 as a 500 that only
carries the registry's words, so refusals are told apart by what the message says.
"""

from __future__ import annotations

import hashlib
import os
import re
from typing import Any

from agent_runner.errors import PullFailed, SandboxUnavailable, first_line
from agent_runner.images.client import Client
from agent_runner.images.progress import LayerProgress, PullFinished, PullStarted, Reporter

STALL_SECONDS = 120.0

_UNREACHABLE = (
    "dial tcp",
    "no such host",
    "connection refused",
    "connection reset",
    "i/o timeout",
    "network is unreachable",
    "no route to host",
    "tls handshake timeout",
    "context deadline exceeded",
    "client.timeout exceeded",
    "server gave http response to https client",
)
_AMBIGUOUS = ("may require 'docker login'", "repository does not exist or may require")
_UNAUTHORIZED = ("no basic auth credentials", "unauthorized", "authentication required")
_DENIED = ("denied", "forbidden", "insufficient_scope")
_NOT_FOUND = ("manifest unknown", "not found", "name unknown")
_STATUS = re.compile(r"(?<![\w:.@-])(401|403|404)(?![\w:.-])")
"""A status code the registry's words mention, as a word: never part of a port or a digest."""


def registry_of(image: str) -> str:
    """The registry host an image reference points at (``docker.io`` for bare names)."""
    from docker.auth import resolve_repository_name
    from docker.utils import parse_repository_tag

    repository, _ = parse_repository_tag(image)
    registry, _ = resolve_repository_name(repository)
    return str(registry)


def credentials(client: Client, registry: str) -> tuple[str | None, str]:
    """The ``X-Registry-Auth`` header for ``registry`` from the user's Docker config (read
    now), and a fingerprint of it (``anonymous`` without one) that never shows the secret."""
    from docker.auth import get_config_header

    client.api.reload_config()
    header = get_config_header(client.api, registry)
    if not header:
        return None, "anonymous"
    text = header.decode("ascii") if isinstance(header, bytes) else str(header)
    return text, hashlib.sha256(text.encode()).hexdigest()[:16]


def classify(status: int | None, message: str) -> str:
    """``not-found``, ``unauthorized``, ``denied``, ``not-found-or-denied``, ``unreachable``
    or ``failed``, from the engine's status and the registry's words."""
    text = message.lower()
    said = {int(code) for code in _STATUS.findall(text)}
    if any(marker in text for marker in _UNREACHABLE):
        return "unreachable"
    if any(marker in text for marker in _AMBIGUOUS):
        return "not-found-or-denied"
    if status == 401 or 401 in said or any(marker in text for marker in _UNAUTHORIZED):
        return "unauthorized"
    if status == 403 or 403 in said or any(marker in text for marker in _DENIED):
        return "denied"
    if status == 404 or 404 in said or any(marker in text for marker in _NOT_FOUND):
        return "not-found"
    return "failed"


def explain(kind: str, image: str, registry: str, detail: str, *, sent_credentials: bool) -> str:
    """The one line for a refused pull: which refusal it was and what to do about it."""
    head = f"cannot pull {image}: {registry}"
    if kind == "not-found":
        return (
            f"{head} has no such image (404: {detail}); check the repository and the tag, "
            "or push the image there first"
        )
    if kind == "unauthorized" and sent_credentials:
        return (
            f"{head} refused the credentials it was given (401: {detail}); "
            f"log in again with `docker login {registry}`"
        )
    if kind == "unauthorized":
        return (
            f"{head} wants credentials (401: {detail}); run `docker login {registry}` as the "
            f"user the runner runs as (credentials are read from {config_file()})"
        )
    if kind == "denied":
        return (
            f"{head} denied access (403: {detail}); the credentials for {registry} may not pull "
            "it: check the token's scope (read:packages on GHCR) and the image's visibility"
        )
    if kind == "not-found-or-denied":
        return (
            f"{head} says it does not exist or needs a login ({detail}); check the name, "
            f"or run `docker login {registry}`"
        )
    if kind == "unreachable":
        return f"{head} cannot be reached ({detail}); check the network and the engine's proxy"
    return f"cannot pull {image}: {detail}"


def config_file() -> str:
    """Where docker-py looks for credentials, for messages."""
    directory = os.environ.get("DOCKER_CONFIG") or os.path.join("~", ".docker")
    return os.path.join(directory, "config.json")


def pull(client: Client, image: str, *, timeout: float, report: Reporter) -> None:
    """Pull ``image`` (blocking), reporting each layer; a refusal is :class:`PullFailed`."""
    import requests
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    registry = registry_of(image)
    header, _ = credentials(client, registry)
    headers = {"X-Registry-Auth": header} if header else {}
    params = {"fromImage": repository, "tag": tag or "latest"}

    def refused(status: int | None, detail: str) -> PullFailed:
        kind = classify(status, detail)
        line = explain(kind, image, registry, detail, sent_credentials=header is not None)
        return PullFailed(line, kind)

    report(PullStarted(image))
    ok = False
    try:
        try:
            # docker-py's own pull() waits for the registry without a limit; the same request
            # is made here with one (see the module's docstring).
            response = client.api._post(
                client.api._url("/images/create"),
                params=params,
                headers=headers,
                stream=True,
                timeout=(timeout, timeout),
            )
        except requests.exceptions.Timeout:
            detail = f"no answer within {timeout:g} s, execution.sandbox.registry_timeout"
            raise PullFailed(
                f"cannot pull {image}: {registry} did not answer ({detail}); check the network "
                "and the engine's proxy",
                "unreachable",
            ) from None
        except requests.exceptions.RequestException as error:
            raise SandboxUnavailable(
                f"the Docker engine stopped answering while pulling {image}: {first_line(error)}"
            ) from None
        try:
            if response.status_code >= 400:
                raise refused(response.status_code, _message(response))
            _allow_stalls(response, STALL_SECONDS)
            for event in client.api._stream_helper(response, decode=True):
                if "error" in event:
                    raise refused(None, str(event.get("error") or "").strip())
                _report_layer(report, image, event)
        except requests.exceptions.RequestException:
            raise PullFailed(
                f"cannot pull {image}: the download from {registry} stalled for more than "
                f"{STALL_SECONDS:g} s; try again (`agent-runner image pull {image}`)",
                "unreachable",
            ) from None
        finally:
            response.close()  # the engine cancels a pull whose client went away
        ok = True
    finally:
        report(PullFinished(image, ok))


def _message(response: Any) -> str:
    try:
        return str(response.json().get("message") or "").strip() or response.reason
    except ValueError:
        return str(response.text).strip() or str(response.reason)


def _allow_stalls(response: Any, seconds: float) -> None:
    """The registry answered: from now on only a stalled download counts as a failure."""
    sock = getattr(getattr(response.raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


def _report_layer(report: Reporter, image: str, event: dict[str, Any]) -> None:
    layer = event.get("id")
    status = event.get("status")
    if not layer or not status or str(status).startswith("Pulling from"):
        return
    detail = event.get("progressDetail") or {}
    report(
        LayerProgress(image, str(layer), str(status), detail.get("current"), detail.get("total"))
    )
