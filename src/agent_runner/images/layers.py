"""Sandbox images with custom requirements: the configured image plus one layer of packages.

A command given a requirements file runs in an image derived from the sandbox image with
those packages installed system-wide (as root at build time; any uid can import them at
run time, and the tmpfs ``$HOME`` would hide a user install). The layer's tag is a hash
of everything that changes the result: the base image's id, the file's bytes, the
recipe and its install options, and the CA bundle's bytes. So the first call builds it,
later calls with the same inputs find it and start at once, and changing any input
builds another one (the stale one is left for ``agent-runner image prune``).

Callers for the same layer build it once: a lock file per layer (``flock``, so other
processes and other threads wait too) is held while checking and building, and whoever
waited finds the image built. The backend also shares one build among its own sessions.

The host's CA bundle (``execution.sandbox.ca_bundle``, default the host's own) is handed
to pip (and what pip runs) for the install step, so PyPI works behind a TLS-inspecting
proxy as it does on the host; it is not added to the image's trust store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent_runner.config import Settings
from agent_runner.errors import ImageNotFound, InvalidSetting, RequirementsError
from agent_runner.images.build import BuildFailed, run_build
from agent_runner.images.cache import cache_dir, file_lock
from agent_runner.images.client import Client
from agent_runner.images.progress import Reporter
from agent_runner.requirements import Requirements

LAYER_REPOSITORY = "stigmer/agent-sandbox-layer"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_VARIABLES = (
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
)
"""Point pip and whatever it runs (git for ``git+https``, a build backend fetching) at the
bundle during the install step only, as the sandbox's own variables do at run time."""
KIND_LABEL = "stigmer.image"
KEY_LABEL = "stigmer.layer.key"
BASE_LABEL = "stigmer.layer.base"
BASE_REFERENCE_LABEL = "stigmer.layer.base-ref"
REQUIREMENTS_LABEL = "stigmer.layer.requirements"
REQUIREMENTS_SHA_LABEL = "stigmer.layer.requirements-sha"
CA_SHA_LABEL = "stigmer.layer.ca-sha"
SHOWN_LINES = 5
"""pip's last lines shown when an install fails: its verdict, not its log."""

BUILD_DIR = "/tmp/stigmer-layer"
NO_PYTHON, NO_PIP = 97, 98
INSTALL_OPTIONS = (
    "--no-cache-dir",
    "--no-input",
    "--disable-pip-version-check",
    "--no-warn-script-location",
    "--progress-bar=off",
)
# Exit statuses of their own for "no python3" and "no pip", so the error can say which.
# Newer pips' switches go in as variables, which older pips ignore instead of failing on.
DOCKERFILE = """\
FROM {base}
USER 0:0
COPY . {dir}/
RUN command -v python3 >/dev/null 2>&1 || exit {no_python}; \\
    python3 -m pip --version >/dev/null 2>&1 || exit {no_pip}; \\
    {ca}PIP_BREAK_SYSTEM_PACKAGES=1 PIP_ROOT_USER_ACTION=ignore \\
    python3 -m pip install {options} -r {dir}/requirements.txt \\
    && rm -rf {dir} /root/.cache
USER {user}
LABEL {labels}
"""
RECIPE = hashlib.sha256("\0".join([DOCKERFILE, *INSTALL_OPTIONS]).encode()).hexdigest()
"""Changes whenever the recipe does, and with it every layer's key (the labels, which hold
the key, are rendered into it but are not part of what is hashed)."""
_USER = re.compile(r"^[A-Za-z0-9_.-]+(?::[A-Za-z0-9_.-]+)?$")


def ca_bundle(settings: Settings) -> Path | None:
    """The CA bundle pip trusts while a layer builds: the configured one, else the host's."""
    configured = settings.sandbox.ca_bundle
    if configured is not None:
        if not configured.is_file():
            raise InvalidSetting(f"execution.sandbox.ca_bundle {configured} is not a file")
        return configured
    return HOST_CA_BUNDLE if HOST_CA_BUNDLE.is_file() else None


def layer_key(base_id: str, requirements_sha: str, ca_sha: str | None) -> str:
    """The hash of everything that changes a layer (see the module's docstring)."""
    material = {"recipe": RECIPE, "base": base_id, "requirements": requirements_sha}
    material["ca"] = ca_sha or "none"
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def layer_tag(key: str) -> str:
    return f"{LAYER_REPOSITORY}:{key[:16]}"


@dataclass(frozen=True)
class LayerPlan:
    """Everything one layer is made of, read once, so the hash and the build agree."""

    base: str
    """The reference it derives from, as configured or resolved."""
    base_id: str
    base_user: str
    requirements: Requirements
    ca: bytes | None

    @property
    def ca_sha(self) -> str | None:
        return hashlib.sha256(self.ca).hexdigest() if self.ca is not None else None

    @property
    def key(self) -> str:
        return layer_key(self.base_id, self.requirements.sha256, self.ca_sha)

    @property
    def tag(self) -> str:
        return layer_tag(self.key)

    @property
    def labels(self) -> dict[str, str]:
        return {
            KIND_LABEL: "layer",
            KEY_LABEL: self.key,
            BASE_LABEL: self.base_id,
            BASE_REFERENCE_LABEL: self.base,
            REQUIREMENTS_LABEL: str(self.requirements.path),
            REQUIREMENTS_SHA_LABEL: self.requirements.sha256,
            CA_SHA_LABEL: self.ca_sha or "none",
        }

    def dockerfile(self) -> str:
        bundle = f"{BUILD_DIR}/ca-bundle.crt"
        ca = "".join(f"{name}={bundle} " for name in CA_VARIABLES) if self.ca is not None else ""
        return DOCKERFILE.format(
            base=self.base_id,
            dir=BUILD_DIR,
            options=" ".join(INSTALL_OPTIONS),
            ca=ca,
            user=self.base_user or "0:0",
            no_python=NO_PYTHON,
            no_pip=NO_PIP,
            labels=" ".join(f"{k}={json.dumps(v)}" for k, v in sorted(self.labels.items())),
        )


def plan_layer(
    client: Client, settings: Settings, base: str, requirements: Requirements
) -> LayerPlan:
    found = client.inspect(base)
    if found is None:
        raise ImageNotFound(f"{base} is not present, so no layer can be built on it")
    user = str((found.get("Config") or {}).get("User") or "")
    if user and not _USER.match(user):
        raise ImageNotFound(f"{base} has a USER ({user!r}) a layer cannot restore")
    bundle = ca_bundle(settings)
    ca = bundle.read_bytes() if bundle is not None else None
    return LayerPlan(base, str(found["Id"]), user, requirements, ca)


@dataclass(frozen=True)
class Layer:
    """A layer image that is present, and whether this call built it."""

    image: str
    image_id: str
    built: bool


def ensure_layer(
    client: Client,
    settings: Settings,
    base: str,
    requirements: Requirements,
    report: Reporter,
    *,
    locks: Path | None = None,
) -> Layer:
    """The layer of ``requirements`` on ``base``, built if it is not there yet (blocking)."""
    plan = plan_layer(client, settings, base, requirements)
    present = _present(client, plan)
    if present is not None:
        report.step(
            f"{plan.tag} ({requirements.path} on {base}) is present: used as is", logging.DEBUG
        )
        return Layer(plan.tag, present, built=False)
    lock = (locks or cache_dir() / "locks") / f"layer-{plan.key[:16]}.lock"

    def waiting() -> None:
        report.step(f"waiting for {plan.tag}: another runner is building the same layer")

    with file_lock(lock, on_wait=waiting):
        present = _present(client, plan)
        if present is not None:
            return Layer(plan.tag, present, built=False)
        return Layer(plan.tag, _build(client, plan, report), built=True)


def _present(client: Client, plan: LayerPlan) -> str | None:
    found = client.inspect(plan.tag)
    labels: dict[str, Any] = ((found or {}).get("Config") or {}).get("Labels") or {}
    if found is None or labels.get(KEY_LABEL) != plan.key:
        return None
    return str(found["Id"])


def _build(client: Client, plan: LayerPlan, report: Reporter) -> str:
    with tempfile.TemporaryDirectory(prefix="stigmer-layer-") as directory:
        context = Path(directory)
        (context / "Dockerfile").write_text(plan.dockerfile(), encoding="utf-8")
        (context / "requirements.txt").write_bytes(plan.requirements.content)
        if plan.ca is not None:
            (context / "ca-bundle.crt").write_bytes(plan.ca)
        try:
            return run_build(
                client,
                report,
                tag=plan.tag,
                what=f"{plan.requirements.path} on {plan.base}",
                path=directory,
                pull=False,
            )
        except BuildFailed as failed:
            raise _refusal(plan, failed) from None


def _refusal(plan: LayerPlan, failed: BuildFailed) -> RequirementsError:
    path, base = plan.requirements.path, plan.base
    if failed.code == NO_PYTHON:
        return RequirementsError(
            f"cannot install {path}: {base} has no python3; custom requirements need an image "
            "with python3 and pip (the basic tier has both)"
        )
    if failed.code == NO_PIP:
        return RequirementsError(
            f"cannot install {path}: {base} has no pip (`python3 -m pip` fails); add pip to "
            "the image, or use the basic tier (stigmer/agent-sandbox)"
        )
    reason = f"pip exited with {failed.code}" if failed.code is not None else failed.reason
    lines = [line.replace(f"{BUILD_DIR}/requirements.txt", str(path)) for line in failed.lines]
    return RequirementsError(
        f"cannot install requirements file {path} on {base} ({reason}); pip's last lines:",
        lines[-SHOWN_LINES:] or ["(pip printed nothing)"],
    )
