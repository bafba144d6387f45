"""The daemon side of one running sandbox: its container, sessions and open requests.

In real Daytona a toolbox request travels proxy -> runner -> the daemon inside the
sandbox. When the sandbox stops, is deleted or its container disappears, the daemon dies
with it and every request still open through the proxy fails: Go's reverse proxy answers
``502`` if nothing was written yet and drops the connection otherwise. A :class:`Runtime`
exists while the container runs; :meth:`Runtime.guard` is how a long toolbox operation
notices that the daemon is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from tests.fakes.daytona.containers import Containers, Identity, SandboxContainer
from tests.fakes.daytona.errors import UpstreamGone
from tests.fakes.daytona.sessions import SessionManager

T = TypeVar("T")

# Ends a process group the way the daemon ends a session (session/delete.go): SIGTERM to
# the group and every descendant, up to 5 s (DAYTONA_TERMINATION_GRACE_PERIOD) for the
# descendants to go, then SIGKILL. Run as root inside the container, in one exec.
KILL_TREE = r"""
pg=$1 grace=$2
descendants() {
    ps -eo pid=,ppid= 2>/dev/null | awk -v root="$pg" '
        { parent[$1] = $2 }
        END {
            found[root] = 1
            do { more = 0; for (p in parent) if (!(p in found) && (parent[p] in found)) { found[p] = 1; more = 1 } } while (more)
            for (p in found) if (p != root) print p
        }'
}
signal_all() {
    kill -s "$1" -- "-$pg" 2>/dev/null
    for p in $(descendants); do kill -s "$1" "$p" 2>/dev/null; done
}
signal_all TERM
i=0
while [ "$i" -lt "$grace" ] && [ -n "$(descendants)" ]; do sleep 0.1; i=$((i + 1)); done
signal_all KILL
kill -s KILL "$pg" 2>/dev/null
exit 0
"""


class Runtime:
    """A started sandbox as the toolbox sees it."""

    def __init__(self, containers: Containers, container: SandboxContainer) -> None:
        self.containers = containers
        self.container = container
        self.gone = asyncio.Event()
        self.sessions = SessionManager(self)

    @property
    def identity(self) -> Identity:
        return self.container.identity

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless the daemon goes away first (then :class:`UpstreamGone`)."""
        task = asyncio.ensure_future(work)
        gone = asyncio.ensure_future(self.gone.wait())
        try:
            done, _ = await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            gone.cancel()
        if task in done:
            return task.result()
        task.cancel()
        raise UpstreamGone()

    async def kill_tree(self, pid: int, grace_tenths: int = 50) -> None:
        """Terminate ``pid``'s process group and descendants (root exec, one call)."""
        if self.gone.is_set():
            return
        await self.containers.run(
            self.container.id,
            ["/bin/sh", "-c", KILL_TREE, "kill-tree", str(pid), str(grace_tenths)],
            user="root",
        )

    async def close(self) -> None:
        """The daemon is gone: fail what is open, end the session shells."""
        self.gone.set()
        await self.sessions.close()
