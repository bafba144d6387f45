"""Which image a sandbox starts from: present locally, else pulled, else built here.

The plan's order for the default image: use it when the engine has it; pull it
(``auto_pull``); when it cannot be pulled, use the local build
(``stigmer/agent-sandbox:local``), building it from the basic tier's Dockerfile if needed.
An image the user configured is only ever used as configured: pulled, never substituted.

Each step says what it does and why (:class:`~agent_runner.images.progress.Step`). A failed
pull is remembered (:mod:`.memory`): for the next hour the default image goes straight to
the local build and the fallback warning is not repeated, and a configured image fails
at once with the same line; ``refresh`` (``image ensure --refresh``, ``image pull``) tries
again at once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from agent_runner.config import DEFAULT_SANDBOX_IMAGE, LOCAL_BUILD_TAG, Settings
from agent_runner.errors import ImageNotFound, PullFailed
from agent_runner.images.client import Client
from agent_runner.images.memory import Failure, PullMemory
from agent_runner.images.progress import Reporter
from agent_runner.images.registry import credentials, pull, registry_of
from agent_runner.images.tiers import DOCKERFILES, build_tier


@dataclass(frozen=True)
class Resolution:
    """The image sandboxes start from, and how it came to be there."""

    image: str
    image_id: str
    how: str
    """``present``, ``pulled``, ``local build`` (the fallback, already here) or ``built``."""
    why: str
    """One sentence for a person."""


def ensure_image(
    client: Client,
    settings: Settings,
    report: Reporter,
    *,
    refresh: bool = False,
    memory: PullMemory | None = None,
) -> Resolution:
    """Make the image a sandbox would use present and say which it is (blocking)."""
    image = settings.sandbox_image
    memory = memory or PullMemory()
    found = client.inspect(image)
    if found is not None and not refresh:
        report.step(f"{image} is present locally: used as is", logging.DEBUG)
        return Resolution(image, found["Id"], "present", f"{image} is present locally")
    if found is None and not settings.auto_pull and not refresh:
        raise ImageNotFound(
            f"sandbox image {image} is not present and auto_pull is off: "
            f"run `agent-runner image pull {image}` or set execution.auto_pull true"
        )
    failure = None if refresh else memory.recent(image, _fingerprint(client, image))
    fresh = False
    if failure is None:
        why = "refreshing it from the registry" if found is not None else "not present locally"
        report.step(f"pulling {image}: {why}")
        try:
            return _pull(client, settings, image, report, memory)
        except PullFailed as error:
            failure, fresh = _remember(client, image, error, memory), True
    if found is not None:
        report.step(f"{failure.message}; keeping the copy that is present", logging.WARNING)
        return Resolution(image, found["Id"], "present", f"{image} is present; the pull failed")
    if image != DEFAULT_SANDBOX_IMAGE:
        if fresh:
            raise PullFailed(failure.message, failure.kind)
        raise PullFailed(
            f"{failure.message} (remembered from a pull at {_clock(failure.at)}; "
            f"`agent-runner image pull {image}` tries again now)",
            failure.kind,
        )
    return _local_build(client, settings, report, failure, fresh, memory)


def pull_image(
    client: Client,
    settings: Settings,
    image: str,
    report: Reporter,
    *,
    memory: PullMemory | None = None,
) -> Resolution:
    """Pull ``image`` now, whatever was remembered; a failure is remembered and raised."""
    memory = memory or PullMemory()
    report.step(f"pulling {image}: asked to")
    try:
        return _pull(client, settings, image, report, memory)
    except PullFailed as error:
        _remember(client, image, error, memory)
        raise


def _pull(
    client: Client, settings: Settings, image: str, report: Reporter, memory: PullMemory
) -> Resolution:
    pull(client, image, timeout=settings.sandbox.registry_timeout, report=report)
    memory.forget(image)
    image_id = client.image_id(image)
    if image_id is None:
        raise ImageNotFound(f"{image} was pulled but the engine does not list it; pull it again")
    report.step(f"pulled {image}")
    return Resolution(image, image_id, "pulled", f"{image} was pulled from {registry_of(image)}")


def _fingerprint(client: Client, image: str) -> str:
    """Which credentials a pull of ``image`` would send (a login in between is news)."""
    return credentials(client, registry_of(image))[1]


def _remember(client: Client, image: str, error: PullFailed, memory: PullMemory) -> Failure:
    failure = Failure(image, error.message, error.kind, time.time(), _fingerprint(client, image))
    memory.remember_failure(failure)
    return failure


def _local_build(
    client: Client,
    settings: Settings,
    report: Reporter,
    failure: Failure,
    fresh: bool,
    memory: PullMemory,
) -> Resolution:
    """The default image cannot be pulled: the local build stands in (built if missing)."""
    image = settings.sandbox_image
    retry = failure.retry_at(memory.remember)
    if fresh:
        report.step(
            f"{failure.message}; using the local build {LOCAL_BUILD_TAG} instead (no new pull "
            f"before {retry}; `agent-runner image pull` tries now)",
            logging.WARNING,
        )
    else:
        report.step(
            f"using the local build {LOCAL_BUILD_TAG}: {image} could not be pulled at "
            f"{_clock(failure.at)} (tried again after {retry})",
            logging.DEBUG,
        )
    local = client.inspect(LOCAL_BUILD_TAG)
    why = f"{image} cannot be pulled ({failure.kind}), so the local build stands in"
    if local is not None:
        return Resolution(LOCAL_BUILD_TAG, local["Id"], "local build", why)
    report.step(
        f"building {LOCAL_BUILD_TAG} from {DOCKERFILES['basic']}: it is not here yet "
        "(a few minutes, once)"
    )
    build_tier(client, settings, report, "basic", LOCAL_BUILD_TAG)
    built = client.image_id(LOCAL_BUILD_TAG)
    if built is None:
        raise ImageNotFound(f"{LOCAL_BUILD_TAG} was built but the engine does not list it")
    return Resolution(LOCAL_BUILD_TAG, built, "built", why)


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.localtime(at))
