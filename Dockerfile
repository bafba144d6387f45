# The agent-runner itself (the plan's "Image 1"): `agent-runner` as the entrypoint, for
# the Stigmer CLI to start, or to run by hand with docker compose (docker-compose.yml).
#
#   docker build -t stigmer/agent-runner:local .
#   # no registry reachable: build on the offline base
#   docker build --build-arg BASE_IMAGE="$(scripts/build-base-image.sh)" -t stigmer/agent-runner:local .
#
# Base: Debian bookworm, the sandbox images' base, so a machine with both holds that
# layer once, the runner's Python (3.11) gets Debian's security updates, and the offline
# base (stigmer/sandbox-base:bookworm) builds it the same way. python:3.11-slim would
# bring a second Python build that the offline base cannot stand in for.
#
# Stages: `builder` makes the wheel of this repository and the wheels of its
# dependencies (PyPI, through the system CA bundle), and installs them into a venv at
# /opt/agent-runner; the image is the base plus python3 and that venv: no pip, no build
# tools. Classic builder and BuildKit alike (no RUN --mount, no heredocs).

ARG BASE_IMAGE=debian:bookworm-slim

FROM ${BASE_IMAGE} AS builder
ARG DEBIAN_FRONTEND=noninteractive
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# hadolint ignore=DL3008 # reason: the Debian release (bookworm) is the pin; exact versions break at every security update
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
# Extra CAs (a TLS-inspecting proxy's root) from sandbox/ca-certificates/, as the
# sandbox images take them; pip then checks PyPI against the system bundle.
COPY sandbox/add-ca-certs.sh /usr/local/sbin/stigmer-add-ca-certs
COPY sandbox/ca-certificates/ /tmp/stigmer-ca/
RUN chmod 0755 /usr/local/sbin/stigmer-add-ca-certs \
 && find /tmp/stigmer-ca -name '*.crt' -exec stigmer-add-ca-certs {} + \
 && rm -rf /tmp/stigmer-ca
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
COPY sandbox/ sandbox/
# The wheel first (its build backend comes from PyPI in pip's isolated build), then the
# dependencies' wheels, then one offline install of exactly those into the venv.
RUN python3 -m venv /build \
 && /build/bin/pip wheel --quiet --no-deps --wheel-dir /wheels . \
 && /build/bin/pip wheel --quiet --wheel-dir /wheels /wheels/stigmer_agent_runner-*.whl \
 && python3 -m venv --without-pip /opt/agent-runner \
 && /build/bin/pip --python /opt/agent-runner/bin/python install --quiet --no-index \
        --find-links /wheels /wheels/stigmer_agent_runner-*.whl \
 && /opt/agent-runner/bin/agent-runner --version


FROM ${BASE_IMAGE} AS runner
ARG DEBIAN_FRONTEND=noninteractive
ARG RUNNER_UID=1000

LABEL org.opencontainers.image.title="Stigmer agent-runner" \
      org.opencontainers.image.description="Runs an AI agent's shell commands on the host, in a sandbox, or decided per command" \
      org.opencontainers.image.source="https://github.com/stigmer/stigmer" \
      org.opencontainers.image.vendor="Stigmer" \
      org.opencontainers.image.licenses="Apache-2.0"

# python3 for the venv (the same /usr/bin/python3 the builder used); bash and
# ca-certificates for LOCAL mode's commands. The runner's user owns only its home,
# where ~/.stigmer (config, CLI sessions) lives.
# hadolint ignore=DL3008 # reason: the Debian release (bookworm) is the pin; exact versions break at every security update
RUN apt-get update \
 && apt-get install -y --no-install-recommends bash ca-certificates python3 \
 && rm -rf /var/lib/apt/lists/* /var/log/apt /var/log/dpkg.log \
 && useradd --no-log-init --uid "${RUNNER_UID}" --user-group --create-home \
        --home-dir /home/agent-runner --shell /bin/bash agent-runner \
 && install -d -o agent-runner -g agent-runner /home/agent-runner/.stigmer /workspace

COPY --from=builder /opt/agent-runner /opt/agent-runner
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt

# STIGMER_WORKSPACE_ROOT: where the host's workspace root is mounted in this container;
# STIGMER_HOST_WORKSPACE_ROOT (set at run time) says where that is on the host, so that
# sandboxes the runner starts through the host's engine get the right bind mounts.
ENV HOME=/home/agent-runner \
    PATH=/opt/agent-runner/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    STIGMER_WORKSPACE_ROOT=/workspace

USER ${RUNNER_UID}:${RUNNER_UID}
WORKDIR /workspace

# A real command through the runner, on the host side (never a container): the install
# is whole, the settings (file and STIGMER_* variables) are valid, and bash runs.
# Well under a second; it touches no Docker engine.
HEALTHCHECK --interval=30s --timeout=10s --start-period=5s --retries=3 \
    CMD ["agent-runner", "exec", "--mode", "local", "--timeout", "5", "true"]

ENTRYPOINT ["agent-runner"]
CMD ["--help"]
