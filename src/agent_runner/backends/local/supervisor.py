"""The host supervisor: LOCAL commands are its descendants, and die with the runner.

A process of the runner's kills what it started when it closes, but nothing of the runner
survives a SIGKILL, and a command that detaches (``setsid``, a double fork) leaves its
process group and is re-parented to pid 1. So LOCAL commands are not the runner's children.
One *root* supervisor per runner process, and below it one *group* per session, both child
subreapers (``prctl(PR_SET_CHILD_SUBREAPER)``, Linux): every descendant of a session, however
it detaches, stays below its group. A group that loses its runner (end of file on its
socket), or is told to close, kills its whole tree; the root does the same for every group
when the runner is gone. This is the in-sandbox executor's design applied on the host,
except that output does not pass through here: the runner creates each command's pipes and
hands their ends over (``SCM_RIGHTS``), so LOCAL output costs no extra copy.

Run as ``python -I -S supervisor.py FD`` with FD one end of a ``SOCK_SEQPACKET`` socket
pair; standard library only. Messages are JSON, one per packet, file descriptors beside:
  runner -> root   {"op": "group"}                        reply {"group": pid} + the runner's
                                                            end of the new group's socket
  runner -> group  {"op": "spawn", "id": n, "argv": [..], "cwd": str, "env": {..},
                    "script_at": i} + fds for the child's stdin, stdout, stderr (and the
                   script of a long command, whose number goes into argv[i])
                                                            later {"exited": n, "code": int,
                                                            "alone": bool} (alone: nothing of the
                                                            group is left running), or
                                                            {"failed": n, "error": str}
  runner -> group  {"op": "signal", "id": n, "signal": int}  the command's group and its
                                                            descendants get the signal
  runner -> group  {"op": "close"}                          kill the whole tree, reply
                                                            {"closed": true}, exit
The root keeps one group forked ahead, so opening a session waits for no fork; nothing
waits for a spawn to be confirmed, and a runner told that a group is ``alone`` closes it
without waiting: a one-off command costs the runner no round trip beyond its own end.
"""

from __future__ import annotations

import array
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from typing import Any

PR_SET_CHILD_SUBREAPER = 36
MAX_PACKET = 1 << 20
MAX_FDS = 8
KILL_ROUNDS_SECONDS = 5.0


def become_subreaper() -> bool:
    """Orphaned descendants become our children instead of pid 1's (Linux only)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError, ImportError):
        return False


def receive_packet(sock: socket.socket) -> tuple[dict[str, Any] | None, list[int]]:
    """One packet and the descriptors that came with it; ``None`` at end of file."""
    fds = array.array("i")
    try:
        data, ancillary, _flags, _address = sock.recvmsg(
            MAX_PACKET, socket.CMSG_SPACE(MAX_FDS * fds.itemsize), socket.MSG_CMSG_CLOEXEC
        )
    except ConnectionResetError:  # the other end closed with our answer unread
        return None, []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data:
        for fd in fds:
            os.close(fd)
        return None, []
    return json.loads(data), list(fds)


def send_packet(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """One packet, with ``fds`` beside it (they stay open here)."""
    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    sock.sendmsg([json.dumps(message).encode()], ancillary)


def tell(sock: socket.socket, message: dict[str, Any], fds: list[int] | None = None) -> None:
    """Answer the runner; a runner that is gone hears nothing, and that is fine."""
    with suppress(OSError):
        send_packet(sock, message, fds)


def process_table() -> dict[int, tuple[int, str]]:
    """Every process's parent and state, from /proc (or ``ps`` where there is none)."""
    table: dict[int, tuple[int, str]] = {}
    if os.path.isdir("/proc/self"):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
                table[int(entry)] = (int(fields[1]), fields[0].decode())
            except (OSError, IndexError, ValueError):
                continue
        return table
    listing = subprocess.run(
        ["ps", "-A", "-o", "pid=,ppid=,stat="], capture_output=True, text=True, check=False
    )
    for line in listing.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].isdigit() and parts[1].isdigit():
            table[int(parts[0])] = (int(parts[1]), parts[2][:1])
    return table


def descendants(ancestor: int) -> list[int]:
    """Live (not zombie) processes below ``ancestor``, parents before children."""
    return _descendants_from_table(ancestor)


def _descendants_from_table(ancestor: int) -> list[int]:
    children: dict[int, list[int]] = {}
    table = process_table()
    for pid, (parent, _state) in table.items():
        children.setdefault(parent, []).append(pid)
    found: list[int] = []
    pending = list(children.get(ancestor, ()))
    while pending:
        pid = pending.pop()
        if table[pid][1] != "Z":
            found.append(pid)
        pending.extend(children.get(pid, ()))
    return found


def signal_tree(leader: int, number: int) -> None:
    """Signal ``leader``'s process group and every descendant of ``leader``."""
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(leader, number)
    for pid in descendants(leader):
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, number)


def reap(ended: list[tuple[int, int]] | None = None) -> bool:
    """Collect every child that ended (into ``ended``: pid, wait status); whether any child
    is left. A subreaper with no child has no descendant at all: whatever its children
    started is either below a child still alive or was handed up to it."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if ended is not None:
            ended.append((pid, status))


def kill_everything_below_me() -> None:
    """SIGKILL every descendant until none is left (new ones may appear while we kill)."""
    deadline = time.monotonic() + KILL_ROUNDS_SECONDS
    while reap() and time.monotonic() < deadline:
        for pid in descendants(os.getpid()):
            with suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.002)


def exit_code(status: int) -> int:
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else 1


class Group:
    """One session's commands: spawns them, reports their ends, kills the lot at the end."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.commands: dict[int, subprocess.Popen[bytes]] = {}
        """Each command still running, by the runner's id."""
        self.ids: dict[int, int] = {}

    def serve(self) -> None:
        become_subreaper()
        wake_read, wake_write = os.pipe()
        os.set_blocking(wake_write, False)
        os.set_blocking(wake_read, False)
        signal.set_wakeup_fd(wake_write)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ, "runner")
        selector.register(wake_read, selectors.EVENT_READ, "wake")
        while True:
            for key, _ in selector.select(1.0):
                if key.data == "wake":
                    with suppress(BlockingIOError):
                        while os.read(wake_read, 512):
                            pass
                elif not self.handle():
                    kill_everything_below_me()
                    return
            self.collect()

    def handle(self) -> bool:
        message, fds = receive_packet(self.sock)
        if message is None:
            return False
        op = message.get("op")
        if op == "spawn":
            self.spawn(message, fds)
        elif op == "signal":
            for fd in fds:
                os.close(fd)
            command = self.commands.get(int(message["id"]))
            if command is not None:
                signal_tree(command.pid, int(message["signal"]))
        elif op == "close":
            kill_everything_below_me()
            tell(self.sock, {"closed": True})
            return False
        return True

    def spawn(self, message: dict[str, Any], fds: list[int]) -> None:
        """Start the command (vfork and exec, in a session of its own) on the runner's
        descriptors; a script descriptor keeps its number, which argv names."""
        number = int(message["id"])
        argv = list(message["argv"])
        script = fds[3:4]
        if script:
            argv[int(message["script_at"])] = str(script[0])
        try:
            process = subprocess.Popen(
                argv,
                stdin=fds[0],
                stdout=fds[1],
                stderr=fds[2],
                pass_fds=script,
                cwd=message["cwd"],
                env=message["env"],
                start_new_session=True,
            )
        except (OSError, ValueError, subprocess.SubprocessError) as error:
            tell(self.sock, {"failed": number, "error": f"cannot start {argv[0]}: {error}"})
            return
        finally:
            for fd in fds:
                os.close(fd)
        self.commands[number] = process
        self.ids[process.pid] = number

    def collect(self) -> None:
        ended: list[tuple[int, int]] = []
        left = reap(ended)
        for pid, status in ended:
            number = self.ids.pop(pid, None)
            if number is not None:
                self.commands.pop(number).returncode = status
                report = {"exited": number, "code": exit_code(status), "alone": not left}
                tell(self.sock, report)


class Root:
    """Hands out groups, one always forked ahead; takes them all down with the runner."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.spare: tuple[int, socket.socket] | None = None

    def fork_group(self) -> tuple[int, socket.socket]:
        runner_end, group_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            runner_end.close()
            self.sock.close()
            status = 0
            try:
                Group(group_end).serve()
            except BaseException:  # a group must end, whatever happens
                status = 1
                kill_everything_below_me()
            os._exit(status)
        group_end.close()
        return pid, runner_end

    def serve(self) -> None:
        become_subreaper()
        self.spare = self.fork_group()
        selector = selectors.DefaultSelector()
        selector.register(self.sock, selectors.EVENT_READ)
        while True:
            if selector.select(1.0) and not self.handle():
                break
            reap()  # groups that ended, and orphans of theirs handed up to us
        if self.spare is not None:
            self.spare[1].close()
        kill_everything_below_me()

    def handle(self) -> bool:
        message, fds = receive_packet(self.sock)
        for fd in fds:
            os.close(fd)
        if message is None:
            return False
        if message.get("op") == "group":
            pid, runner_end = self.spare or self.fork_group()
            tell(self.sock, {"group": pid}, [runner_end.fileno()])
            runner_end.close()
            self.spare = self.fork_group()
        return True


def main() -> None:
    sock = socket.socket(fileno=int(sys.argv[1]))
    Root(sock).serve()


if __name__ == "__main__":
    main()
