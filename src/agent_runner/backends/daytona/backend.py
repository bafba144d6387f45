"""SANDBOX on Daytona: one cloud sandbox per session, from a snapshot.

This module answers *where*: the client, the sandbox a session gets (its own again after
a runner restart, else a new one: :mod:`.lifecycle`), the workspace copied in
(:mod:`.workspace`), and what happens to the sandbox when the session closes: deleted,
or with ``cleanup=false`` kept, with nothing of the session left running in it. The shell
(:mod:`.shell`) answers *how* commands run in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from agent_runner.backends.base import SandboxInfo, ShellSpec
from agent_runner.backends.daytona.client import api_key, connect
from agent_runner.backends.daytona.inventory import our_sandboxes, prune
from agent_runner.backends.daytona.lifecycle import Lifecycle
from agent_runner.backends.daytona.remote import Remote
from agent_runner.backends.daytona.shell import SESSION_PREFIX, DaytonaShell, Options
from agent_runner.backends.daytona.workspace import pack, workspace_dir, workspace_mode
from agent_runner.backends.owner import Owner
from agent_runner.config import Settings
from agent_runner.errors import SandboxUnavailable, SessionClosed
from daytona import AsyncDaytona, AsyncSandbox

logger = logging.getLogger("agent_runner")


class DaytonaBackend:
    """Opens shells in Daytona sandboxes for one set of settings."""

    name = "daytona"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.daytona = settings.sandbox.daytona
        api_key(self.daytona)  # a missing key is the first thing to hear about
        self._owner = Owner.current()
        self._client: AsyncDaytona | None = None
        self._lifecycle: Lifecycle | None = None
        self._closed = False

    def lifecycle(self) -> Lifecycle:
        """The sandboxes' lifecycle on this backend's client (created on first use)."""
        if self._closed:
            raise SessionClosed("the Daytona backend is closed")
        if self._lifecycle is None:
            self._client = connect(self.daytona)
            self._lifecycle = Lifecycle(
                self._client, self.daytona, self._owner, cleanup=self.settings.cleanup
            )
        return self._lifecycle

    # -- shells -------------------------------------------------------------------------

    async def open_shell(self, spec: ShellSpec) -> DaytonaShell:
        lifecycle = self.lifecycle()
        mode = workspace_mode(self.settings)
        archive = await asyncio.to_thread(pack, workspace_dir(spec.cwd)) if mode == "copy" else None
        try:
            sandbox, reused = await self._sandbox(lifecycle, spec)
            try:
                return await self._open(lifecycle, sandbox, spec, archive, new=not reused)
            except SandboxUnavailable as error:
                if not reused:
                    raise
                logger.warning("replacing Daytona sandbox %s: %s", sandbox.id, error)
                lifecycle.delete_later(sandbox)
            replacement = await self._create(lifecycle, spec)
            return await self._open(lifecycle, replacement, spec, archive, new=True)
        finally:
            if archive is not None:
                with contextlib.suppress(OSError):
                    os.unlink(archive)

    async def _sandbox(self, lifecycle: Lifecycle, spec: ShellSpec) -> tuple[AsyncSandbox, bool]:
        """The session's sandbox from before (a restarted runner), revived, else a new one.

        A one-off command's session id is new by construction: no lookup for it.
        """
        if spec.persistent:
            for candidate in await lifecycle.find(spec.execution_id):
                if await lifecycle.revive(candidate):
                    await self._take_over(lifecycle, candidate, spec.execution_id)
                    return candidate, True
                lifecycle.delete_later(candidate)
        return await self._create(lifecycle, spec), False

    async def _take_over(
        self, lifecycle: Lifecycle, sandbox: AsyncSandbox, execution_id: str
    ) -> None:
        """Write this runner on it; if the runner before is gone, end what it left running
        (its sessions; a live runner's on another host are left alone)."""
        previous = Owner.from_labels(sandbox.labels or {})
        await lifecycle.adopt(sandbox, execution_id)
        if previous != self._owner and not previous.is_alive():
            ended = await Remote(sandbox, self.daytona).end_leftovers(SESSION_PREFIX)
            logger.info("reusing Daytona sandbox %s; ended %d session(s) left", sandbox.id, ended)

    async def _create(self, lifecycle: Lifecycle, spec: ShellSpec) -> AsyncSandbox:
        passed = {
            n: os.environ[n] for n in self.settings.sandbox.env_passthrough if n in os.environ
        }
        return await lifecycle.create(spec.execution_id, env_vars=passed or None)

    async def _open(
        self,
        lifecycle: Lifecycle,
        sandbox: AsyncSandbox,
        spec: ShellSpec,
        archive: str | None,
        *,
        new: bool,
    ) -> DaytonaShell:
        """The shell on ``sandbox``; a new sandbox whose shell cannot open is deleted."""

        async def wake() -> bool:
            return await lifecycle.revive(sandbox)

        options = Options(
            spec.env,
            spec.unset,
            spec.persistent,
            self.settings.max_output_bytes,
            wake,
            self._release,
        )
        try:
            return await DaytonaShell.open(Remote(sandbox, self.daytona), options, archive)
        except BaseException:
            if new:
                lifecycle.delete_later(sandbox)
            raise

    async def _release(self, shell: DaytonaShell) -> None:
        lifecycle = self._lifecycle
        assert lifecycle is not None
        if self.settings.cleanup:
            lifecycle.delete_later(shell.remote.sandbox)
        else:
            await shell.end_processes()

    async def warm(self, cwd: str | None) -> None:
        """No warm pool: a sandbox from a snapshot starts in a few seconds, and a pool of
        cloud sandboxes would be paid for while idle."""

    # -- inventory and removal ------------------------------------------------------------

    async def sandboxes(self) -> list[SandboxInfo]:
        lifecycle = self.lifecycle()
        return [info for _, info in await our_sandboxes(lifecycle.client, self.daytona)]

    async def prune(self, *, everything: bool = False) -> list[SandboxInfo]:
        return await prune(self.lifecycle(), everything=everything)

    async def close(self) -> None:
        """Wait for the deletions under way, then close the client."""
        self._closed = True
        if self._lifecycle is not None:
            await self._lifecycle.close()
        if self._client is not None:
            await self._client.close()  # type: ignore[no-untyped-call]  # the SDK leaves it bare
            self._client = None
