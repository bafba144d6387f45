"""Which image a sandbox starts from: present locally, else pulled, else built here.

The plan's order for the default image: use it when the engine has it; pull it
(``auto_pull``); when the registry cannot be reached, use a local build
(``stigmer/agent-sandbox:local``), building it from the basic tier's Dockerfile if needed.
Every step that replaces the configured image is logged, and an image that is neither
present, pullable nor buildable is an error that says what to do. A non-default image is
only ever used as configured: it is pulled, never substituted.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from agent_runner.config import DEFAULT_SANDBOX_IMAGE, LOCAL_BUILD_TAG, Settings
from agent_runner.errors import ImageNotFound, first_line

logger = logging.getLogger("agent_runner")
OFFLINE_BASE = "stigmer/sandbox-base:bookworm"
"""What scripts/build-base-image.sh produces when no registry is reachable."""
BASE_IMAGE_VARIABLE = "STIGMER_SANDBOX_BASE_IMAGE"
DOCKERFILE = "Dockerfile.sandbox.basic"


def build_context() -> Path:
    """The basic tier's build files: packaged with the wheel, or the repository's sandbox/."""
    packaged = Path(__file__).parent / "_sandbox"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "sandbox"


def resolve_image(api: Any, errors: Any, settings: Settings) -> str:
    """The image to start sandboxes from (blocking: run it in a thread)."""
    image = settings.sandbox_image
    if _present(api, errors, image):
        return image
    if not settings.auto_pull:
        raise ImageNotFound(
            f"sandbox image {image} is not present and auto_pull is off: "
            f"run `docker pull {image}` or set execution.auto_pull true"
        )
    try:
        api.pull(image)
        return image
    except errors.APIError as error:
        reason = first_line(error)
    if image != DEFAULT_SANDBOX_IMAGE:
        raise ImageNotFound(
            f"sandbox image {image} is not present and could not be pulled ({reason}); "
            "pull or build it, or set execution.sandbox_image"
        )
    if not _present(api, errors, LOCAL_BUILD_TAG):
        logger.warning(
            "%s could not be pulled (%s); building %s from %s once (a few minutes)",
            image,
            reason,
            LOCAL_BUILD_TAG,
            DOCKERFILE,
        )
        build_basic(api, errors, settings)
    logger.warning("%s could not be pulled; using the local build %s", image, LOCAL_BUILD_TAG)
    return LOCAL_BUILD_TAG


def build_basic(api: Any, errors: Any, settings: Settings) -> None:
    """Build the basic tier as ``stigmer/agent-sandbox:local``, trusting the CA bundle if set."""
    base = os.environ.get(BASE_IMAGE_VARIABLE) or (
        OFFLINE_BASE if _present(api, errors, OFFLINE_BASE) else "debian:bookworm-slim"
    )
    with tempfile.TemporaryDirectory(prefix="stigmer-build-") as directory:
        context = Path(directory)
        shutil.copytree(build_context(), context, dirs_exist_ok=True)
        if settings.sandbox.ca_bundle is not None:
            shutil.copyfile(settings.sandbox.ca_bundle, context / "ca-certificates" / "extra.crt")
        try:
            for event in api.build(
                path=str(context),
                dockerfile=DOCKERFILE,
                tag=LOCAL_BUILD_TAG,
                buildargs={"BASE_IMAGE": base},
                rm=True,
                forcerm=True,
                decode=True,
            ):
                if "error" in event:
                    raise ImageNotFound(_build_failed(base, str(event["error"])))
        except errors.APIError as error:
            raise ImageNotFound(_build_failed(base, first_line(error))) from None


def _build_failed(base: str, detail: str) -> str:
    last = detail.strip().splitlines()[-1] if detail.strip() else "no detail"
    return (
        f"building {LOCAL_BUILD_TAG} on {base} failed ({last}); with no registry reachable, "
        f"run scripts/build-base-image.sh and set {BASE_IMAGE_VARIABLE}={OFFLINE_BASE}"
    )


def _present(api: Any, errors: Any, image: str) -> bool:
    try:
        api.inspect_image(image)
    except errors.ImageNotFound:
        return False
    return True
