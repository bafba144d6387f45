"""The MCP server's small parts on their own: page boundaries, the state report, input
judging, progress lines and the HTTP token check."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from agent_runner.errors import InvalidSetting
from agent_runner.mcp_server.auth import check_binding, is_loopback, load_token, rebinding_check
from agent_runner.mcp_server.paging import Cursor, char_boundary
from agent_runner.mcp_server.progress import LatestLine, tidy
from agent_runner.mcp_server.stdin_guard import InputRefused, StdinGuard, reads_code
from agent_runner.policy import decide
from agent_runner.process_state import StateSplitter, new_marker, wrap
from agent_runner.results import OutputChunk, Stream


@pytest.mark.parametrize("text", ["abc", "é", "日本", "🚀x", "a🚀"])
def test_a_page_never_ends_inside_a_character(text):
    data = text.encode()
    for cut in range(len(data) + 1):
        kept = data[: char_boundary(data[:cut])]
        assert text.startswith(kept.decode("utf-8"))


def test_cursors_round_trip_and_refuse_anything_else():
    assert Cursor.parse(str(Cursor(12, 3))) == Cursor(12, 3)
    for bad in ("", "12", "a.b", "-1.2", "1.2.3"):
        with pytest.raises(InvalidSetting):
            Cursor.parse(bad)


def test_the_state_report_is_split_off_whatever_the_chunking():
    marker = new_marker()
    report = b"\x01" + marker.encode() + b"\x01/tmp\nA=1\n\x01\n"
    stream = b"err \x01 text\n" + report
    for size in (1, 2, 5, 64):
        splitter = StateSplitter(marker)
        kept = b"".join(splitter.feed(stream[i : i + size]) for i in range(0, len(stream), size))
        assert kept + splitter.flush() == b"err \x01 text\n"
        assert splitter.state is not None
        assert (splitter.state.cwd, splitter.state.env) == ("/tmp", {"A": "1"})


@pytest.mark.parametrize(
    "value", ["plain", "two\nlines", "back\\slash", "literal \\n", "cr\r", "a=b", "日本", ""]
)
def test_the_report_brings_back_any_value_through_real_bash(value, tmp_path):
    marker = new_marker()
    command = f"cd {shlex.quote(str(tmp_path))} && export TRICKY={shlex.quote(value)}"
    done = subprocess.run(["bash", "-c", wrap(command, marker)], capture_output=True, check=True)
    assert b"\0" not in done.stderr  # survives a backend that carries stderr as text lines
    splitter = StateSplitter(marker)
    assert splitter.feed(done.stderr) + splitter.flush() == b""
    assert splitter.state is not None
    assert splitter.state.cwd == str(tmp_path)
    assert splitter.state.env["TRICKY"] == value


def test_a_report_cut_short_is_no_state():
    marker = new_marker()
    splitter = StateSplitter(marker)
    splitter.feed(b"\x01" + marker.encode() + b"\x01/tmp\nA=1\n")
    assert splitter.state is None


def test_a_marker_prefix_that_never_completes_is_given_back():
    splitter = StateSplitter(new_marker())
    assert splitter.feed(b"tail \x01stig") == b"tail "
    assert splitter.flush() == b"\x01stig"
    assert splitter.state is None


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("bash", ("shell", "bash")),
        ("cat | sh -s", ("shell", "sh")),
        ("env X=1 timeout 5 zsh -i", ("shell", "zsh")),
        ("python3", ("repl", "python3")),
        ("python3.12 -i app.py", ("repl", "python3.12")),
        ("sqlite3 data.db", ("repl", "sqlite3")),
        ("bash -c 'read x; echo $x'", None),
        ("bash build.sh", None),
        ("python3 app.py", None),
        ("node -e 'process.stdin.pipe(process.stdout)'", None),
        ("cat", None),
        ("sort -u", None),
    ],
)
def test_which_commands_read_code_on_stdin(command, expected):
    assert reads_code(command) == expected


def judge(workspace: str):
    return lambda script: decide(script, cwd=workspace, workspace=workspace)


def test_a_shell_guard_judges_complete_lines_with_what_came_before(tmp_path):
    guard = StdinGuard("shell", "bash", judge(str(tmp_path)))
    assert guard.admit("ls; ech") == ""
    assert guard.admit("o hi\n") == "ls; echo hi\n"
    assert guard.admit("cd /usr\n") == "cd /usr\n"
    with pytest.raises(InputRefused, match="outside-workspace"):
        guard.admit("rm -r lib\n")
    assert guard.admit("pwd", final=True) == "pwd"


def test_a_repl_guard_refuses_code_but_lets_polls_through(tmp_path):
    guard = StdinGuard("repl", "node", judge(str(tmp_path)))
    assert guard.admit("") == ""
    with pytest.raises(InputRefused, match="cannot judge"):
        guard.admit("1 + 1\n")


def test_progress_shows_the_last_line_tidied_and_bounded():
    latest = LatestLine()
    latest(OutputChunk(Stream.STDOUT, b"", "first\nsec"))
    assert latest.line == "sec"
    latest(OutputChunk(Stream.STDERR, b"", "ond\n\n"))
    assert latest.line == "second"
    assert tidy("10%\r\x1b[32m55%\x1b[0m done") == "55% done"
    assert len(tidy("x" * 500)) == 200


def test_loopback_is_told_apart_from_the_rest():
    assert all(map(is_loopback, ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.2", "example.com", "::"]))


def test_loopback_binds_accept_only_loopback_host_headers():
    check = rebinding_check("127.0.0.2")
    assert check is not None
    assert "127.0.0.2:*" in check.allowed_hosts
    assert "localhost:*" in check.allowed_hosts
    assert "http://127.0.0.2:*" in check.allowed_origins
    assert "[::1]:*" in rebinding_check("::1").allowed_hosts
    assert rebinding_check("0.0.0.0") is None


def test_binding_beyond_loopback_needs_a_long_enough_token(tmp_path):
    check_binding("127.0.0.1", None)
    with pytest.raises(InvalidSetting, match="--token"):
        check_binding("0.0.0.0", None)
    check_binding("0.0.0.0", "t" * 16)
    with pytest.raises(InvalidSetting, match="16"):
        load_token("short", None)
    path = tmp_path / "token"
    path.write_text("a-token-from-a-file\n")
    assert load_token(None, path) == "a-token-from-a-file"
    with pytest.raises(InvalidSetting, match="not both"):
        load_token("t" * 16, path)
