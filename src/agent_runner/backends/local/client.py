"""The runner's side of the host supervisor (:mod:`.supervisor`).

One root supervisor per runner process, started on first use and shared by every runner
and event loop in the process; each LOCAL shell takes a command group from it and talks to
that group alone, on its own event loop. A spawn hands the group the command's standard
descriptors, which the runner created, so the runner reads the output directly.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

from agent_runner.backends.local import supervisor
from agent_runner.errors import ModeUnavailable, SessionClosed

ANSWER_SECONDS = 30.0
CLOSE_SECONDS = 10.0
IDLE_GROUPS = 4


class RootSupervisor:
    """The process-wide root; :meth:`shared` starts it once per process (fork-aware)."""

    _instance: RootSupervisor | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-I", "-S", supervisor.__file__, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as error:
            ours.close()
            raise ModeUnavailable(f"cannot start the LOCAL supervisor: {error}") from None
        finally:
            theirs.close()
        ours.settimeout(ANSWER_SECONDS)
        self._sock = ours
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._asked = False
        """A group was asked for ahead of time; its answer is waiting on the socket."""
        self._idle: list[socket.socket] = []
        """Groups whose sessions ended with nothing left running: as good as new."""

    @classmethod
    def shared(cls) -> RootSupervisor:
        with cls._instance_lock:
            current = cls._instance
            if current is None or current._pid != os.getpid() or current.process.poll() is not None:
                cls._instance = current = cls()
            return current

    def group(self) -> socket.socket:
        """A command group's socket: an idle one, else a new one. The next new one is asked
        for at once, so the answer is normally waiting already (the root always has a group
        forked ahead)."""
        with self._lock:
            if self._idle:
                return self._idle.pop()
            try:
                if not self._asked:
                    supervisor.send_packet(self._sock, {"op": "group"})
                answer, fds = supervisor.receive_packet(self._sock)
                self._asked = False
                supervisor.send_packet(self._sock, {"op": "group"})
                self._asked = True
            except OSError as error:
                raise ModeUnavailable(f"the LOCAL supervisor does not answer: {error}") from None
        if answer is None or "group" not in answer or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise ModeUnavailable("the LOCAL supervisor could not open a session")
        sock = socket.socket(fileno=fds[0])
        sock.setblocking(False)
        return sock

    def give_back(self, sock: socket.socket) -> None:
        """Keep an empty group for the next session (a one-off command's, typically)."""
        with self._lock:
            if len(self._idle) < IDLE_GROUPS and self._pid == os.getpid():
                self._idle.append(sock)
                return
        sock.close()


@dataclass
class Spawned:
    """A command handed to the group: its id there, and its exit code to come."""

    id: int
    exited: asyncio.Future[int]


class CommandGroup:
    """One shell's group: spawn commands, signal them, hear when they end."""

    def __init__(self, root: RootSupervisor) -> None:
        self._root = root
        sock = self._sock = root.group()
        self._loop = asyncio.get_running_loop()
        self._exited: dict[int, asyncio.Future[int]] = {}
        self._alone = True
        """Nothing the group started is running (as of its last report)."""
        self._closing: asyncio.Future[None] | None = None
        self._next_id = 0
        self._gone = False
        self._loop.add_reader(sock.fileno(), self._on_readable)

    @classmethod
    def open(cls) -> CommandGroup:
        return cls(RootSupervisor.shared())

    async def spawn(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        fds: list[int],
        script_at: int | None = None,
    ) -> Spawned:
        """Start ``argv`` with ``fds`` as its stdin, stdout and stderr (and a script whose
        descriptor number goes into ``argv[script_at]``); the caller keeps its copies."""
        if self._gone:
            raise SessionClosed("this session's LOCAL supervisor is gone; open a new session")
        self._next_id += 1
        number = self._next_id
        exited = self._exited[number] = self._loop.create_future()
        message = {
            "op": "spawn",
            "id": number,
            "argv": argv,
            "cwd": cwd,
            "env": env,
            "script_at": script_at,
        }
        self._alone = False
        try:
            await self._send(message, fds)
        except BaseException:
            self._exited.pop(number, None)
            raise
        return Spawned(number, exited)

    def signal(self, command: Spawned, number: int) -> None:
        """Signal ``command``'s process group and its descendants."""
        if not self._gone and not command.exited.done():
            with suppress(OSError):
                supervisor.send_packet(
                    self._sock, {"op": "signal", "id": command.id, "signal": number}
                )

    async def _send(self, message: dict[str, Any], fds: list[int]) -> None:
        while True:
            try:
                supervisor.send_packet(self._sock, message, fds)
                return
            except BlockingIOError:
                writable = self._loop.create_future()
                self._loop.add_writer(self._sock.fileno(), writable.set_result, None)
                try:
                    await writable
                finally:
                    self._loop.remove_writer(self._sock.fileno())
            except OSError as error:
                self._lost()
                raise SessionClosed(f"the LOCAL supervisor is gone: {error}") from None

    def _on_readable(self) -> None:
        try:
            answer, fds = supervisor.receive_packet(self._sock)
        except BlockingIOError:
            return
        except OSError:
            answer, fds = None, []
        for fd in fds:
            os.close(fd)
        if answer is None:
            self._lost()
        elif "failed" in answer:
            future = self._exited.pop(int(answer["failed"]), None)
            if future is not None and not future.done():
                future.set_exception(ModeUnavailable(str(answer["error"])))
        elif "exited" in answer:
            self._alone = bool(answer.get("alone")) and not self._exited.keys() - {
                int(answer["exited"])
            }
            _resolve(self._exited.pop(int(answer["exited"]), None), int(answer["code"]))
        elif "closed" in answer:
            _resolve(self._closing, None)

    def _lost(self) -> None:
        """The group is gone (killed, or the machine ran out of processes)."""
        if self._gone:
            return
        self._gone = True
        self._loop.remove_reader(self._sock.fileno())
        error = SessionClosed("this session's LOCAL supervisor stopped unexpectedly")
        for future in self._exited.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: whoever awaits it still gets it
        _resolve(self._closing, None)

    async def close(self) -> None:
        """Kill everything the session's commands left running, and end the group; a group
        that said nothing of it is left running is as good as new, and kept for another."""
        if self._gone:
            self._sock.close()
            return
        self._gone = True
        if self._alone:
            self._loop.remove_reader(self._sock.fileno())
            self._root.give_back(self._sock)
            return
        self._closing = self._loop.create_future()
        try:
            with suppress(OSError):
                supervisor.send_packet(self._sock, {"op": "close"})
                with suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._closing), CLOSE_SECONDS)
        finally:  # also when cancelled: the hang-up alone makes the group kill everything
            self._loop.remove_reader(self._sock.fileno())
            self._sock.close()


def _resolve(future: asyncio.Future[Any] | None, value: Any) -> None:
    if future is not None and not future.done():
        future.set_result(value)
