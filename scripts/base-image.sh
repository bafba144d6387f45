#!/usr/bin/env bash
# Print the base image the project's Dockerfiles should build on here:
#
#   $STIGMER_BASE_IMAGE when set; else debian:bookworm-slim when the engine has it or
#   can pull it (what the published images are built on); else the offline base that
#   scripts/build-base-image.sh makes (no registry reachable, as on the project's CI).
#
#   docker build --build-arg BASE_IMAGE="$(scripts/base-image.sh)" ...
#
# Progress goes to stderr; stdout is only the image reference.
set -euo pipefail

readonly slim=debian:bookworm-slim
readonly pull_timeout_s=20
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

say() { printf 'base-image: %s\n' "$*" >&2; }

# Bounded, because an unreachable registry can hang rather than fail (stock macOS has
# no `timeout`; Docker Desktop reaches Docker Hub anyway).
pull_slim() {
    if command -v timeout >/dev/null 2>&1; then
        timeout "$pull_timeout_s" docker pull -q "$slim"
    else
        docker pull -q "$slim"
    fi
}

if [ -n "${STIGMER_BASE_IMAGE:-}" ]; then
    say "using \$STIGMER_BASE_IMAGE ($STIGMER_BASE_IMAGE)"
    printf '%s\n' "$STIGMER_BASE_IMAGE"
elif docker image inspect "$slim" >/dev/null 2>&1 || pull_slim >/dev/null 2>&1; then
    say "using $slim"
    printf '%s\n' "$slim"
else
    say "$slim cannot be pulled; using the offline base"
    "$here/build-base-image.sh"
fi
