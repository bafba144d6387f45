"""What image work reports while it happens: one event type per kind of news.

Pulls and builds take seconds to minutes, so the person waiting should see what is done
and why (a :class:`Step`), each layer of a pull (:class:`LayerProgress`) and the current
step of a build (:class:`BuildStep`). The library never draws anything itself: a
:class:`Reporter` hands each event to an optional callback and logs it on
``agent_runner.images`` with the event attached as ``record.progress``, so the CLI (or any
caller) can render it however it likes, and a program that only logs still sees the steps.

Events are sent from the worker thread that talks to the engine: a callback must be
quick and thread-safe (append to a queue, update a progress bar).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

LOGGER = logging.getLogger("agent_runner.images")


@dataclass(frozen=True)
class Step:
    """A decision or a milestone: what is done and why (``pulling X: not present locally``)."""

    message: str
    level: int = logging.INFO
    """WARNING for what replaces the configured image, DEBUG for "nothing to do"."""

    def text(self) -> str:
        return self.message


@dataclass(frozen=True)
class _Detail:
    """News only a live view needs: logged at DEBUG."""

    level: ClassVar[int] = logging.DEBUG


@dataclass(frozen=True)
class PullStarted(_Detail):
    image: str

    def text(self) -> str:
        return f"pull {self.image}: started"


@dataclass(frozen=True)
class LayerProgress(_Detail):
    """One message of a pull about one layer (the engine's ``status`` for it)."""

    image: str
    layer: str
    status: str
    """``Pulling fs layer``, ``Downloading``, ``Extracting``, ``Pull complete``, ..."""
    current: int | None = None
    total: int | None = None

    def text(self) -> str:
        amount = f" {self.current}/{self.total}" if self.total else ""
        return f"pull {self.image}: layer {self.layer}: {self.status}{amount}"


@dataclass(frozen=True)
class PullFinished(_Detail):
    image: str
    ok: bool

    def text(self) -> str:
        return f"pull {self.image}: {'done' if self.ok else 'failed'}"


@dataclass(frozen=True)
class BuildStarted:
    image: str
    """The tag being built."""
    what: str
    """What from, for a person: ``/src/req.txt on stigmer/agent-sandbox:local``."""

    level: ClassVar[int] = logging.INFO

    def text(self) -> str:
        return f"building {self.image}: {self.what}"


@dataclass(frozen=True)
class BuildStep(_Detail):
    image: str
    step: str
    """The builder's own line: ``Step 3/5 : RUN python3 -m pip install ...``."""

    def text(self) -> str:
        return f"build {self.image}: {self.step}"


@dataclass(frozen=True)
class BuildOutput(_Detail):
    """A line the current step printed (pip's, apt's)."""

    image: str
    line: str

    def text(self) -> str:
        return f"build {self.image}: {self.line}"


@dataclass(frozen=True)
class BuildFinished(_Detail):
    image: str
    ok: bool

    def text(self) -> str:
        return f"build {self.image}: {'done' if self.ok else 'failed'}"


ProgressEvent = (
    Step
    | PullStarted
    | LayerProgress
    | PullFinished
    | BuildStarted
    | BuildStep
    | BuildOutput
    | BuildFinished
)
ProgressCallback = Callable[[ProgressEvent], None]


class Reporter:
    """Sends each event to the callback (if any) and to the ``agent_runner.images`` log."""

    def __init__(self, callback: ProgressCallback | None = None) -> None:
        self.callback = callback

    def __call__(self, event: ProgressEvent) -> None:
        if self.callback is not None:
            self.callback(event)
        if LOGGER.isEnabledFor(event.level):
            LOGGER.log(event.level, "%s", event.text(), extra={"progress": event})

    def step(self, message: str, level: int = logging.INFO) -> None:
        self(Step(message, level))
