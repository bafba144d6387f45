"""The Daytona driver's pieces that need no sandbox: its marks, and the state it is handed.

The driver itself runs in ``tests/contract/test_daytona.py`` and ``tests/daytona``; here,
the reading of its streams as they arrive in arbitrary pieces, and the quoting of the
state it sources (checked by running it through a real bash).
"""

from __future__ import annotations

import base64
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent_runner.backends.daytona.driver import Launch, Marks, command_text, prelude

TOKEN = "0123456789abcdef"


def read(pieces: list[str]) -> tuple[bytes, Marks, list[int]]:
    received = bytearray()
    dropped: list[int] = []
    marks = Marks(TOKEN, received.extend, dropped.append)
    for piece in pieces:
        marks.push(piece)
    return bytes(received), marks, dropped


def test_content_before_the_end_mark_is_output_and_the_mark_carries_code_and_state():
    state = base64.b64encode(b"/tmp\0A=1\0").decode()
    received, marks, _ = read([f"out\nlast line@{TOKEN}@end 7 {state}\n"])
    assert received == b"out\nlast line"
    assert (marks.ended, marks.exit_code, marks.state) == (True, 7, b"/tmp\0A=1\0")


def test_a_mark_split_across_pieces_is_never_output():
    text = f"abc@{TOKEN}@end 0 \n"
    for cut in range(1, len(text)):
        received, marks, _ = read([text[:cut], text[cut:]])
        assert (received, marks.exit_code) == (b"abc", 0), cut


def test_a_gap_reports_what_the_sandbox_cut_between_head_and_tail():
    received, marks, dropped = read([f"head@{TOKEN}@gap 1234\ntail\n@{TOKEN}@end 0 \n"])
    assert (received, dropped, marks.exit_code) == (b"headtail\n", [1234], 0)


def test_the_start_mark_is_noted_and_not_output():
    received, marks, _ = read([f"@{TOKEN}@start\n", "data\n"])
    assert (received, marks.started, marks.ended) == (b"data\n", True, False)


def test_another_commands_token_is_plain_output():
    received, marks, _ = read(["@ffffffffffffffff@end 1 \n"])
    assert (received, marks.ended) == (b"@ffffffffffffffff@end 1 \n", False)


@given(st.text(), st.lists(st.integers(min_value=0, max_value=200), max_size=6))
def test_any_output_in_any_pieces_arrives_whole(content, cuts):
    text = content + f"@{TOKEN}@end 0 \n"
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    received, marks, _ = read(pieces)
    assert received == content.encode("utf-8", "surrogateescape")
    assert marks.exit_code == 0


@pytest.mark.parametrize(
    "value", ["plain", "with space", "it's", 'a "quote"', "$HOME `x` $(y)", "new\nline", "*", ""]
)
def test_the_state_reaches_the_command_exactly(value):
    script = prelude("/tmp", {"ODD": value, "PATH": "/usr/bin:/bin"}, {"GONE"})
    done = subprocess.run(
        ["bash", "-c", f'{script}\nprintf "%s|%s|%s" "$PWD" "$ODD" "${{GONE-unset}}"'],
        env={"GONE": "still here"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == f"/tmp|{value}|unset"


def test_a_long_command_travels_on_a_heredoc_and_a_short_one_as_an_argument():
    launch = Launch(3, TOKEN, "/tmp/.stigmer/x")
    short = command_text(launch, "echo hi", "", live=False, cap=100, stdin=False, capture=False)
    long = command_text(launch, "#" * 200_000, "", live=False, cap=100, stdin=False, capture=True)
    assert "'echo hi'" in short
    assert "#" * 200_000 + "\n__STIGMER_COMMAND_" + TOKEN in long
    assert "/tmp/.stigmer/x/3.state" in long
