"""How a remote backend starts the executor and takes a session over after a dropped
stream, checked on the host: the bootstrap that reads the executor's source from stdin,
the launcher's one-line refusals, and the record a later executor adopts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from agent_runner.backends import executor
from agent_runner.backends.kubernetes import connection

SOURCE = Path(executor.__file__).read_bytes()


def frames(stream, until_kind: bytes, until_id: int) -> list[tuple[bytes, int, bytes]]:
    seen = []
    while True:
        header = stream.read(executor.HEADER.size)
        assert len(header) == executor.HEADER.size, f"the executor ended; got {seen}"
        kind, number, length = executor.HEADER.unpack(header)
        seen.append((kind, number, stream.read(length)))
        if (kind, number) == (until_kind, until_id):
            return seen


def request(body: dict) -> bytes:
    return json.dumps(body).encode() + b"\n"


def bootstrapped(tmp_path: Path, record: Path) -> subprocess.Popen[bytes]:
    """The executor as the Kubernetes backend starts it: the bootstrap, its source on stdin."""
    return subprocess.Popen(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            connection.BOOTSTRAP,
            str(len(SOURCE)),
            str(tmp_path / "state"),
            str(record),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=tmp_path,
    )


def exchange(process: subprocess.Popen[bytes], data: bytes) -> list[tuple[bytes, int, bytes]]:
    """Send ``data`` in one write; the frames up to command 1's report; then hang up."""
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(data)
    process.stdin.flush()
    seen = frames(process.stdout, b"X", 1)
    process.stdin.close()
    assert process.wait(timeout=30) == 0
    return seen


def test_the_bootstrap_reads_exactly_the_source_and_leaves_the_requests_to_the_executor(
    tmp_path,
):
    process = bootstrapped(tmp_path, tmp_path / "record")
    run = {"op": "run", "id": 1, "command": "echo from-the-same-write", "session": True}
    seen = exchange(process, SOURCE + request(run))
    assert seen[0][0] == b"H"
    assert (b"O", 1, b"from-the-same-write\n") in seen


def test_a_later_executor_adopts_the_recorded_cwd_and_variables(tmp_path):
    record = tmp_path / "record"
    (tmp_path / "sub").mkdir()
    first = bootstrapped(tmp_path, record)
    assert first.stdin is not None
    assert first.stdout is not None
    first.stdin.write(SOURCE)
    first.stdin.write(request({"op": "env", "set": {"FROM_OPEN": "o"}, "unset": []}))
    command = "cd sub && export KEPT='a b' && unset HOME"
    first.stdin.write(request({"op": "run", "id": 1, "command": command, "session": True}))
    first.stdin.flush()
    frames(first.stdout, b"X", 1)
    first.kill()  # the stream drops: no goodbye
    first.wait()

    second = bootstrapped(tmp_path, record)
    check = "pwd; echo $KEPT $FROM_OPEN ${HOME-unset}"
    seen = exchange(second, SOURCE + request({"op": "run", "id": 1, "command": check}))
    out = b"".join(payload for kind, number, payload in seen if (kind, number) == (b"O", 1))
    assert out == f"{tmp_path}/sub\na b o unset\n".encode()


def test_without_a_record_nothing_is_written(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", SOURCE.decode(), str(tmp_path / "state")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=tmp_path,
    )
    exchange(process, request({"op": "run", "id": 1, "command": "export X=1"}))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_the_launcher_names_what_the_image_lacks(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink("/bin/sh", bin_dir / "sh")
    environment = {"PATH": str(bin_dir)}

    def launch() -> subprocess.CompletedProcess[bytes]:
        command = ["/bin/sh", "-c", connection.LAUNCHER, "x", "print(1)"]
        return subprocess.run(command, env=environment, capture_output=True, timeout=30)

    no_bash = launch()
    assert (no_bash.returncode, no_bash.stdout) == (127, connection.NO_BASH + b"\n")
    os.symlink("/bin/bash", bin_dir / "bash")
    no_python = launch()
    assert (no_python.returncode, no_python.stdout) == (127, connection.NO_PYTHON + b"\n")


def test_a_later_executor_stops_what_the_previous_one_left_running(tmp_path):
    record = tmp_path / "record"
    first = bootstrapped(tmp_path, record)
    assert first.stdin is not None
    assert first.stdout is not None
    first.stdin.write(SOURCE)
    command = "sleep 30 & echo $! > bg.pid; echo started; sleep 31.5"
    first.stdin.write(request({"op": "run", "id": 1, "command": command, "session": True}))
    first.stdin.flush()
    while b"started" not in first.stdout.read1(4096):
        pass
    first.kill()  # killed before it could stop its command
    first.wait()
    background = int((tmp_path / "bg.pid").read_text())

    second = bootstrapped(tmp_path, record)
    check = "sleep 0.2; pgrep -f 'slee[p] 31.5' || echo none"
    seen = exchange(second, SOURCE + request({"op": "run", "id": 1, "command": check}))
    out = b"".join(payload for kind, number, payload in seen if (kind, number) == (b"O", 1))
    assert out == b"none\n"
    assert not os.path.exists(f"/proc/{background}") or _zombie(background)


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
