"""A build's stream becomes its current step and its last lines; a failed one leaves nothing."""

import pytest

from agent_runner.images import BuildFinished, BuildOutput, BuildStarted, BuildStep, Reporter
from agent_runner.images.build import KEPT_LINES, BuildFailed, run_build
from agent_runner.images.client import Client


class Errors:
    class APIError(Exception):
        pass

    class ImageNotFound(APIError):
        pass


class Api:
    def __init__(self, events, tags=None):
        self.events = events
        self.removed = []
        self.tags = tags or {}
        self.options = None

    def build(self, **options):
        self.options = options
        yield from self.events

    def inspect_image(self, reference):
        if reference not in self.tags:
            raise Errors.ImageNotFound(reference)
        return {"Id": reference, "RepoTags": self.tags[reference]}

    def remove_image(self, reference):
        self.removed.append(reference)


def stream(*chunks):
    return [{"stream": chunk} for chunk in chunks]


def build(api, events):
    return run_build(
        Client(api, Errors), Reporter(events.append), tag="t:1", what="a test", path="/x"
    )


SUCCESS = [
    *stream(
        "Step 1/3 : FROM sha256:base",
        "\n",
        " ---> 0123456789ab\n",
        "Step 2/3 : COPY . /tmp/x/",
        "\n",
        " ---> 111111111111\n",
        "Step 3/3 : RUN pip install six",
        "\n",
        " ---> Running in cafecafecafe\n",
        "Collecting six\nInstalling col",
        "lected packages: six\n",
        "Removing intermediate container cafecafecafe\n",
        " ---> 222222222222\n",
    ),
    {"aux": {"ID": "sha256:222222222222"}},
    {"stream": "Successfully built 222222222222\n"},
]


def test_steps_and_lines_are_reported_and_lines_split_anywhere_are_joined():
    events = []
    api = Api(SUCCESS)
    assert build(api, events) == "sha256:222222222222"
    assert isinstance(events[0], BuildStarted)
    assert [e.step for e in events if isinstance(e, BuildStep)] == [
        "Step 1/3 : FROM sha256:base",
        "Step 2/3 : COPY . /tmp/x/",
        "Step 3/3 : RUN pip install six",
    ]
    assert [e.line for e in events if isinstance(e, BuildOutput)] == [
        "Collecting six",
        "Installing collected packages: six",
    ]
    assert events[-1] == BuildFinished("t:1", True)
    assert api.options["forcerm"]  # no intermediate container stays, even on failure
    assert api.options["rm"]
    assert api.removed == []


FAILURE = [
    *stream(
        "Step 1/3 : FROM sha256:base",
        "\n",
        " ---> 0123456789ab\n",
        "Step 2/3 : COPY . /tmp/x/",
        "\n",
        " ---> Using cache\n",
        " ---> 333333333333\n",
        "Step 3/3 : LABEL a=b",
        "\n",
        " ---> 444444444444\n",
        "Step 4/4 : RUN pip install nope",
        "\n",
        " ---> Running in cafecafecafe\n",
        "\x1b[91mERROR: No matching distribution found for nope\n\x1b[0m",
    ),
    {
        "errorDetail": {"code": 1, "message": "The command returned a non-zero code: 1"},
        "error": "The command '/bin/sh -c pip install nope' returned a non-zero code: 1",
    },
]


def test_a_failed_build_keeps_its_last_lines_and_removes_what_it_committed():
    events = []
    api = Api(FAILURE, tags={"444444444444": ["<none>:<none>"], "333333333333": []})
    with pytest.raises(BuildFailed) as failed:
        build(api, events)
    assert failed.value.code == 1
    assert failed.value.step == "Step 4/4 : RUN pip install nope"
    assert failed.value.lines == ["ERROR: No matching distribution found for nope"]
    # What this build committed goes; the base and what came from the cache stay.
    assert api.removed == ["444444444444"]
    assert events[-1] == BuildFinished("t:1", False)


def test_an_intermediate_someone_tagged_meanwhile_is_left_alone():
    api = Api(FAILURE, tags={"444444444444": ["mine:1"]})
    with pytest.raises(BuildFailed):
        build(api, [])
    assert api.removed == []


def test_only_the_last_lines_are_kept():
    lines = "".join(f"line {n}\n" for n in range(KEPT_LINES * 3))
    api = Api([*stream("Step 1/1 : RUN x", "\n", lines), {"error": "failed"}])
    with pytest.raises(BuildFailed) as failed:
        build(api, [])
    assert failed.value.lines[-1] == f"line {KEPT_LINES * 3 - 1}"
    assert len(failed.value.lines) == KEPT_LINES
    assert failed.value.last(2) == [f"line {KEPT_LINES * 3 - 2}", f"line {KEPT_LINES * 3 - 1}"]
