"""The in-sandbox executor's pieces that can be checked on the host."""

import io
import json
import struct
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


@pytest.mark.parametrize("python", [sys.executable, *OLDER_PYTHONS])
def test_executor_runs_standalone_and_stops_when_its_input_closes(tmp_path, python):
    """The file is sent into sandboxes as source: it must work on its own, stdlib only."""
    process = subprocess.Popen(
        [
            python,
            "-I",
            "-S",
            "-u",
            "-c",
            Path(executor.__file__).read_text(),
            str(tmp_path / "state"),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=tmp_path,
    )
    assert process.stdin is not None
    assert process.stdout is not None

    def frame() -> tuple[bytes, bytes]:
        kind, length = struct.unpack(">cI", process.stdout.read(5))
        return kind, process.stdout.read(length)

    assert frame()[0] == b"H"
    process.stdin.write(
        json.dumps({"op": "run", "command": "cd / && echo hi; exit 3"}).encode() + b"\n"
    )
    process.stdin.flush()
    assert frame() == (b"O", b"hi\n")
    kind, payload = frame()
    report = json.loads(payload)
    assert (kind, report["exit_code"], report["cwd"]) == (b"X", 3, "/")
    process.stdin.write(json.dumps({"op": "run", "command": "sleep 30"}).encode() + b"\n")
    process.stdin.close()
    assert process.wait(timeout=10) == 0
