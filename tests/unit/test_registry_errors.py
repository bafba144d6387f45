"""A registry's refusal is one line that says which refusal it was and what to do.

The messages are the engine's own, as seen on this machine (Engine API 1.41) from Debian's
docker-registry, with GHCR's and Docker Hub's documented answers beside them.
"""

import pytest

from agent_runner.images.registry import classify, explain, registry_of

CASES = [
    # (engine status, engine message, kind)
    (
        404,
        "manifest for 127.0.0.1:5071/nope/x:v1 not found: manifest unknown: manifest unknown",
        "not-found",
    ),
    (
        500,
        'Head "http://127.0.0.1:5072/v2/exp/tiny/manifests/v1": no basic auth credentials',
        "unauthorized",
    ),
    (500, "unauthorized: authentication required", "unauthorized"),
    (500, 'Head "https://ghcr.io/v2/org/private/manifests/latest": unauthorized', "unauthorized"),
    (500, 'Head "https://ghcr.io/v2/org/private/manifests/latest": denied', "denied"),
    (500, "denied: requested access to the resource is denied", "denied"),
    (403, "forbidden", "denied"),
    (
        404,
        "pull access denied for nosuch/thing, repository does not exist or may require 'docker login': denied: requested access to the resource is denied",
        "not-found-or-denied",
    ),
    (
        500,
        'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io on 10.255.255.53:53: no such host',
        "unreachable",
    ),
    (
        500,
        'Get "http://127.0.0.1:9/v2/": dial tcp 127.0.0.1:9: connect: connection refused',
        "unreachable",
    ),
    (500, 'Get "https://r.example/v2/": net/http: TLS handshake timeout', "unreachable"),
    (500, 'Get "https://r.example/v2/": context deadline exceeded', "unreachable"),
    (500, "toomanyrequests: You have reached your pull rate limit", "failed"),
    # Status codes are read as words, never inside a port or a digest:
    (404, "manifest for 127.0.0.1:40123/stigmer-test/x:1 not found: manifest unknown", "not-found"),
    (500, "pull 127.0.0.1:34031/x@sha256:0403ab: unexpected EOF", "failed"),
    (500, 'Head "https://r.example/v2/x/manifests/1": 401 Unauthorized', "unauthorized"),
    (500, "received unexpected HTTP status: 403 Forbidden", "denied"),
    (500, "error parsing HTTP 404 response body: unexpected end of JSON input", "not-found"),
]


@pytest.mark.parametrize(("status", "message", "kind"), CASES)
def test_refusals_are_told_apart_by_status_and_words(status, message, kind):
    assert classify(status, message) == kind


def test_not_found_and_not_allowed_say_different_things():
    image, registry = "ghcr.io/org/img:1", "ghcr.io"
    lines = {
        kind: explain(kind, image, registry, "detail", sent_credentials=False)
        for kind in ("not-found", "unauthorized", "denied", "unreachable", "not-found-or-denied")
    }
    assert "has no such image (404: detail); check the repository and the tag" in lines["not-found"]
    assert "wants credentials (401: detail); run `docker login ghcr.io`" in lines["unauthorized"]
    assert "config.json" in lines["unauthorized"]
    assert "denied access (403: detail)" in lines["denied"]
    assert "read:packages" in lines["denied"]
    assert "cannot be reached (detail)" in lines["unreachable"]
    assert "does not exist or needs a login" in lines["not-found-or-denied"]
    for line in lines.values():
        assert line.startswith(f"cannot pull {image}: ")
        assert "\n" not in line
    wrong = explain("unauthorized", image, registry, "detail", sent_credentials=True)
    assert "refused the credentials it was given (401: detail); log in again" in wrong


def test_the_credentials_file_named_is_the_one_docker_py_reads(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    line = explain("unauthorized", "r.example/x:1", "r.example", "d", sent_credentials=False)
    assert f"credentials are read from {tmp_path}/config.json" in line


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("ghcr.io/stigmer/agent-sandbox:latest", "ghcr.io"),
        ("127.0.0.1:5000/stigmer/agent-sandbox", "127.0.0.1:5000"),
        ("debian:bookworm-slim", "docker.io"),
        ("registry.example.com/team/img@sha256:" + "0" * 64, "registry.example.com"),
    ],
)
def test_the_registry_is_where_the_reference_points(image, registry):
    assert registry_of(image) == registry
