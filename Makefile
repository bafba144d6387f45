# Everything runs from the project's own virtualenv (.venv), created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: install test lint format bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The tests talk to a real Docker engine: start one (installing it on Debian as root) and
# build the offline test image first; both steps are no-ops when already done.
test: install
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
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
