"""Toolbox sessions: one long-lived shell per session, as the real daemon runs them.

What the daemon does (``apps/daemon/pkg/session/*.go``, v0.190), and so what this does:

- ``create`` starts the shell the daemon picks (zsh, else bash, else ``$SHELL``, else sh)
  with a pipe on its stdin, in its own process group, in the sandbox's working directory.
- ``exec`` writes the command to a file and feeds the shell a small block that *sources*
  it in the shell itself, with stdout and stderr sent through two FIFOs whose readers
  prefix each line with ``\\x01\\x01\\x01`` or ``\\x02\\x02\\x02`` and append it to one log
  file; the exit code goes to a file once both readers drained. Consequences the SDK user
  sees: ``cd``, ``export``, plain variables, functions, ``set -e`` and traps persist to
  the next command; the last line of output always ends in a newline; output arrives a
  line at a time; ``exit`` ends the session's shell, so that command never gets an exit
  code and the session takes no more commands.
- a synchronous command gets EOF on stdin at once; an asynchronous (``runAsync``) one
  keeps a stdin FIFO open until it ends, for ``/input``.
- a log stream over the websocket follows the file, polling every 20 ms, and ends once
  the exit code exists and 50 reads in a row (about a second) found nothing new.
- ``delete`` sends SIGTERM to the shell's process group and descendants, waits up to 5 s
  for them, then SIGKILL.

The wrapper block is the emulator's own; the real one also leaves its variables
(``log``, ``dir``, ``sp``, ``ep``, ``ip``, ``r1``, ``r2``, ``ip_pid``, ``_ec``) and a
``cleanup`` function in the session shell, which this one does not imitate by name. Like
the real one it installs an EXIT/HUP/INT/TERM trap in the session shell, replacing any
trap a command set.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import os
import re
import shlex
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tests.fakes.daytona.containers import MOUNT, Containers
from tests.fakes.daytona.engine import STDOUT, ExecStream
from tests.fakes.daytona.errors import DaemonError

if TYPE_CHECKING:
    from tests.fakes.daytona.runtime import Runtime

STDOUT_MARK = b"\x01\x01\x01"
STDERR_MARK = b"\x02\x02\x02"
FOLLOW_POLL_SECONDS = 0.02
FOLLOW_IDLE_READS = 50
EXEC_POLL_SECONDS = 0.05
LOG_CHUNK = 1024
INPUT_OPEN_SECONDS = 5.0

_WRAPPER = r"""{
__dtemu_d=%(dir)s
rm -f "$__dtemu_d/out.fifo" "$__dtemu_d/err.fifo" "$__dtemu_d/in.fifo"
mkfifo "$__dtemu_d/out.fifo" "$__dtemu_d/err.fifo" "$__dtemu_d/in.fifo" || exit 1
trap 'rm -f "$__dtemu_d/out.fifo" "$__dtemu_d/err.fifo" "$__dtemu_d/in.fifo"' EXIT HUP INT TERM
__dtemu_tag() { while IFS= read -r __dtemu_line || [ -n "$__dtemu_line" ]; do printf "$1%%s\n" "$__dtemu_line"; done; }
__dtemu_tag '\001\001\001' < "$__dtemu_d/out.fifo" >> "$__dtemu_d/output.log" & __dtemu_out=$!
__dtemu_tag '\002\002\002' < "$__dtemu_d/err.fifo" >> "$__dtemu_d/output.log" & __dtemu_err=$!
%(stdin_holder)s
__dtemu_hold=$!
{ . "$__dtemu_d/cmd.sh"; } < "$__dtemu_d/in.fifo" > "$__dtemu_d/out.fifo" 2> "$__dtemu_d/err.fifo"
__dtemu_rc=$?
kill "$__dtemu_hold" 2>/dev/null; wait "$__dtemu_hold" 2>/dev/null
wait "$__dtemu_out" "$__dtemu_err"
echo "$__dtemu_rc" > "$__dtemu_d/exit_code.part" && mv -f "$__dtemu_d/exit_code.part" "$__dtemu_d/exit_code"
rm -f "$__dtemu_d/out.fifo" "$__dtemu_d/err.fifo" "$__dtemu_d/in.fifo"
}
"""
_HOLD_SYNC = ': > "$__dtemu_d/in.fifo" &'
_HOLD_ASYNC = '{ while sleep 3600; do :; done; } > "$__dtemu_d/in.fifo" &'


def _safe(name: str) -> str:
    """A directory name for a client-chosen id (the real daemon joins it into a path)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:64]
    return f"{cleaned}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


@dataclass
class Command:
    id: str
    command: str
    host_dir: Path
    run_async: bool
    suppress_echo: bool
    exit_code: int | None = None

    @property
    def log_path(self) -> Path:
        return self.host_dir / "output.log"

    def read_exit(self) -> int | None:
        """The exit code once the wrapper wrote it (the daemon's ``GetSessionCommand``)."""
        if self.exit_code is None:
            try:
                text = (self.host_dir / "exit_code").read_text().strip()
            except FileNotFoundError:
                return None
            if text:
                self.exit_code = int(text.splitlines()[-1])
        return self.exit_code

    def read_log(self) -> bytes:
        try:
            return self.log_path.read_bytes()
        except FileNotFoundError:
            raise DaemonError(
                404, f"open {self.log_path.name}: no such file", "NOT_FOUND"
            ) from None


@dataclass
class Session:
    id: str
    host_dir: Path
    stream: ExecStream
    pid: int
    commands: dict[str, Command] = field(default_factory=dict)
    dead: bool = False
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    reader: asyncio.Task[None] | None = None


def demux(log: bytes) -> tuple[bytes, bytes]:
    """Split a marked log into (stdout, stderr), as ``session.DemuxLogBytes`` does."""
    out, err = bytearray(), bytearray()
    target: bytearray | None = None
    position = 0
    pattern = re.compile(re.escape(STDOUT_MARK) + b"|" + re.escape(STDERR_MARK))
    for match in pattern.finditer(log):
        if target is not None:
            target.extend(log[position : match.start()])
        target = out if match.group() == STDOUT_MARK else err
        position = match.end()
    if target is not None:
        target.extend(log[position:])
    return bytes(out), bytes(err)


def strip_marks(log: bytes) -> bytes:
    return log.replace(STDOUT_MARK, b"").replace(STDERR_MARK, b"")


class SessionManager:
    """The sessions of one running sandbox."""

    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._sessions: dict[str, Session] = {}
        self._root = runtime.container.host_dir / "sessions"

    @property
    def _containers(self) -> Containers:
        return self._runtime.containers

    def _share(self, path: Path, *, directory: bool = False) -> None:
        Containers.share(path, self._runtime.identity, directory=directory)

    def get(self, session_id: str) -> Session:
        session = self._sessions.get(session_id)
        if session is None:
            raise DaemonError(404, "session not found", "PROCESS_NOT_FOUND")
        return session

    def all(self) -> list[Session]:
        return list(self._sessions.values())

    def command(self, session_id: str, command_id: str) -> tuple[Session, Command]:
        session = self.get(session_id)
        command = session.commands.get(command_id)
        if command is None:
            raise DaemonError(404, "command not found", "PROCESS_NOT_FOUND")
        return session, command

    async def create(self, session_id: str) -> None:
        if session_id in self._sessions:
            raise DaemonError(409, "session already exists", "CONFLICT")
        identity = self._runtime.identity
        host_dir = self._root / _safe(session_id)
        host_dir.mkdir(parents=True, exist_ok=True)
        self._share(self._root, directory=True)
        self._share(host_dir, directory=True)
        shell = identity.shell
        flags = (
            ["-f"]
            if shell.endswith("zsh")
            else ["--norc", "--noprofile"]
            if shell.endswith("bash")
            else []
        )
        _, stream = await self._containers.open(
            self._runtime.container.id,
            ["/bin/sh", "-c", 'echo "$$"; exec "$@"', "session", shell, *flags],
            user=identity.spec,
            workdir=identity.workdir,
        )
        first = bytearray()
        while b"\n" not in first:
            piece = await stream.read()
            if piece is None:
                raise DaemonError(500, "failed to start the session shell", "INTERNAL_SERVER_ERROR")
            if piece[0] == STDOUT:
                first.extend(piece[1])
        pid = int(first.split(b"\n", 1)[0])
        session = Session(id=session_id, host_dir=host_dir, stream=stream, pid=pid)
        session.reader = asyncio.create_task(self._watch(session))
        self._sessions[session_id] = session

    async def _watch(self, session: Session) -> None:
        """Drain the shell's own output; its end means the shell exited."""
        while await session.stream.read() is not None:
            pass
        session.dead = True

    async def execute(
        self, session_id: str, text: str, *, run_async: bool, suppress_echo: bool
    ) -> tuple[Session, Command]:
        session = self.get(session_id)
        if session.dead:
            # The newer daemon's answer (PR "session exec silently no-ops", 33b35fb13);
            # v0.190 wrote into the dead shell's pipe and returned as if it ran.
            raise DaemonError(400, "session shell has exited; create a new session")
        command_id = str(uuid.uuid4())
        host_dir = session.host_dir / command_id
        host_dir.mkdir()
        self._share(host_dir, directory=True)
        (host_dir / "cmd.sh").write_text(text)
        (host_dir / "output.log").touch()
        for name in ("cmd.sh", "output.log"):
            self._share(host_dir / name)
        command = Command(command_id, text, host_dir, run_async, suppress_echo)
        session.commands[command_id] = command
        block = _WRAPPER % {
            "dir": shlex.quote(f"{MOUNT}/sessions/{session.host_dir.name}/{command_id}"),
            "stdin_holder": _HOLD_ASYNC if run_async else _HOLD_SYNC,
        }
        try:
            await session.stream.write(block.encode())
        except (ConnectionError, RuntimeError) as error:
            raise DaemonError(400, f"failed to write command: {error}") from None
        return session, command

    async def wait(
        self, session: Session, command: Command, still_wanted: Callable[[], bool]
    ) -> int:
        """Until the command's exit code exists: the synchronous exec's 50 ms poll."""
        while True:
            code = command.read_exit()
            if code is not None:
                return code
            if session.cancelled.is_set():
                command.exit_code = 1
                raise DaemonError(400, "session cancelled")
            if not still_wanted():
                raise asyncio.CancelledError
            await asyncio.sleep(EXEC_POLL_SECONDS)

    async def follow(self, session: Session, command: Command) -> AsyncIterator[bytes]:
        """The log as it grows, ending as ``util.ReadLogWithExitCode`` ends."""
        with command.log_path.open("rb") as log:
            idle = 0
            while not session.cancelled.is_set():
                chunk = log.read(LOG_CHUNK)
                if chunk:
                    idle = 0
                    yield chunk
                    continue
                idle += 1
                if idle >= FOLLOW_IDLE_READS:
                    if command.read_exit() is not None:
                        return
                    idle = 0
                await asyncio.sleep(FOLLOW_POLL_SECONDS)

    async def send_input(self, session_id: str, command_id: str, data: str) -> None:
        """Write to a running command's stdin FIFO, echoing it into stdout (``input.go``).

        Like the daemon this fails when the FIFO does not exist yet (an input sent before
        the shell reached the command) and waits while it has no reader yet.
        """
        session, command = self.command(session_id, command_id)
        if session.dead:
            raise DaemonError(410, "session process has exited", "SESSION_ENDED")
        code = command.read_exit()
        if code is not None:
            raise DaemonError(
                410,
                f"command has already completed with exit code {code}",
                "COMMAND_ALREADY_COMPLETED",
            )
        if not data.endswith("\n"):
            data += "\n"
        fifo = command.host_dir / "in.fifo"
        deadline = asyncio.get_running_loop().time() + INPUT_OPEN_SECONDS
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as error:
                waiting = error.errno == errno.ENXIO  # exists, no reader yet
                if not waiting or asyncio.get_running_loop().time() > deadline:
                    raise DaemonError(500, f"failed to open input pipe: {error}") from None
                await asyncio.sleep(EXEC_POLL_SECONDS)
        try:
            os.set_blocking(fd, True)
            os.write(fd, data.encode())
        finally:
            os.close(fd)
        if not command.suppress_echo:
            with command.log_path.open("ab") as log:
                log.write(STDOUT_MARK + data.encode())

    async def delete(self, session_id: str) -> None:
        session = self.get(session_id)
        await self._runtime.kill_tree(session.pid)
        self._end(session)
        self._sessions.pop(session_id, None)

    def _end(self, session: Session) -> None:
        session.cancelled.set()
        session.stream.close()
        if session.reader is not None:
            session.reader.cancel()

    async def close(self) -> None:
        for session in self._sessions.values():
            self._end(session)
        self._sessions.clear()
