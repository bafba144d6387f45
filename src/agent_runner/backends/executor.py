"""The command executor that lives inside a sandbox.

One process per sandbox, started once, talking to the runner over its own stdin and
stdout (the engine's attach stream, a ``pods/exec`` websocket: no port is published and
network ``none`` works). It runs each command in a process group of its own, frames its
stdout and stderr back as they come, enforces timeouts by killing the group, and carries
the working directory and exported variables from one session command to the next.
Several commands may run at once: the session's one-at-a-time commands and processes
started beside them, each with its own id, stdin and kill.

This file is also sent into the sandbox as source and run with the image's ``python3``:
it must use nothing but the standard library and run on Python 3.8 (annotations are never
evaluated, so they may use newer syntax). The runner imports the shared pieces (the
wrappers, the frame format) from here, so both ends agree.

Protocol 2. Requests are JSON lines on stdin; ``stdin`` and ``put`` are followed by
``size`` raw bytes:
  {"op": "hello", "heartbeat": s|null}     answered by H; with ``heartbeat`` the executor
                                            sends P every s seconds and exits when no request
                                            came for 3 s (the runner pings)
  {"op": "run", "id": n, "command": str, "timeout": s|null, "env": {..},
   "session": bool, "stdin": bool}         a session command (its cwd and exports are kept;
                                            one at a time) or a process beside it
  {"op": "stdin", "id": n, "size": k}      k bytes for the command's stdin
  {"op": "close_stdin", "id": n}
  {"op": "kill", "id": n, "signal": "TERM", "grace": s|null, "drop_output": bool}
                                            the command's group; KILL follows after
                                            ``grace`` if any of it is left; output of it
                                            still queued is dropped on request
  {"op": "pause", "id": n} / {"op": "resume", "id": n}   stop / go on reading its output
  {"op": "env", "set": {..}, "unset": [..], "cwd": str|null}
  {"op": "put", "id": n, "path": str, "size": k}          a tar, unpacked as the sandbox user
  {"op": "ping"}                           answered by P
  {"op": "bye"}                            kill everything and exit (for transports that
                                            cannot close stdin)
Replies are frames on stdout: a kind byte, the request's id and the payload's length (each
4 bytes, big-endian), then the payload:
  H hello (JSON: version, python, pid, cwd, env)   O stdout bytes   E stderr bytes
  X finished (JSON: exit_code, timed_out, oom_killed; cwd and env for a session command)
  R refused (JSON: message): a request it cannot honour; the executor goes on serving
  P pong, or a heartbeat
When stdin closes (or ``bye``, or missed heartbeats) the executor kills what runs and
exits, so a sandbox whose runner died stops by itself.

A second argument names a *record* file: the executor then writes the session's cwd and
variables there whenever they change, and the pids of the commands it is running beside it
(``<record>.tasks``); a later executor started with the same record takes the cwd and
variables over and kills what the previous one left running (it may have been killed
before it could). Backends whose stream can drop while the sandbox lives on (a
``pods/exec`` cut by an idle timeout) reconnect to the same session that way.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import selectors
import signal
import struct
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping
from contextlib import suppress

TYPE_CHECKING = False  # typing's own costs a sandbox's start-up 2 ms; annotations are text
if TYPE_CHECKING:
    from typing import IO, Any

PROTOCOL_VERSION = 2
HEADER = struct.Struct(">cII")
HELLO, STDOUT, STDERR, EXITED, REFUSED, PONG = b"H", b"O", b"E", b"X", b"R", b"P"
TIMEOUT_EXIT_CODE = 124
DRAIN_SECONDS = 0.1
CHUNK = 1 << 18
PIPE_SIZE = 1 << 20
OUTBOX_LIMIT = 1 << 21
"""Frames waiting for the runner beyond which no command's output is read."""
STDIN_LIMIT = 1 << 24
"""Bytes waiting for one command's stdin beyond which more are refused."""
LONG_COMMAND = 100_000
"""Commands longer than this reach bash through a file: one argument may not exceed 128 KiB."""
MISSED_HEARTBEATS = 3
SIGNALS = ("TERM", "KILL", "INT", "HUP", "QUIT", "USR1", "USR2", "STOP", "CONT")

STATE_BODY = (
    "__stigmer_state=$1; shift; "
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

The command is ``eval``-ed from a variable, so no quoting is ever applied to it. The EXIT
trap writes the final working directory and the exported variables (NUL-separated) to the
state file named by the next argument, also when the command calls ``exit``. It uses
built-ins only (the names go through the file itself rather than a ``$(...)``), so
recording the state costs no extra process.
"""
PLAIN_BODY = 'eval "$__stigmer_command"'
"""For commands that cannot change the shell's state: the same ``eval``, no capture."""
FROM_ARGUMENT = "__stigmer_command=$1; shift; "
FROM_FILE = (
    "__stigmer_fd=$1; shift; "
    "IFS= builtin read -r -d '' __stigmer_command <&\"$__stigmer_fd\" || :; "
    "builtin exec {__stigmer_fd}<&-; "
)
"""Where the command comes from: the next argument, or (long commands) the file open on
the descriptor the next argument names (read by a built-in, then closed)."""
SACRIFICE_FIRST = "{ builtin echo 1000 >| /proc/self/oom_score_adj; } 2>/dev/null; "
"""Makes the command, not the executor, what the kernel kills when memory runs out."""

STATE_CHANGERS = re.compile(
    r"=|\(\(|(?:^|[\s;&|(){}!`])\.(?:\s|$)|"
    r"\b(?:cd|pushd|popd|export|unset|declare|typeset|local|readonly|source|eval|set|exec"
    r"|builtin|command|enable|read|mapfile|readarray|printf|getopts|let|shopt)\b"
)
"""Anything through which a command could change its shell's directory or exported
variables: the built-ins that do it, ``.``, arithmetic, and any ``=`` (an assignment to an
already exported name changes the environment). Deliberately coarse: a false alarm only
costs the state capture."""

VOLATILE_VARIABLES = frozenset({"_", "SHLVL", "OLDPWD"})
"""Variables bash maintains itself; carrying them over would make them drift."""


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


def bash_arguments(
    command: str, state_file: str | None, script_fd: int | None, prefix: str = ""
) -> list[str]:
    """What follows ``bash`` to run ``command`` as ``bash -c`` would.

    With ``state_file`` the shell's state is recorded there (:data:`STATE_BODY`); with
    ``script_fd`` the command is read from that descriptor instead of the arguments. With
    neither (and no ``prefix``), this is plain ``-c COMMAND``.
    """
    body = PLAIN_BODY if state_file is None else STATE_BODY
    after = [] if state_file is None else [state_file]
    if script_fd is not None:
        return ["-c", prefix + FROM_FILE + body, "bash", str(script_fd), *after]
    if state_file is None and not prefix:
        return ["-c", command]
    return ["-c", prefix + FROM_ARGUMENT + body, "bash", command, *after]


def parse_state(raw: bytes) -> tuple[str, dict[str, str]] | None:
    """Read what :data:`STATE_BODY` wrote; ``None`` when the command never got there."""
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


def format_state(cwd: str, env: Mapping[str, str]) -> bytes:
    """The state as :data:`STATE_BODY` writes it (what :func:`parse_state` reads)."""
    fields = [cwd, *(f"{name}={value}" for name, value in env.items()), ""]
    return "\0".join(fields).encode("utf-8", "surrogateescape")


def exit_code(status: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128 + the signal."""
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else 1


def frame(kind: bytes, number: int, payload: bytes) -> bytes:
    return HEADER.pack(kind, number, len(payload)) + payload


def encode_report(report: dict[str, Any]) -> bytes:
    text = json.dumps(report, ensure_ascii=False, separators=(",", ":"))
    return text.encode("utf-8", "surrogateescape")


def command_problem(command: Any) -> str | None:
    """Why ``command`` cannot reach bash, or ``None`` (the kernel refuses NUL bytes)."""
    if not isinstance(command, str):
        return "the command must be text"
    if "\0" in command:
        return "the command contains a NUL byte, which no shell command can hold"
    return None


def env_problem(env: Any) -> str | None:
    """Why ``env`` cannot be a process's variables, or ``None``: a name with ``=`` or
    nothing in it would mean another variable, and the kernel refuses NUL bytes."""
    if not isinstance(env, dict):
        return "env must map names to values"
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            return "env must map names to text values"
        if not name or "=" in name or "\0" in name:
            return f"{name!r} is not a variable name (no '=', no NUL, not empty)"
        if "\0" in value:
            return f"the value of {name} contains a NUL byte"
    return None


def timeout_problem(timeout: Any) -> str | None:
    """Why ``timeout`` is not a timeout, or ``None``: one rule everywhere, a finite number
    of seconds above 0, or none at all (NaN, infinity, 0 and negatives are refused)."""
    if timeout is None:
        return None
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        return f"timeout {timeout!r}: expected a finite number of seconds above 0, or none"
    return None


def check_request(request: Any) -> str | None:
    """Why ``request`` (a ``run``) cannot be honoured, or ``None``."""
    return (
        command_problem(request.get("command"))
        or env_problem(request.get("env") or {})
        or timeout_problem(request.get("timeout"))
    )


def set_pipe_size(fd: int) -> None:
    """A larger pipe (Linux, when ``fd`` is one): fewer, larger reads and writes per MB."""
    with suppress(OSError, ImportError):
        import fcntl

        fcntl.fcntl(fd, 1031, PIPE_SIZE)  # F_SETPIPE_SZ


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


class Outbox:
    """Frames on their way to the runner, written without blocking and without copying.

    Each entry is one frame's unwritten pieces (header, payload) and its command's id, so
    that the queued output of a command the runner gave up on can be dropped unsent.
    """

    def __init__(self) -> None:
        self.frames: deque[tuple[int, list[memoryview]]] = deque()
        self.size = 0
        self.front_started = False
        """Part of the first frame is written: it must be finished, whatever happens."""

    def add(self, kind: bytes, number: int, payload: bytes) -> None:
        pieces = [memoryview(HEADER.pack(kind, number, len(payload)))]
        if payload:
            pieces.append(memoryview(payload))
        self.frames.append((number, pieces))
        self.size += HEADER.size + len(payload)

    def discard(self, number: int, kinds: tuple[bytes, ...] = (STDOUT, STDERR)) -> None:
        """Drop the queued frames of ``kinds`` for command ``number`` (not one half sent)."""
        kept: deque[tuple[int, list[memoryview]]] = deque()
        for index, (owner, pieces) in enumerate(self.frames):
            started = index == 0 and self.front_started
            if owner == number and not started and bytes(pieces[0][:1]) in kinds:
                self.size -= sum(len(piece) for piece in pieces)
            else:
                kept.append((owner, pieces))
        self.frames = kept

    def flush(self, fd: int) -> None:
        """Write what the runner takes now."""
        while self.frames:
            vectors = [p for _, pieces in itertools.islice(self.frames, 32) for p in pieces]
            try:
                written = os.writev(fd, vectors)
            except BlockingIOError:
                return
            self.size -= written
            while written:
                pieces = self.frames[0][1]
                first = pieces[0]
                if len(first) <= written:
                    written -= len(first)
                    pieces.pop(0)
                    if not pieces:
                        self.frames.popleft()
                        self.front_started = False
                        continue
                else:
                    pieces[0] = first[written:]
                    written = 0
                self.front_started = True


class Task:
    """One running command: its process, pipes, stdin, deadline and state."""

    def __init__(
        self,
        number: int,
        process: subprocess.Popen[bytes],
        timeout: float | None,
        overlay: dict[str, str],
        session: bool,
    ) -> None:
        self.number = number
        self.process = process
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.overlay = overlay
        self.session = session
        self.pipes: dict[int, bytes] = {}
        """Open output pipes (descriptors) and the frame kind of each."""
        self.stdin: int | None = None
        self.stdin_pending = bytearray()
        self.stdin_closing = False
        self.exit_status: int | None = None
        self.drain_until: float | None = None
        self.stalled_at: float | None = None
        self.reading = False
        self.paused = False
        self.timed_out = False
        self.kill_at: float | None = None

    def signal(self, number: int) -> None:
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, number)


class Body:
    """Raw bytes announced by a request (``stdin``, ``put``) still to come."""

    def __init__(self, op: str, number: int, size: int, path: str = "") -> None:
        self.op = op
        self.number = number
        self.remaining = size
        self.path = path
        self.received = bytearray()
        self.spool: IO[bytes] | None = None


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


class Refused(Exception):
    """A request the executor cannot honour; answered with an R frame."""


class Executor:
    def __init__(self, state_file: str, record_file: str | None = None) -> None:
        self.state_file = state_file
        self.record_file = record_file
        self.cwd = os.getcwd()
        self.env = {k: v for k, v in os.environ.items() if k not in VOLATILE_VARIABLES}
        self.recorded: bytes | None = None
        self.recorded_tasks = ""
        self.adopt()
        self.selector = selectors.DefaultSelector()
        self.requests = bytearray()
        self.body: Body | None = None
        self.tasks: dict[int, Task] = {}
        self.readers: dict[int, Task] = {}
        self.oom_kills = _oom_kills()
        self.outbox = Outbox()
        self.writing = False
        self.throttled = False
        self.heartbeat: float | None = None
        self.next_beat = 0.0
        self.last_request = time.monotonic()
        os.set_blocking(1, False)
        set_pipe_size(1)
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_read, False)
        os.set_blocking(wake_write, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        # A command that closes its input must not take the executor down with SIGPIPE;
        # commands get the default back (Popen restores it).
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        self.wake = wake_read
        self.selector.register(0, selectors.EVENT_READ, "stdin")
        self.selector.register(wake_read, selectors.EVENT_READ, "wake")

    # -- the loop -------------------------------------------------------------------------

    def serve(self) -> None:
        self.hello()
        while True:
            for key, _ in self.selector.select(self.wait_time()):
                if key.data == "stdin":
                    if not self.read_requests():
                        self.stop()
                        return
                elif key.data == "wake":
                    with suppress(BlockingIOError):
                        while os.read(self.wake, 512):
                            pass
                elif key.data == "runner":
                    self.flush()
                elif key.data == "stdin-of":
                    self.feed_stdin(self.stdin_owner(key.fd))
                else:
                    self.read_output(key.fd)
            if not self.progress():
                self.stop()
                return

    def wait_time(self) -> float | None:
        now = time.monotonic()
        moments: list[float] = []
        for task in self.tasks.values():
            moments.extend(m for m in (task.deadline, task.kill_at) if m is not None)
            if task.drain_until is not None and task.reading:
                moments.append(task.drain_until)
            if task.exit_status is None:
                moments.append(now + 1.0)  # a missed SIGCHLD cannot stall us
        if self.heartbeat is not None:
            moments += [self.next_beat, self.last_request + MISSED_HEARTBEATS * self.heartbeat]
        return max(0.0, min(moments) - now) if moments else None

    def stop(self) -> None:
        for task in self.tasks.values():
            task.signal(signal.SIGKILL)

    # -- frames to the runner ---------------------------------------------------------------

    def send(self, kind: bytes, number: int, payload: bytes) -> None:
        """Queue a frame and write what the runner takes now; never blocks, so deadlines and
        kill requests are served even while the runner reads slowly."""
        self.outbox.add(kind, number, payload)
        self.flush()

    def flush(self) -> None:
        self.outbox.flush(1)
        pending = self.outbox.size > 0
        if pending != self.writing:
            self.writing = pending
            if pending:
                self.selector.register(1, selectors.EVENT_WRITE, "runner")
            else:
                self.selector.unregister(1)
        throttled = self.outbox.size >= OUTBOX_LIMIT or (self.throttled and pending)
        if throttled != self.throttled:
            self.throttled = throttled
            for task in self.tasks.values():
                self.update_reading(task)

    # -- the session's record (see the module docstring) ------------------------------------

    def adopt(self) -> None:
        """Take over the cwd and variables a previous executor recorded, if any, and stop
        the commands it left running."""
        if self.record_file is None:
            return
        self.kill_leftovers()
        try:
            with open(self.record_file, "rb") as handle:
                raw = handle.read()
        except OSError:
            return
        state = parse_state(raw)
        if state is not None:
            self.cwd, self.env = state
            self.recorded = raw

    def kill_leftovers(self) -> None:
        """Kill the process groups of the commands a previous executor was running (each is
        led by the command's bash while it runs, so a group whose leader is gone is left)."""
        assert self.record_file is not None
        try:
            with open(self.record_file + ".tasks") as handle:
                pids = [int(word) for word in handle.read().split()]
        except (OSError, ValueError):
            return
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as handle:
                    group = int(handle.read().rsplit(")", 1)[1].split()[2])
            except (OSError, ValueError, IndexError):
                continue
            if group == pid:
                with suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)

    def record_tasks(self) -> None:
        """Write the pids of the running commands beside the record."""
        if self.record_file is None:
            return
        text = " ".join(str(t.process.pid) for t in self.tasks.values() if t.exit_status is None)
        if text != self.recorded_tasks:
            self.recorded_tasks = text
            self.write_atomically(self.record_file + ".tasks", text.encode())

    @staticmethod
    def write_atomically(path: str, data: bytes) -> bool:
        temporary = path + ".new"
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except OSError:
            return False
        return True

    def record(self) -> None:
        """Write the cwd and variables for a later executor, when they changed; a write that
        fails only costs the adoption."""
        if self.record_file is None:
            return
        raw = format_state(self.cwd, self.env)
        if raw != self.recorded and self.write_atomically(self.record_file, raw):
            self.recorded = raw

    def refuse(self, number: int, message: str) -> None:
        self.send(REFUSED, number, json.dumps({"message": message}).encode())

    def hello(self) -> None:
        info = {
            "version": PROTOCOL_VERSION,
            "python": sys.version.split()[0],
            "pid": os.getpid(),
            "cwd": self.cwd,
            "env": self.env,
        }
        self.send(HELLO, 0, json.dumps(info).encode("utf-8", "surrogateescape"))

    # -- requests -------------------------------------------------------------------------

    def read_requests(self) -> bool:
        """Take in what the runner sent; ``False`` when it hung up."""
        data = os.read(0, CHUNK)
        if not data:
            return False
        self.last_request = time.monotonic()
        self.requests += data
        while True:
            if self.body is not None:
                if not self.take_body():
                    return True
                continue
            end = self.requests.find(b"\n")
            if end < 0:
                return True
            line = bytes(self.requests[:end])
            del self.requests[: end + 1]
            if line.strip() and not self.handle_line(line):
                return False

    def handle_line(self, line: bytes) -> bool:
        number = 0
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise Refused("a request must be a JSON object")
            number = request.get("id", 0)
            if not isinstance(number, int) or isinstance(number, bool) or number < 0:
                number = 0
                raise Refused("the id must be a whole number")
            return self.handle(request, number)
        except Refused as error:
            self.refuse(number, str(error))
        except ValueError as error:  # not JSON, or a field of the wrong kind
            self.refuse(number, f"cannot read the request: {error}")
        except (TypeError, KeyError) as error:
            self.refuse(number, f"malformed request: {error!r}")
        return True

    def handle(self, request: dict[str, Any], number: int) -> bool:
        op = request.get("op")
        if op == "run":
            self.start(request, number)
        elif op in ("stdin", "put"):
            size = request["size"]
            if not isinstance(size, int) or size < 0:
                raise Refused("size must be a whole number")
            self.body = Body(op, number, size, str(request.get("path") or ""))
        elif op == "close_stdin":
            task = self.task(number)
            task.stdin_closing = True
            self.feed_stdin(task)
        elif op == "kill":
            task = self.task(number)
            self.kill(
                task,
                request.get("signal") or "KILL",
                request.get("grace"),
                drop_output=bool(request.get("drop_output")),
            )
        elif op in ("pause", "resume"):
            task = self.task(number)
            task.paused = op == "pause"
            self.update_reading(task)
        elif op == "env":
            self.env.update(request.get("set") or {})
            for name in request.get("unset") or []:
                self.env.pop(name, None)
            self.cwd = request.get("cwd") or self.cwd
            self.record()
        elif op == "hello":
            beat = request.get("heartbeat")
            self.heartbeat = float(beat) if beat else None
            self.next_beat = time.monotonic()
            self.hello()
        elif op == "ping":
            self.send(PONG, number, b"")
        elif op == "bye":
            return False
        else:
            raise Refused(f"unknown op {op!r}")
        return True

    def task(self, number: int) -> Task:
        task = self.tasks.get(number)
        if task is None:
            raise Refused(f"no command {number} is running")
        return task

    def take_body(self) -> bool:
        """Feed buffered bytes to the pending body; ``True`` once it is complete."""
        body = self.body
        assert body is not None
        piece = bytes(self.requests[: body.remaining])
        del self.requests[: len(piece)]
        body.remaining -= len(piece)
        if body.op == "put":
            if body.spool is None:
                import tempfile  # only uploads need it; start-up stays short

                body.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed once unpacked
            body.spool.write(piece)
        else:
            body.received += piece
        if body.remaining:
            return False
        self.body = None
        if body.op == "put":
            self.unpack(body)
        else:
            self.queue_stdin(body)
        return True

    def queue_stdin(self, body: Body) -> None:
        task = self.tasks.get(body.number)
        if task is None or task.stdin is None or task.stdin_closing:
            self.refuse(body.number, f"command {body.number} takes no more input")
            return
        if len(task.stdin_pending) + len(body.received) > STDIN_LIMIT:
            self.refuse(body.number, f"command {body.number} is not reading its input")
            return
        task.stdin_pending += body.received
        self.feed_stdin(task)

    def unpack(self, body: Body) -> None:
        assert body.spool is not None
        body.spool.seek(0)
        try:
            _unpack(body.spool, body.path)
        except (OSError, ValueError) as error:
            message = f"agent-runner executor: cannot unpack into {body.path}: {error}\n"
            self.send(STDERR, body.number, message.encode())
            self.send(EXITED, body.number, encode_report(self.report(1)))
        else:
            self.send(EXITED, body.number, encode_report(self.report(0)))
        finally:
            body.spool.close()

    # -- commands ---------------------------------------------------------------------------

    def start(self, request: dict[str, Any], number: int) -> None:
        problem = check_request(request)
        if problem is not None:
            raise Refused(problem)
        if number in self.tasks:
            raise Refused(f"command {number} is already running")
        session = bool(request.get("session", True))
        if session and any(task.session for task in self.tasks.values()):
            raise Refused("a session command is already running")
        command, overlay = request["command"], request.get("env") or {}
        env = {**self.env, **overlay}
        state_file = None
        if session and may_change_state(command, env):
            state_file = self.state_file
            with suppress(FileNotFoundError):
                os.unlink(state_file)
        script = None
        if len(command) > LONG_COMMAND:
            import tempfile  # only long commands need it

            script = tempfile.TemporaryFile()  # noqa: SIM115 - closed right after the start
            script.write(command.encode("utf-8", "surrogateescape"))
            script.seek(0)
        script_fd = script.fileno() if script is not None else None
        argv = ["bash", *bash_arguments(command, state_file, script_fd, SACRIFICE_FIRST)]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE if request.get("stdin") else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=self.cwd if os.path.isdir(self.cwd) else "/",
                env=env,
                start_new_session=True,
                pass_fds=() if script_fd is None else (script_fd,),
            )
        except OSError as error:
            self.send(
                STDERR, number, f"agent-runner executor: cannot start bash: {error}\n".encode()
            )
            self.send(EXITED, number, encode_report(self.report(127, session=session)))
            return
        finally:
            if script is not None:
                script.close()
        task = Task(number, process, request.get("timeout"), overlay, session)
        self.tasks[number] = task
        self.record_tasks()
        for pipe, kind in ((process.stdout, STDOUT), (process.stderr, STDERR)):
            assert pipe is not None
            fd = pipe.fileno()
            os.set_blocking(fd, False)
            set_pipe_size(fd)
            task.pipes[fd] = kind
            self.readers[fd] = task
        if process.stdin is not None:
            task.stdin = process.stdin.fileno()
            os.set_blocking(task.stdin, False)
        self.update_reading(task)

    def update_reading(self, task: Task) -> None:
        """Read a task's output unless the runner is behind or asked for a pause; the time
        spent not reading does not count against its drain time."""
        reading = not self.throttled and not task.paused
        if reading == task.reading:
            return
        task.reading = reading
        now = time.monotonic()
        if reading:
            if task.drain_until is not None and task.stalled_at is not None:
                task.drain_until += now - task.stalled_at
            task.stalled_at = None
            for fd, kind in task.pipes.items():
                self.selector.register(fd, selectors.EVENT_READ, kind)
        else:
            task.stalled_at = now
            for fd in task.pipes:
                self.selector.unregister(fd)

    def read_output(self, fd: int) -> None:
        task = self.readers.get(fd)
        if task is None or not task.reading or fd not in task.pipes:
            return  # paused or finished since select() returned: a stale event
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return
        if data:
            self.send(task.pipes[fd], task.number, data)
            return
        self.close_pipe(task, fd)

    def close_pipe(self, task: Task, fd: int) -> None:
        if task.reading:
            self.selector.unregister(fd)
        del task.pipes[fd]
        del self.readers[fd]
        os.close(fd)

    def stdin_owner(self, fd: int) -> Task:
        return next(task for task in self.tasks.values() if task.stdin == fd)

    def feed_stdin(self, task: Task) -> None:
        """Write what the command takes of its pending input; close it when asked and done."""
        fd = task.stdin
        if fd is None:
            return
        registered = fd in self.selector.get_map()
        while task.stdin_pending:
            try:
                written = os.write(fd, task.stdin_pending[:CHUNK])
            except BlockingIOError:
                break
            except OSError:  # the command closed its input (or exited): drop the rest
                task.stdin_pending.clear()
                task.stdin_closing = True
                break
            del task.stdin_pending[:written]
        if task.stdin_pending and not registered:
            self.selector.register(fd, selectors.EVENT_WRITE, "stdin-of")
        elif not task.stdin_pending:
            if registered:
                self.selector.unregister(fd)
            if task.stdin_closing:
                os.close(fd)
                task.stdin = None

    def kill(self, task: Task, name: Any, grace: Any, *, drop_output: bool) -> None:
        if name not in SIGNALS:
            raise Refused(f"signal must be one of {', '.join(SIGNALS)}")
        task.signal(getattr(signal, f"SIG{name}"))
        if drop_output:  # the runner gave the command up: what it wrote is of no use now
            self.outbox.discard(task.number)
        if grace is not None and name != "KILL":
            if isinstance(grace, bool) or not isinstance(grace, (int, float)) or grace < 0:
                raise Refused("grace must be a number of seconds")
            task.kill_at = time.monotonic() + grace

    def progress(self) -> bool:
        """Reap, enforce deadlines, finish drained commands; ``False`` on missed heartbeats."""
        now = time.monotonic()
        if self.heartbeat is not None:
            if now - self.last_request > MISSED_HEARTBEATS * self.heartbeat:
                return False
            if now >= self.next_beat:
                self.send(PONG, 0, b"")
                self.next_beat = now + self.heartbeat
        for task in list(self.tasks.values()):
            self.advance(task, now)
        return True

    def advance(self, task: Task, now: float) -> None:
        if task.exit_status is None:
            pid, status = os.waitpid(task.process.pid, os.WNOHANG)
            if pid:
                task.process.returncode = status
                task.exit_status = exit_code(status)
                self.record_tasks()
                task.drain_until = now + DRAIN_SECONDS
                task.kill_at = None
                if task.stdin is not None:
                    task.stdin_pending.clear()
                    task.stdin_closing = True
                    self.feed_stdin(task)
            elif task.deadline is not None and now >= task.deadline and not task.timed_out:
                task.timed_out = True
                task.signal(signal.SIGKILL)
            elif task.kill_at is not None and now >= task.kill_at:
                task.kill_at = None
                task.signal(signal.SIGKILL)
        if task.exit_status is None:
            return
        drained = task.reading and now >= (task.drain_until or now)
        if not task.pipes or drained:
            self.finish(task)

    def finish(self, task: Task) -> None:
        for fd in list(task.pipes):
            self.close_pipe(task, fd)
        del self.tasks[task.number]
        if task.session:
            try:
                with open(self.state_file, "rb") as handle:
                    state = parse_state(handle.read())
            except OSError:
                state = None
            if state is not None:
                self.cwd, env = state
                self.env = carry_over(self.env, task.overlay, env)
                self.record()
        status = task.exit_status
        assert status is not None
        code = TIMEOUT_EXIT_CODE if task.timed_out else status
        oom = code == 128 + signal.SIGKILL and not task.timed_out and self.oom_killed()
        report = self.report(code, task.timed_out, oom, session=task.session)
        self.send(EXITED, task.number, encode_report(report))

    def oom_killed(self) -> bool:
        """Whether the sandbox's OOM-kill counter moved since it was last read: read only
        after a SIGKILL, so the common path opens no cgroup file."""
        count = _oom_kills()
        moved = count > self.oom_kills >= 0
        self.oom_kills = count
        return moved

    def report(
        self, code: int, timed_out: bool = False, oom_killed: bool = False, *, session: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = {
            "exit_code": code,
            "timed_out": timed_out,
            "oom_killed": oom_killed,
        }
        if session:
            result.update(cwd=self.cwd, env=self.env)
        return result


def main() -> None:
    state_file = sys.argv[1] if len(sys.argv) > 1 else "/tmp/.stigmer-executor-state"
    executor = Executor(state_file, sys.argv[2] if len(sys.argv) > 2 else None)
    try:
        executor.serve()
    except BrokenPipeError:  # the runner is gone
        pass
    finally:
        executor.stop()


if __name__ == "__main__":
    main()
