"""Showing image work while it happens: ``rich`` on a terminal, plain lines otherwise.

The library reports through the ``agent_runner.images`` log, each record carrying its
event (:mod:`agent_runner.images.progress`); this handler renders them on stderr. On a
terminal a pull is a bar per layer and a build a spinner with its current step and last
line; anywhere else (pipes, CI, an agent reading the output) a pull says each layer's
milestones and a build each step, one line each. ``--quiet`` leaves only warnings.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TextIO

from agent_runner.images.progress import (
    LOGGER,
    BuildFinished,
    BuildOutput,
    BuildStarted,
    BuildStep,
    LayerProgress,
    ProgressEvent,
    PullFinished,
    PullStarted,
    Step,
)

if TYPE_CHECKING:  # rich is imported only when a terminal shows the progress
    from rich.progress import Progress, TaskID

PLAIN_STATUSES = ("Downloading", "Download complete", "Pull complete", "Already exists")
"""The layer milestones a plain line is written for (not every byte count)."""
WIDTH = 110


class ProgressView(logging.Handler):
    """Renders progress records; ``steps`` shows every step (``image`` commands), otherwise
    only those that announce work (a pull, a build) and warnings (``exec``)."""

    def __init__(self, stream: TextIO, *, live: bool, steps: bool, quiet: bool) -> None:
        super().__init__(logging.DEBUG)
        self.stream = stream
        self.steps = steps
        self.quiet = quiet
        self.live = _Live(stream) if live and not quiet else None
        self._statuses: dict[tuple[str, str], str] = {}

    def emit(self, record: logging.LogRecord) -> None:
        event: ProgressEvent | None = getattr(record, "progress", None)
        if event is None or isinstance(event, Step):
            shown = record.levelno >= logging.WARNING or (
                not self.quiet and (self.steps or record.levelno >= logging.INFO)
            )
            if shown:
                self.say(record.getMessage())
            return
        if self.quiet:
            return
        if self.live is not None:
            self.live.show(event)
        else:
            self._plain(event)

    def say(self, text: str) -> None:
        line = f"agent-runner: {text}"
        if self.live is not None and self.live.active:
            self.live.print(line)
        else:
            print(line, file=self.stream, flush=True)

    def _plain(self, event: ProgressEvent) -> None:
        if isinstance(event, LayerProgress):
            key = (event.image, event.layer)
            if event.status in PLAIN_STATUSES and self._statuses.get(key) != event.status:
                self._statuses[key] = event.status
                size = f" ({event.total / 1e6:.1f} MB)" if event.total else ""
                self.say(f"pull {event.image}: layer {event.layer}: {event.status}{size}")
        elif isinstance(event, BuildStarted):
            self.say(event.text())
        elif isinstance(event, BuildStep):
            self.say(_clip(event.text()))
        elif isinstance(event, BuildFinished) and event.ok:
            self.say(f"built {event.image}")

    def close(self) -> None:
        if self.live is not None:
            self.live.stop()
        super().close()


class _Live:
    """A ``rich`` display per pull or build, started and stopped by their events."""

    def __init__(self, stream: TextIO) -> None:
        from rich.console import Console

        self.console = Console(file=stream)
        self.progress: Progress | None = None
        self.tasks: dict[str, TaskID] = {}
        self.sizes: dict[str, int] = {}

    @property
    def active(self) -> bool:
        return self.progress is not None

    def print(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def show(self, event: ProgressEvent) -> None:
        if isinstance(event, PullStarted | BuildStarted):
            self.stop()
            self.progress = self._start(pull=isinstance(event, PullStarted))
            if isinstance(event, BuildStarted):
                self.print(f"agent-runner: {event.text()}")
                self.tasks["build"] = self.progress.add_task("starting", total=None, line="")
            return
        progress = self.progress
        if progress is None:
            return
        if isinstance(event, LayerProgress):
            self._layer(progress, event)
        elif isinstance(event, BuildStep) and "build" in self.tasks:
            progress.update(self.tasks["build"], description=_clip(event.step, 70))
        elif isinstance(event, BuildOutput) and "build" in self.tasks:
            progress.update(self.tasks["build"], line=_clip(event.line, 60))
        elif isinstance(event, PullFinished):
            self.stop()  # the library's own step says "pulled"
        elif isinstance(event, BuildFinished):
            self.stop()
            if event.ok:
                self.print(f"agent-runner: built {event.image}")

    def _layer(self, progress: Progress, event: LayerProgress) -> None:
        """A bar per layer: its download (then extraction) size, full once it is done."""
        done = event.status in ("Pull complete", "Already exists", "Download complete")
        if event.total:
            self.sizes[event.layer] = event.total
        total = self.sizes.get(event.layer) or (1 if done else None)
        task = self.tasks.get(event.layer)
        if task is None:
            task = progress.add_task(event.layer, total=total)
            self.tasks[event.layer] = task
        completed = total if done else event.current
        progress.update(
            task, description=f"{event.layer} {event.status}", total=total, completed=completed or 0
        )

    def _start(self, *, pull: bool) -> Progress:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            ProgressColumn,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        columns: list[ProgressColumn] = [SpinnerColumn(), TextColumn("{task.description}")]
        if pull:
            columns += [BarColumn(), DownloadColumn()]
        else:
            columns += [TimeElapsedColumn(), TextColumn("[dim]{task.fields[line]}")]
        progress = Progress(*columns, console=self.console, transient=True)
        progress.start()
        self.tasks, self.sizes = {}, {}
        return progress

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.progress = None


def _clip(text: str, width: int = WIDTH) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@contextmanager
def progress_view(*, quiet: bool, steps: bool, stream: TextIO | None = None) -> Iterator[None]:
    """Render image progress on stderr while the block runs."""
    target = stream or sys.stderr
    live = target.isatty() and os.environ.get("TERM", "") != "dumb"
    view = ProgressView(target, live=live, steps=steps, quiet=quiet)
    level, propagate = LOGGER.level, LOGGER.propagate
    LOGGER.addHandler(view)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    try:
        yield
    finally:
        LOGGER.removeHandler(view)
        LOGGER.setLevel(level)
        LOGGER.propagate = propagate
        view.close()
