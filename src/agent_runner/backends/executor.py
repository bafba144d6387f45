"""The command executor that lives inside a sandbox.

One process per sandbox, started once, talking to the runner over its own stdin and
stdout (attached through the engine's API, so no port is published and network ``none``
works). It spawns each command in a process group of its own, frames the command's stdout
and stderr back as they come, enforces the timeout by killing the group, and carries the
working directory and exported variables from one command to the next. A round trip costs
a few milliseconds instead of the tens that a ``docker exec`` per command costs.

This file is also sent into the sandbox as source and run with the image's ``python3``:
it must use nothing but the standard library, and run on the Python 3.8 of older images
(annotations are never evaluated, so they may use newer syntax). The host side imports the
shared pieces (the state wrapper, the frame format) from here, so both ends agree.

Protocol. Requests are JSON lines on stdin:
  {"op": "run", "command": str, "timeout": float|null, "env": {..}}   one at a time
  {"op": "kill"}                                                    kill the running command
  {"op": "env", "set": {..}, "unset": [..], "cwd": str|null}      change variables and directory
  {"op": "put", "path": str, "size": int} + that many tar bytes   unpack (as the sandbox user)
Replies are frames on stdout: one kind byte, a 4-byte big-endian length, the payload:
  H hello (JSON)   O stdout bytes   E stderr bytes
  X command finished (JSON: exit_code, timed_out, oom_killed, cwd, env)
When stdin closes the executor kills what runs and exits, so a sandbox whose runner died
stops by itself.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import IO, Any

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">cI")
HELLO, STDOUT, STDERR, EXITED = b"H", b"O", b"E", b"X"
TIMEOUT_EXIT_CODE = 124
DRAIN_SECONDS = 0.1
CHUNK = 65536
OUTBOX_LIMIT = 1 << 20
"""Frames waiting for the runner beyond which the command's pipes are no longer read."""

STATE_WRAPPER = (
    "__stigmer_state=$1 __stigmer_command=$2; shift 2; "
    "__stigmer_save() { "
    'builtin compgen -e >| "$__stigmer_state"; '
    'builtin mapfile -t __stigmer_names < "$__stigmer_state"; '
    "{ builtin printf '%s\\0' \"$PWD\"; "
    'for __stigmer_name in "${__stigmer_names[@]}"; do '
    'builtin printf \'%s=%s\\0\' "$__stigmer_name" "${!__stigmer_name}"; done; '
    '} >| "$__stigmer_state"; } 2>/dev/null; '
    'trap __stigmer_save EXIT; eval "$__stigmer_command"'
)
"""Runs a command exactly as ``bash -c`` would, then records where it left the shell.

The command travels as a positional argument and is run by ``eval``, so no quoting is ever
applied to it. The EXIT trap writes the final working directory and the exported
variables (NUL-separated) to the state file named by the first argument, also when the
command calls ``exit``. It uses built-ins only (the names go through the file itself
rather than a ``$(...)``), so recording the state costs no extra process.
"""

STATE_CHANGERS = re.compile(
    r"=|\(\(|(?:^|[\s;&|(){}!`])\.(?:\s|$)|"
    r"\b(?:cd|pushd|popd|export|unset|declare|typeset|local|readonly|source|eval|set|exec"
    r"|builtin|command|enable|read|mapfile|readarray|printf|getopts|let|shopt)\b"
)
"""Anything through which a command could change its shell's directory or exported
variables: the built-ins that do it, ``.``, arithmetic, and any ``=`` (an assignment to an
already exported name changes the environment). Deliberately coarse: a false alarm only
costs the state capture."""


def may_change_state(command: str, environment: Mapping[str, str]) -> bool:
    """Whether recording the shell's state after ``command`` could find anything new.

    Most commands an agent runs (``pytest -q``, ``git status``, ``ls | grep x``) cannot
    change the directory or the environment of the shell that runs them; those run as a
    plain ``bash -c`` and skip the capture (about a millisecond a command). ``BASH_ENV``
    runs code of its own at start and an exported function can run anything under any
    name, so with either in the environment every command is captured.
    """
    if "BASH_ENV" in environment or any(name.startswith("BASH_FUNC_") for name in environment):
        return True
    return STATE_CHANGERS.search(command) is not None


SACRIFICE_FIRST = "{ builtin echo 1000 >| /proc/self/oom_score_adj; } 2>/dev/null; "
"""Makes the command, not the executor, what the kernel kills when memory runs out."""
PLAIN_WRAPPER = '__stigmer_command=$1; shift; eval "$__stigmer_command"'
"""For commands that cannot change the shell's state: the same ``eval``, no capture."""

VOLATILE_VARIABLES = frozenset({"_", "SHLVL", "OLDPWD"})
"""Variables bash maintains itself; carrying them over would make them drift."""


def parse_state(raw: bytes) -> tuple[str, dict[str, str]] | None:
    """Read what :data:`STATE_WRAPPER` wrote; ``None`` when the command never got there."""
    fields = raw.split(b"\0")
    if len(fields) < 2 or fields[-1] != b"":
        return None
    cwd = fields[0].decode("utf-8", "surrogateescape")
    env: dict[str, str] = {}
    for item in fields[1:-1]:
        name, _, value = item.decode("utf-8", "surrogateescape").partition("=")
        if name and name not in VOLATILE_VARIABLES:
            env[name] = value
    return cwd, env


def carry_over(
    before: Mapping[str, str], overlay: Mapping[str, str], after: Mapping[str, str]
) -> dict[str, str]:
    """The session environment after a command that ran with a per-command ``overlay``.

    Overlay variables apply to that command only, unless the command itself changed them.
    """
    result = dict(after)
    for name, value in overlay.items():
        if result.get(name) != value:
            continue
        if name in before:
            result[name] = before[name]
        else:
            del result[name]
    return result


def _exit_code(status: int) -> int:
    """``os.waitstatus_to_exitcode`` (Python 3.9+), spelled out for older sandboxes."""
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else -os.WTERMSIG(status)


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def _oom_kills() -> int:
    """The sandbox cgroup's OOM-kill counter (cgroup v2 or v1), or -1 when unreadable."""
    for path in ("/sys/fs/cgroup/memory.events", "/sys/fs/cgroup/memory/memory.oom_control"):
        try:
            with open(path) as handle:
                for line in handle:
                    name, _, value = line.partition(" ")
                    if name == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return -1


class _Command:
    """The command being run: its process, its pipes, its deadline."""

    def __init__(
        self, process: subprocess.Popen[bytes], timeout: float | None, overlay: dict[str, str]
    ):
        self.process = process
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.overlay = overlay
        self.pipes: dict[IO[bytes], bytes] = {}
        """Open output pipes and the frame kind of each."""
        self.exit_status: int | None = None
        self.drain_until: float | None = None
        self.timed_out = False

    def kill(self) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


class _Upload:
    def __init__(self, path: str, size: int, spool: IO[bytes]) -> None:
        self.path = path
        self.remaining = size
        self.spool = spool


def _unpack(archive: IO[bytes], destination: str) -> None:
    """Unpack a tar into ``destination``, refusing members that would land outside it.

    Raises ``ValueError`` for an archive it refuses or cannot read.
    """
    import tarfile  # only uploads need it; start-up stays short

    root = os.path.realpath(destination)
    try:
        with tarfile.open(fileobj=archive, mode="r:") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, root, destination)
            for member in members:
                member.uid, member.gid = os.getuid(), os.getgid()
                member.mode &= 0o777
                tar.extract(member, root, set_attrs=not member.isdir() or member.name != ".")
    except tarfile.TarError as error:
        raise ValueError(str(error)) from None


def _check_member(member: Any, root: str, destination: str) -> None:
    target = os.path.realpath(os.path.join(root, member.name))
    if not (target == root or target.startswith(root + os.sep)):
        raise ValueError(f"{member.name} would leave {destination}")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise ValueError(f"{member.name} is not a regular file, directory or link")
    if member.issym():
        pointed = os.path.realpath(os.path.join(os.path.dirname(target), member.linkname))
        if os.path.isabs(member.linkname) or not (
            pointed == root or pointed.startswith(root + os.sep)
        ):
            raise ValueError(f"{member.name} links outside the workspace")


class Executor:
    def __init__(self, state_file: str) -> None:
        self.state_file = state_file
        self.cwd = os.getcwd()
        self.env = {k: v for k, v in os.environ.items() if k not in VOLATILE_VARIABLES}
        self.selector = selectors.DefaultSelector()
        self.requests = b""
        self.command: _Command | None = None
        self.upload: _Upload | None = None
        self.oom_kills = _oom_kills()
        self.outbox = bytearray()
        self.writing = False
        self.paused_since: float | None = None
        os.set_blocking(1, False)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        self.wake = wake_read
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.selector.register(wake_read, selectors.EVENT_READ, "wake")

    def send(self, kind: bytes, payload: bytes) -> None:
        """Queue a frame and write what the runner takes now; never blocks, so deadlines and
        kill requests are served even while the runner reads slowly."""
        self.outbox += frame(kind, payload)
        self._flush()

    def _flush(self) -> None:
        while self.outbox:
            try:
                written = os.write(1, self.outbox[: 4 * CHUNK])
            except BlockingIOError:
                break
            del self.outbox[:written]
        if bool(self.outbox) != self.writing:
            self.writing = bool(self.outbox)
            if self.writing:
                self.selector.register(1, selectors.EVENT_WRITE, "runner")
            else:
                self.selector.unregister(1)
        self._throttle()

    def _throttle(self) -> None:
        """Stop reading the command's output while too much waits for the runner."""
        command = self.command
        full = len(self.outbox) >= OUTBOX_LIMIT
        paused_since = self.paused_since
        if command is None or full == (paused_since is not None):
            return
        if paused_since is None:
            self.paused_since = time.monotonic()
            for pipe in command.pipes:
                self.selector.unregister(pipe)
            return
        if command.drain_until is not None:
            command.drain_until += time.monotonic() - paused_since
        self.paused_since = None
        for pipe, kind in command.pipes.items():
            self.selector.register(pipe, selectors.EVENT_READ, kind)

    def serve(self) -> None:
        info = {"version": PROTOCOL_VERSION, "python": sys.version.split()[0], "pid": os.getpid()}
        self.send(HELLO, json.dumps(info).encode())
        while True:
            for key, _ in self.selector.select(self._wait_time()):
                if key.data == "stdin":
                    if not self._read_requests():
                        return
                elif key.data == "wake":
                    self._drain_wakeups()
                elif key.data == "runner":
                    self._flush()
                else:
                    self._read_output(key.fileobj, key.data)  # type: ignore[arg-type]
            self._progress()

    def _wait_time(self) -> float | None:
        command = self.command
        if command is None:
            return None
        drain = command.drain_until if self.paused_since is None else None
        moments = [m for m in (command.deadline, drain) if m is not None]
        if command.exit_status is None:
            moments.append(time.monotonic() + 1.0)  # a missed SIGCHLD cannot stall us
        return max(0.0, min(moments) - time.monotonic()) if moments else None

    def _read_requests(self) -> bool:
        data = os.read(0, CHUNK)
        if not data:
            if self.command is not None:
                self.command.kill()
            return False
        self.requests += data
        while True:
            if self.upload is not None:
                if not self._receive_upload():
                    return True
                continue
            if b"\n" not in self.requests:
                return True
            line, self.requests = self.requests.split(b"\n", 1)
            if line.strip():
                self._handle(json.loads(line))

    def _handle(self, request: dict[str, Any]) -> None:
        op = request.get("op")
        if op == "run" and self.command is None:
            self._start(request["command"], request.get("timeout"), request.get("env") or {})
        elif op == "kill" and self.command is not None:
            self.command.kill()
        elif op == "env":
            self.env.update(request.get("set") or {})
            for name in request.get("unset") or []:
                self.env.pop(name, None)
            self.cwd = request.get("cwd") or self.cwd
        elif op == "put":
            import tempfile  # only uploads need it; start-up stays short

            spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed once unpacked
            self.upload = _Upload(request["path"], int(request["size"]), spool)

    def _receive_upload(self) -> bool:
        """Feed buffered bytes to the upload; True once it is complete (and unpacked)."""
        upload = self.upload
        assert upload is not None
        piece = self.requests[: upload.remaining]
        self.requests = self.requests[len(piece) :]
        upload.spool.write(piece)
        upload.remaining -= len(piece)
        if upload.remaining:
            return False
        self.upload = None
        upload.spool.seek(0)
        try:
            _unpack(upload.spool, upload.path)
        except (OSError, ValueError) as error:
            self.send(
                STDERR,
                f"agent-runner executor: cannot unpack into {upload.path}: {error}\n".encode(),
            )
            self._report(1, False, False)
        else:
            self._report(0, False, False)
        finally:
            upload.spool.close()
        return True

    def _start(self, command: str, timeout: float | None, overlay: dict[str, str]) -> None:
        with suppress(FileNotFoundError):
            os.unlink(self.state_file)
        cwd = self.cwd if os.path.isdir(self.cwd) else "/"
        env = {**self.env, **overlay}
        if may_change_state(command, env):
            argv = ["bash", "-c", SACRIFICE_FIRST + STATE_WRAPPER, "bash", self.state_file, command]
        else:
            argv = ["bash", "-c", SACRIFICE_FIRST + PLAIN_WRAPPER, "bash", command]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            self.send(STDERR, f"agent-runner executor: cannot start bash: {error}\n".encode())
            self._report(127, False, False)
            return
        self.command = _Command(process, timeout, overlay)
        for pipe, kind in ((process.stdout, STDOUT), (process.stderr, STDERR)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self.command.pipes[pipe] = kind
            self.selector.register(pipe, selectors.EVENT_READ, kind)

    def _read_output(self, pipe: IO[bytes], kind: bytes) -> None:
        command = self.command
        if command is None or pipe not in command.pipes or self.paused_since is not None:
            return  # paused or finished since select() returned: a stale event
        try:
            data = os.read(pipe.fileno(), CHUNK)
        except BlockingIOError:
            return
        if data:
            self.send(kind, data)
            return
        self.selector.unregister(pipe)
        pipe.close()
        del command.pipes[pipe]

    def _drain_wakeups(self) -> None:
        with suppress(BlockingIOError):
            while os.read(self.wake, 512):
                pass

    def _progress(self) -> None:
        command = self.command
        if command is None:
            return
        now = time.monotonic()
        if command.exit_status is None:
            pid, status = os.waitpid(command.process.pid, os.WNOHANG)
            if pid:
                command.process.returncode = status
                command.exit_status = _exit_code(status)
                command.drain_until = now + DRAIN_SECONDS
            elif command.deadline is not None and now >= command.deadline and not command.timed_out:
                command.timed_out = True
                command.kill()
        drained = self.paused_since is None and now >= (command.drain_until or now)
        if command.exit_status is not None and (not command.pipes or drained):
            self._finish(command)

    def _finish(self, command: _Command) -> None:
        for pipe in command.pipes:
            if self.paused_since is None:
                self.selector.unregister(pipe)
            pipe.close()
        self.command = None
        self.paused_since = None
        try:
            with open(self.state_file, "rb") as handle:
                state = parse_state(handle.read())
        except OSError:
            state = None
        if state is not None:
            self.cwd, env = state
            self.env = carry_over(self.env, command.overlay, env)
        status = command.exit_status
        assert status is not None
        code = TIMEOUT_EXIT_CODE if command.timed_out else (status if status >= 0 else 128 - status)
        oom = code == 128 + signal.SIGKILL and not command.timed_out and self._oom_killed()
        self._report(code, command.timed_out, oom)

    def _oom_killed(self) -> bool:
        """Whether the sandbox's OOM-kill counter moved since it was last read: read only
        after a SIGKILL, so the common path opens no cgroup file."""
        count = _oom_kills()
        moved = count > self.oom_kills >= 0
        self.oom_kills = count
        return moved

    def _report(self, code: int, timed_out: bool, oom_killed: bool) -> None:
        result = {
            "exit_code": code,
            "timed_out": timed_out,
            "oom_killed": oom_killed,
            "cwd": self.cwd,
            "env": self.env,
        }
        self.send(
            EXITED,
            json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode(
                "utf-8", "surrogateescape"
            ),
        )


def main() -> None:
    state_file = sys.argv[1] if len(sys.argv) > 1 else "/tmp/.stigmer-executor-state"
    with suppress(BrokenPipeError):
        Executor(state_file).serve()


if __name__ == "__main__":
    main()
