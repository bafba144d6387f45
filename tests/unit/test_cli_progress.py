"""Progress away from a terminal: one plain line per milestone, nothing with --quiet."""

import io
import logging

import pytest

from agent_runner.cli.progress import progress_view
from agent_runner.images import (
    BuildFinished,
    BuildOutput,
    BuildStarted,
    BuildStep,
    LayerProgress,
    PullFinished,
    PullStarted,
    Reporter,
)

PULL = [
    PullStarted("r/x:1"),
    LayerProgress("r/x:1", "aaaa", "Pulling fs layer"),
    *(
        LayerProgress("r/x:1", "aaaa", "Downloading", n, 3_000_000)
        for n in range(0, 3_000_000, 500_000)
    ),
    LayerProgress("r/x:1", "aaaa", "Download complete"),
    LayerProgress("r/x:1", "aaaa", "Extracting", 10, 20),
    LayerProgress("r/x:1", "aaaa", "Pull complete"),
    LayerProgress("r/x:1", "bbbb", "Already exists"),
    PullFinished("r/x:1", True),
]
BUILD = [
    BuildStarted("l:1", "req.txt on base"),
    BuildStep("l:1", "Step 1/2 : FROM base"),
    BuildOutput("l:1", "Collecting six"),
    BuildStep("l:1", "Step 2/2 : RUN pip install " + "x" * 200),
    BuildFinished("l:1", True),
]


def shown(events, *, quiet=False, steps=True, extra=()):
    out = io.StringIO()
    with progress_view(quiet=quiet, steps=steps, stream=out):
        report = Reporter()
        for event in events:
            report(event)
        for message, level in extra:
            report.step(message, level)
    return out.getvalue().splitlines()


def test_a_pull_says_each_layers_milestones_not_every_byte():
    assert shown(PULL) == [
        "agent-runner: pull r/x:1: layer aaaa: Downloading (3.0 MB)",
        "agent-runner: pull r/x:1: layer aaaa: Download complete",
        "agent-runner: pull r/x:1: layer aaaa: Pull complete",
        "agent-runner: pull r/x:1: layer bbbb: Already exists",
    ]


def test_a_build_says_its_steps_and_keeps_its_output_for_a_failure():
    lines = shown(BUILD)
    assert lines[0] == "agent-runner: building l:1: req.txt on base"
    assert lines[1] == "agent-runner: build l:1: Step 1/2 : FROM base"
    assert lines[2].endswith("…")
    assert len(lines[2]) <= len("agent-runner: ") + 110
    assert lines[3] == "agent-runner: built l:1"


def test_quiet_leaves_only_warnings():
    extra = [("using the local build", logging.WARNING), ("pulling x", logging.INFO)]
    assert shown(PULL + BUILD, quiet=True, extra=extra) == ["agent-runner: using the local build"]


@pytest.mark.parametrize(("steps", "expected"), [(True, 3), (False, 2)])
def test_exec_hides_the_steps_that_only_say_nothing_was_needed(steps, expected):
    extra = [
        ("x is present locally: used as is", logging.DEBUG),
        ("pulling x: not present locally", logging.INFO),
        ("cannot pull x; using the local build", logging.WARNING),
    ]
    assert len(shown([], steps=steps, extra=extra)) == expected


def test_the_library_logs_nothing_to_the_root_logger_while_shown(caplog):
    with caplog.at_level(logging.DEBUG):
        shown(PULL)
    assert not [r for r in caplog.records if r.name == "agent_runner.images"]


def test_on_a_terminal_rich_draws_the_same_events_and_leaves_the_summary_lines():
    import logging as logging_module

    from agent_runner.cli.progress import ProgressView

    out = io.StringIO()
    view = ProgressView(out, live=True, steps=True, quiet=False)
    for event in [*PULL, *BUILD]:
        record = logging_module.LogRecord("agent_runner.images", event.level, "", 0, "", (), None)
        record.progress = event
        view.emit(record)
    view.close()
    assert view.live is not None
    assert view.live.sizes == {}  # a new display per pull or build, its bars gone with it
    assert "agent-runner: building l:1: req.txt on base" in out.getvalue()
    assert out.getvalue().rstrip().endswith("agent-runner: built l:1")
