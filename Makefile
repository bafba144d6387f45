# Everything runs from the project's own virtualenv (.venv), created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

# Images. Built on $(BASE_IMAGE) when given, else debian:bookworm-slim when it can be
# pulled, else the offline base (scripts/base-image.sh, scripts/build-base-image.sh).
BASE_IMAGE ?=
SANDBOX_IMAGE ?= stigmer/agent-sandbox
RUNNER_IMAGE ?= stigmer/agent-runner
# sandbox-push: where to, and the tags the publish workflow gives (see
# .github/workflows/publish-sandbox.yml): <short sha>, latest and, if TAG is set, TAG;
# each with a -full suffix for TIER=full.
REGISTRY ?= ghcr.io/stigmer
TIER ?= basic
TAG ?=
SUFFIX = $(if $(filter full,$(TIER)),-full,)
# `docker build ARGS` on the base scripts/base-image.sh picks; stops if it has none.
docker_build = set -e; base=$$(STIGMER_BASE_IMAGE='$(BASE_IMAGE)' scripts/base-image.sh); \
	echo "docker build --build-arg BASE_IMAGE=$$base $(1)"; \
	docker build --build-arg BASE_IMAGE="$$base" $(1)

.PHONY: install test lint format bench clean docker-engine inspector \
	sandbox-build sandbox-build-local sandbox-build-full sandbox-push \
	runner-image dev-full test-local-mode test-sandbox-mode sandbox-test

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The tests talk to a real Docker engine: start one (installing it on Debian as root) and
# build the offline test image first; both steps are no-ops when already done. The MCP
# tests also drive the MCP Inspector CLI (npm, pinned in tests/mcp/inspector).
test: install inspector
	scripts/ensure-docker.sh
	scripts/build-base-image.sh >/dev/null
	$(BIN)/python -m pytest

# Dockerfiles, workflows and shell scripts too, with the linters pinned in the dev extra
# (binaries inside their wheels: no download at lint time). A rule is only ever disabled
# inline, at its line, with the reason. actionlint runs shellcheck on the workflows'
# `run:` scripts when it finds it on PATH, hence the venv first on PATH.
DOCKERFILES = $(wildcard Dockerfile sandbox/Dockerfile.sandbox.* benchmarks/peers/*.Dockerfile)
SHELL_SCRIPTS = $(wildcard scripts/*.sh) sandbox/add-ca-certs.sh .ci/run

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/hadolint $(DOCKERFILES)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/actionlint
	$(BIN)/shellcheck $(SHELL_SCRIPTS)

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: install
	$(BIN)/python benchmarks/local_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache tests/mcp/inspector/node_modules

inspector:
	@scripts/ensure-inspector.sh

# --- images ------------------------------------------------------------------------

docker-engine:
	@scripts/ensure-docker.sh

# The basic tier as the runner's default image would be tagged (:latest), and as the
# project's local build (:local, what the runner falls back to and the tests use).
sandbox-build: docker-engine
	@$(call docker_build,-f sandbox/Dockerfile.sandbox.basic -t $(SANDBOX_IMAGE):latest sandbox/)

sandbox-build-local: docker-engine
	@$(call docker_build,-f sandbox/Dockerfile.sandbox.basic -t $(SANDBOX_IMAGE):local sandbox/)
	@docker image inspect -f '$(SANDBOX_IMAGE):local is {{.Size}} bytes' $(SANDBOX_IMAGE):local

# The local basic build against the image contract (docs/sandbox/README.md), started the
# way the runner starts sandboxes, plus every tool of the tier answering with its version;
# exits non-zero when anything required fails.
sandbox-test: install sandbox-build-local
	$(BIN)/agent-runner image check --tier basic $(SANDBOX_IMAGE):local

# Needs the vendors' download hosts (see the Dockerfile); not buildable offline.
sandbox-build-full: docker-engine
	@$(call docker_build,-f sandbox/Dockerfile.sandbox.full -t $(SANDBOX_IMAGE):latest-full sandbox/)

# Push the tier built above, under the workflow's tags. `docker login` first (see
# docs/sandbox/registry-setup.md). The short-sha tag names a commit, so the tree must
# be clean (ALLOW_DIRTY=1 to push anyway).
sandbox-push: $(if $(filter full,$(TIER)),sandbox-build-full,sandbox-build)
	@if [ -z "$(ALLOW_DIRTY)" ] && [ -n "$$(git status --porcelain)" ]; then \
		echo "sandbox-push: the work tree has changes, so :$$(git rev-parse --short=7 HEAD)$(SUFFIX) would not name what is pushed; commit first (or ALLOW_DIRTY=1)" >&2; \
		exit 1; \
	fi
	@set -e; sha=$$(git rev-parse --short=7 HEAD); \
	for tag in $$sha latest $(TAG); do \
		target=$(REGISTRY)/agent-sandbox:$$tag$(SUFFIX); \
		docker tag $(SANDBOX_IMAGE):latest$(SUFFIX) $$target; \
		docker push $$target; \
		echo "pushed $$target"; \
	done

# The runner's own image (root Dockerfile), as docker-compose.yml expects it.
# Its user gets your uid (1000 when you are root), so LOCAL-mode files are yours.
runner-image: docker-engine
	@$(call docker_build,--build-arg RUNNER_UID=$$(id -u | sed 's/^0$$/1000/') -t $(RUNNER_IMAGE):local .)

dev-full: runner-image sandbox-build-local
	@echo "============================================================"
	@echo "Built: $(RUNNER_IMAGE):local  $(SANDBOX_IMAGE):local"
	@echo "============================================================"
	@echo "LOCAL mode, on this machine (no image needed):"
	@echo "  $(BIN)/agent-runner exec 'echo hello from \$$(hostname)'"
	@echo "SANDBOX mode with the local image:"
	@echo "  STIGMER_SANDBOX_IMAGE=$(SANDBOX_IMAGE):local $(BIN)/agent-runner exec --mode sandbox 'id -u; python3 --version'"
	@echo "The runner in a container (docker-compose.yml):"
	@echo "  export STIGMER_HOST_WORKSPACE_ROOT=\$$PWD DOCKER_GID=\$$(stat -c %g /var/run/docker.sock)"
	@echo "  STIGMER_SANDBOX_IMAGE=$(SANDBOX_IMAGE):local docker compose run --rm agent-runner exec --mode sandbox 'ls; id -u'"

# A real command in each mode through the installed agent-runner; each checks what it
# printed, not only the exit status.
test-local-mode: install
	@out=$$($(BIN)/agent-runner exec --mode local 'echo "mode=local pid=$$$$"; cd /tmp && pwd'); \
	echo "$$out"; \
	printf '%s\n' "$$out" | grep -qx '/tmp' || { echo "test-local-mode: unexpected output" >&2; exit 1; }

test-sandbox-mode: install sandbox-build-local
	@out=$$(STIGMER_SANDBOX_IMAGE=$(SANDBOX_IMAGE):local STIGMER_SANDBOX_AUTO_PULL=false \
		$(BIN)/agent-runner exec --mode sandbox 'echo "uid=$$(id -u)"; python3 --version; node --version; npm --version; pwd'); \
	echo "$$out"; \
	printf '%s\n' "$$out" | grep -qx '/workspace' || { echo "test-sandbox-mode: the command did not run in the sandbox's /workspace" >&2; exit 1; }; \
	printf '%s\n' "$$out" | grep -q '^uid=0$$' && { echo "test-sandbox-mode: the sandbox ran as root" >&2; exit 1; }; true
