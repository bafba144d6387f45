"""The in-sandbox executor's pieces that can be checked on the host."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from agent_runner.backends import executor


def archive(*members: tuple[str, bytes | None, str | None]) -> io.BytesIO:
    """(name, data, symlink target): data None and no target makes a directory."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, target in members:
            info = tarfile.TarInfo(name)
            if target is not None:
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def test_unpack_writes_files_inside_the_destination(tmp_path):
    executor._unpack(
        archive(("sub", None, None), ("sub/a.txt", b"hello", None), ("ln", None, "sub/a.txt")),
        str(tmp_path),
    )
    assert (tmp_path / "sub" / "a.txt").read_bytes() == b"hello"
    assert (tmp_path / "ln").read_bytes() == b"hello"


@pytest.mark.parametrize(
    "members",
    [
        [("../escape.txt", b"x", None)],
        [("/etc/evil", b"x", None)],
        [("up", None, "../../outside")],
        [("abs", None, "/etc")],
    ],
)
def test_unpack_refuses_anything_that_leaves_the_destination(tmp_path, members):
    target = tmp_path / "ws"
    target.mkdir()
    with pytest.raises(ValueError, match="would leave|links outside"):
        executor._unpack(archive(*members), str(target))
    assert list(tmp_path.iterdir()) == [target]


def test_unpack_reports_a_broken_archive_as_value_error(tmp_path):
    with pytest.raises(ValueError, match="."):
        executor._unpack(io.BytesIO(b"not a tar at all" * 100), str(tmp_path))


def test_parse_state_and_carry_over():
    assert executor.parse_state(b"") is None
    assert executor.parse_state(b"/w\0A=1") is None  # cut short: not written to the end
    cwd, env = executor.parse_state(b"/w\0A=1\0B=x=y\0_=bash\0SHLVL=2\0")
    assert (cwd, env) == ("/w", {"A": "1", "B": "x=y"})
    assert executor.carry_over(
        {"KEEP": "k"}, {"ONCE": "o", "KEEP": "over"}, {"KEEP": "over", "ONCE": "o", "NEW": "n"}
    ) == {
        "KEEP": "k",
        "NEW": "n",
    }
    assert executor.carry_over({}, {"ONCE": "o"}, {"ONCE": "changed"}) == {"ONCE": "changed"}


OLDER_PYTHONS = sorted(str(p) for p in Path.home().glob(".pyenv/versions/3.[89].*/bin/python3"))
"""Sandbox images may carry an older python3 than the runner; those found here are tried too."""


class Executor:
    """The executor as a sandbox runs it: a process of its own, spoken to in frames."""

    def __init__(self, python: str, workdir: Path) -> None:
        self.process = subprocess.Popen(
            [
                python,
                "-I",
                "-S",
                "-u",
                "-c",
                Path(executor.__file__).read_text(),
                str(workdir / "state"),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=workdir,
        )

    def send(self, request: dict, body: bytes = b"") -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request).encode() + b"\n" + body)
        self.process.stdin.flush()

    def send_raw(self, line: bytes) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line)
        self.process.stdin.flush()

    def frame(self) -> tuple[bytes, int, bytes]:
        assert self.process.stdout is not None
        header = self.process.stdout.read(executor.HEADER.size)
        assert len(header) == executor.HEADER.size, "the executor ended its output"
        kind, number, length = executor.HEADER.unpack(header)
        return kind, number, self.process.stdout.read(length)

    def until_exited(self, number: int) -> tuple[bytes, bytes, dict]:
        """stdout and stderr of command ``number``, and its report."""
        out, err = b"", b""
        while True:
            kind, got, payload = self.frame()
            if got != number:
                continue
            if kind == b"O":
                out += payload
            elif kind == b"E":
                err += payload
            elif kind == b"X":
                return out, err, json.loads(payload)
            elif kind == b"R":
                raise AssertionError(f"refused: {payload!r}")

    def refusal(self) -> tuple[int, str]:
        while True:
            kind, number, payload = self.frame()
            if kind == b"R":
                return number, json.loads(payload)["message"]

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=30)


@pytest.fixture
def running(tmp_path):
    started = Executor(sys.executable, tmp_path)
    assert started.frame()[0] == b"H"
    yield started
    if started.process.poll() is None:
        started.process.kill()
        started.process.wait()


@pytest.mark.parametrize("python", [sys.executable, *OLDER_PYTHONS])
def test_executor_runs_standalone_and_stops_when_its_input_closes(tmp_path, python):
    """The file is sent into sandboxes as source: it must work on its own, stdlib only."""
    started = Executor(python, tmp_path)
    kind, number, payload = started.frame()
    assert (kind, number) == (b"H", 0)
    assert json.loads(payload)["version"] == executor.PROTOCOL_VERSION
    started.send({"op": "run", "id": 1, "command": "cd / && echo hi; exit 3", "session": True})
    out, _, report = started.until_exited(1)
    assert (out, report["exit_code"], report["cwd"]) == (b"hi\n", 3, "/")
    started.send({"op": "run", "id": 2, "command": "sleep 30", "session": True})
    assert started.close() == 0


def test_processes_run_beside_the_session_command_with_their_own_stdin(running):
    running.send(
        {"op": "run", "id": 1, "command": "cat; echo cat-done", "session": False, "stdin": True}
    )
    running.send(
        {"op": "run", "id": 2, "command": "cd /tmp; export X=1; echo session", "session": True}
    )
    out, _, report = running.until_exited(2)
    assert (out, report["cwd"], report["env"]["X"]) == (b"session\n", "/tmp", "1")
    running.send({"op": "stdin", "id": 1, "size": 6}, b"hello\n")
    running.send({"op": "close_stdin", "id": 1})
    out, _, report = running.until_exited(1)
    assert out == b"hello\ncat-done\n"
    assert "cwd" not in report, "a process's report carries no session state"


def test_a_process_does_not_move_the_session(running):
    running.send({"op": "run", "id": 1, "command": "cd /; export LEAK=1", "session": False})
    running.until_exited(1)
    running.send({"op": "run", "id": 2, "command": "pwd; echo ${LEAK-none}", "session": True})
    out, _, _ = running.until_exited(2)
    assert out.splitlines()[1] == b"none"
    assert out.splitlines()[0] != b"/"


def test_kill_term_then_kill_after_the_grace(running):
    running.send(
        {"op": "run", "id": 1, "command": "trap '' TERM; echo ready; sleep 60", "session": False}
    )
    kind, number, payload = running.frame()
    assert (kind, number, payload) == (b"O", 1, b"ready\n")
    running.send({"op": "kill", "id": 1, "signal": "TERM", "grace": 0.2})
    _, _, report = running.until_exited(1)
    assert report["exit_code"] == 128 + 9


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"not json\n", "cannot read the request"),
        (b"[1, 2]\n", "must be a JSON object"),
        (b'{"op": "fly", "id": 4}\n', "unknown op 'fly'"),
        (b'{"op": "run", "id": 4, "command": "echo \\u0000"}\n', "NUL byte"),
        (
            b'{"op": "run", "id": 4, "command": "true", "env": {"A=B": "x"}}\n',
            "not a variable name",
        ),
        (b'{"op": "run", "id": 4, "command": "true", "env": {"": "x"}}\n', "not a variable name"),
        (b'{"op": "run", "id": 4, "command": "true", "env": {"A": "\\u0000"}}\n', "NUL byte"),
        (b'{"op": "run", "id": 4, "command": "true", "timeout": -1}\n', "finite number"),
        (b'{"op": "run", "id": 4, "command": "true", "timeout": 0}\n', "finite number"),
        (b'{"op": "run", "id": 4, "command": "true", "timeout": "soon"}\n', "finite number"),
        (b'{"op": "kill", "id": 99}\n', "no command 99"),
        (b'{"op": "run", "id": -3, "command": "true"}\n', "whole number"),
    ],
)
def test_a_bad_request_is_refused_and_the_executor_goes_on(running, line, expected):
    running.send_raw(line)
    _, message = running.refusal()
    assert expected in message
    running.send({"op": "run", "id": 7, "command": "echo alive", "session": True})
    assert running.until_exited(7)[0] == b"alive\n"


def test_a_command_longer_than_an_argument_may_be_runs(running):
    command = "cat <<'EOF' | wc -c\n" + "x" * 300_000 + "\nEOF"
    running.send({"op": "run", "id": 1, "command": command, "session": True})
    out, err, report = running.until_exited(1)
    assert (out.strip(), err, report["exit_code"]) == (b"300001", b"", 0)


def test_bye_ends_the_executor_and_what_runs(running, tmp_path):
    running.send(
        {"op": "run", "id": 1, "command": f"sleep 60; touch {tmp_path}/late", "session": False}
    )
    running.send({"op": "bye"})
    assert running.process.wait(timeout=30) == 0
    assert not (tmp_path / "late").exists()


def test_heartbeats_both_ways(running):
    running.send({"op": "hello", "heartbeat": 0.2})
    assert running.frame()[0] == b"H"
    assert running.frame()[0] == b"P", "the executor beats on its own"
    running.send({"op": "ping", "id": 5})
    assert running.process.wait(timeout=30) == 0, "no ping for three beats: it leaves"
