"""Running one image build on the engine: its current step, its last lines, and its mess.

The engine streams a build as text chunks (lines split anywhere, ``Step N/M : ...``
headers, `` ---> id`` after each step); this turns them into events (the step, each line
the step printed) and keeps the last lines, which are what a person needs when it fails.

A failed build leaves nothing behind: the tag is only set on success, ``forcerm``
removes the intermediate containers, and the intermediate images this build committed
(one per successful step, e.g. the ``COPY`` before a failing ``RUN``) are removed here,
except those it found in the cache, which belong to earlier builds.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from agent_runner.errors import first_line
from agent_runner.images.client import Client
from agent_runner.images.progress import (
    BuildFinished,
    BuildOutput,
    BuildStarted,
    BuildStep,
    Reporter,
)

KEPT_LINES = 40
_STEP = re.compile(r"^Step \d+/\d+ : ")
_IMAGE = re.compile(r"^ ---> ([0-9a-f]{12,64})$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_BUILDER_NOISE = re.compile(
    r"^( ---> Running in |Removing intermediate container | ---> Using cache$|Successfully )"
)


class BuildFailed(Exception):
    """The build stopped: the builder's reason, the step, and the last lines printed."""

    def __init__(self, reason: str, step: str | None, lines: list[str], code: int | None):
        super().__init__(reason)
        self.reason = reason
        self.step = step
        self.lines = lines
        self.code = code
        """The failing ``RUN``'s exit status, when the builder gave one."""

    def last(self, count: int) -> list[str]:
        return self.lines[-count:]


@dataclass
class _Progress:
    """What one build has shown so far."""

    image: str
    report: Reporter
    step: str | None = None
    from_cache: bool = False
    base_step: bool = False
    partial: str = ""

    def __post_init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=KEPT_LINES)
        self.committed: list[str] = []

    def feed(self, text: str) -> None:
        self.partial += _ANSI.sub("", text)  # the builder colours what steps print on stderr
        *complete, self.partial = self.partial.split("\n")
        for line in complete:
            self._line(line.rstrip("\r"))

    def _line(self, line: str) -> None:
        if _STEP.match(line):
            self.step = line
            self.from_cache = False
            self.base_step = line.split(" : ", 1)[1].upper().startswith("FROM ")
            self.report(BuildStep(self.image, line))
            return
        committed = _IMAGE.match(line)
        if committed is not None:
            if not self.base_step and not self.from_cache:  # a FROM names a base, never ours
                self.committed.append(committed.group(1))
            return
        if line == " ---> Using cache":
            self.from_cache = True
        if _BUILDER_NOISE.match(line) or not line.strip():
            return
        self.lines.append(line)
        self.report(BuildOutput(self.image, line))


def run_build(client: Client, report: Reporter, *, tag: str, what: str, **options: Any) -> str:
    """Build ``tag`` with docker-py's ``build(**options)`` (blocking); return the image id.

    Raises :class:`BuildFailed`, after removing what the failed build committed.
    """
    progress = _Progress(tag, report)
    report(BuildStarted(tag, what))
    image_id: str | None = None
    ok = False
    try:
        events: Iterable[dict[str, Any]] = client.api.build(
            tag=tag, rm=True, forcerm=True, decode=True, **options
        )
        for event in events:
            if "stream" in event:
                progress.feed(str(event["stream"]))
            if "aux" in event and isinstance(event["aux"], dict) and "ID" in event["aux"]:
                image_id = str(event["aux"]["ID"])
            if "error" in event:
                progress.feed("\n")
                detail = event.get("errorDetail") or {}
                raise BuildFailed(
                    str(event["error"]).strip(),
                    progress.step,
                    list(progress.lines),
                    detail.get("code"),
                )
        progress.feed("\n")
        if image_id is None:
            image_id = client.image_id(tag)
        if image_id is None:
            raise BuildFailed("the engine built nothing", progress.step, list(progress.lines), None)
        ok = True
        return image_id
    except client.errors.APIError as error:
        raise BuildFailed(first_line(error), progress.step, list(progress.lines), None) from None
    finally:
        if not ok:
            for committed in reversed(progress.committed):
                _remove_untagged(client, committed)
        report(BuildFinished(tag, ok))


def _remove_untagged(client: Client, image_id: str) -> None:
    """Remove an intermediate image of a failed build, unless something tagged it since."""
    found = client.inspect(image_id)
    if found is None or any(tag != "<none>:<none>" for tag in found.get("RepoTags") or []):
        return
    with suppress(client.errors.APIError):
        client.api.remove_image(image_id)
