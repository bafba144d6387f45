"""Building the project's own tiers (basic, full) from the Dockerfiles under ``sandbox/``.

The Dockerfiles travel with the wheel (``agent_runner/_sandbox``), so an installed runner
can build ``stigmer/agent-sandbox:local`` when the published image cannot be pulled; in a
source tree the repository's ``sandbox/`` is used. They build on
``$STIGMER_SANDBOX_BASE_IMAGE``, else the offline base that ``scripts/build-base-image.sh``
makes when it is present, else ``debian:bookworm-slim``. The configured ``ca_bundle`` is
trusted while building (copied into the context's ``ca-certificates/``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from agent_runner.config import LOCAL_BUILD_TAG, Settings
from agent_runner.errors import ImageNotFound
from agent_runner.images.build import BuildFailed, run_build
from agent_runner.images.client import Client
from agent_runner.images.progress import Reporter

OFFLINE_BASE = "stigmer/sandbox-base:bookworm"
"""What scripts/build-base-image.sh produces when no registry is reachable."""
BASE_IMAGE_VARIABLE = "STIGMER_SANDBOX_BASE_IMAGE"
TIERS = ("basic", "full")
DOCKERFILES = {"basic": "Dockerfile.sandbox.basic", "full": "Dockerfile.sandbox.full"}
TAGS = {"basic": LOCAL_BUILD_TAG, "full": f"{LOCAL_BUILD_TAG}-full"}
"""Where local builds of each tier go (``stigmer/agent-sandbox:local``, ``:local-full``)."""


def build_context() -> Path:
    """The tiers' build files: packaged with the wheel, or the repository's sandbox/."""
    packaged = Path(__file__).resolve().parents[1] / "_sandbox"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "sandbox"


def base_image(client: Client) -> str:
    """The base a tier builds on (see the module's docstring)."""
    return os.environ.get(BASE_IMAGE_VARIABLE) or (
        OFFLINE_BASE if client.present(OFFLINE_BASE) else "debian:bookworm-slim"
    )


def build_tier(
    client: Client,
    settings: Settings,
    report: Reporter,
    tier: str = "basic",
    tag: str | None = None,
) -> str:
    """Build ``tier`` as ``tag`` (default: its local tag) and return the tag (blocking)."""
    tag = tag or TAGS[tier]
    dockerfile = DOCKERFILES[tier]
    source = build_context()
    if not (source / dockerfile).is_file():
        raise ImageNotFound(
            f"{dockerfile} is not in {source}: build the {tier} tier from a clone of the "
            "repository (make sandbox-build-full)"
        )
    base = base_image(client)
    with tempfile.TemporaryDirectory(prefix="stigmer-build-") as directory:
        context = Path(directory)
        shutil.copytree(source, context, dirs_exist_ok=True)
        if settings.sandbox.ca_bundle is not None:
            (context / "ca-certificates").mkdir(exist_ok=True)
            shutil.copyfile(settings.sandbox.ca_bundle, context / "ca-certificates" / "extra.crt")
        try:
            run_build(
                client,
                report,
                tag=tag,
                what=f"the {tier} tier from {dockerfile} on {base}",
                path=str(context),
                dockerfile=dockerfile,
                buildargs={"BASE_IMAGE": base},
                pull=False,
            )
        except BuildFailed as failed:
            raise ImageNotFound(_failed(tag, base, failed), failed.last(5)) from None
    return tag


def _failed(tag: str, base: str, failed: BuildFailed) -> str:
    hint = ""
    if not os.environ.get(BASE_IMAGE_VARIABLE) and base != OFFLINE_BASE:
        hint = (
            f"; with no registry reachable, run scripts/build-base-image.sh and set "
            f"{BASE_IMAGE_VARIABLE}={OFFLINE_BASE}"
        )
    return f"building {tag} on {base} failed ({failed.reason}){hint}"
