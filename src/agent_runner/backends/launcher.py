"""Killing a remote command's tree by the pid file its launcher wrote.

Shells that keep state on the runner's side (Docker's exec-per-command path, Daytona's
session commands) start each command through a small launcher in the sandbox: the command
becomes the leader of a session of its own (``setsid``), so its pid is also its process
group's, and the launcher writes ``PID PARENT [RELAYS...]`` into a pid file. A timeout, a
cancellation or :meth:`~agent_runner.backends.base.ProcessHandle.signal` is then one more
remote call that runs :data:`SIGNAL` with that file. Neither API has a kill endpoint.
:class:`GraceKill` is the KILL that follows a signal a process ignored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from agent_runner.errors import AgentRunnerError

SIGNAL = (
    'sig=$1 pids=$2 relays=$3; { builtin echo "$sig" >| "$pids.kill"; } 2>/dev/null; '
    '{ read -r pid parent rest < "$pids"; } 2>/dev/null || exit 0; '
    'if [ "$sig" = KILL ] && [ "${parent:-0}" -gt 1 ] '
    '&& [ "$(cat /proc/$parent/comm 2>/dev/null)" = setsid ]; then kill -KILL "$parent"; fi; '
    'kill -"$sig" -- "-$pid" 2>/dev/null || kill -"$sig" "$pid" 2>/dev/null; '
    '[ -z "$relays" ] || [ -z "$rest" ] || kill -KILL $rest 2>/dev/null; exit 0'
)
"""``bash -c SIGNAL bash NAME PIDFILE [1]``: signal the command's group.

It first leaves ``NAME`` in ``PIDFILE.kill``: a launcher that looks for that file right
after writing its pid file cannot miss a signal sent before it got that far. Before a KILL
it kills a ``setsid -w`` that waits for the command (so that one cannot complain on the
command's stderr). With a third argument it also kills the relays the pid file names after
the parent (the processes copying the command's output out), so a killed command's backlog
does not hold its caller."""


def signal_argv(name: str, pid_file: str, *, relays: bool = False) -> list[str]:
    """The argv that sends ``name`` to the tree ``pid_file`` names."""
    return ["bash", "-c", SIGNAL, "bash", name, pid_file, *(["1"] if relays else [])]


class GraceKill:
    """A process's signals, sent by ``send``; unless it is KILL, KILL follows ``grace``
    seconds later while ``running()`` still holds (it ignored the first)."""

    def __init__(self, send: Callable[[str], Awaitable[None]], running: Callable[[], bool]) -> None:
        self._send = send
        self._running = running
        self._killer: asyncio.Task[None] | None = None

    async def signal(self, name: str, grace: float | None) -> None:
        await self._send(name)
        if grace is not None and name != "KILL":
            self._killer = asyncio.get_running_loop().create_task(self._kill_after(grace))

    async def _kill_after(self, grace: float) -> None:
        await asyncio.sleep(grace)
        if self._running():
            with contextlib.suppress(AgentRunnerError):  # the sandbox is gone: nothing to kill
                await self._send("KILL")

    async def stop(self) -> None:
        """Forget a KILL still to come (the process is no longer followed)."""
        if self._killer is not None:
            self._killer.cancel()
            await asyncio.gather(self._killer, return_exceptions=True)
