"""Runner: the entry point that holds settings, backends and the open sessions.

One per process (or per set of settings). It opens sessions (:mod:`agent_runner.session`),
runs one-off commands in a session of their own, creates each backend once, on first use,
closes sessions left idle past ``ttl``, and on close releases every session and backend.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import Iterable, Mapping

from agent_runner.backends.base import Backend
from agent_runner.backends.registry import local_backend, sandbox_backend
from agent_runner.config import Settings, current_settings
from agent_runner.errors import AgentRunnerError, InvalidSetting, SessionClosed
from agent_runner.modes import ExecutionMode
from agent_runner.results import ExecutionResult, OutputCallback
from agent_runner.session import DecisionCallback, PathLike, Session

_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class Runner:
    """Entry point: one per process (or per set of settings)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else current_settings()
        self._backends: dict[str, Backend] = {}
        self._sessions: dict[str, Session] = {}
        self._releasing: set[Session] = set()
        """Sessions closing now: the runner's own close waits for them too."""
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def start(self) -> None:
        """Prepare for the configured mode: with a warm pool, start filling it now."""
        if self.settings.mode is not ExecutionMode.LOCAL and self.settings.sandbox.warm_pool_size:
            backend = await self.backend(ExecutionMode.SANDBOX)
            await backend.warm(os.getcwd())

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def session(
        self,
        execution_id: str | None = None,
        *,
        mode: ExecutionMode | str | None = None,
        backend: str | None = None,
        cwd: PathLike | None = None,
        env: Mapping[str, str] | None = None,
        unset: Iterable[str] = (),
    ) -> Session:
        """A new session; use it as ``async with`` so it is always closed.

        ``backend`` picks the sandbox backend (default: ``execution.sandbox.backend``).
        """
        if self._closed:
            raise SessionClosed("this runner is closed")
        execution_id = execution_id or f"exec-{uuid.uuid4().hex[:12]}"
        if not _EXECUTION_ID.fullmatch(execution_id):
            raise InvalidSetting(
                f"session id {execution_id!r}: use 1-64 letters, digits, '.', '_' or '-'"
            )
        if execution_id in self._sessions:
            raise AgentRunnerError(f"session {execution_id!r} is already open; close it first")
        session = Session(
            self,
            execution_id,
            _mode(mode, self.settings),
            cwd,
            env,
            unset,
            persistent=True,
            backend=backend,
        )
        self._sessions[execution_id] = session
        self._start_reaper()
        return session

    async def run(
        self,
        command: str,
        *,
        mode: ExecutionMode | str | None = None,
        backend: str | None = None,
        cwd: PathLike | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
        on_output: OutputCallback | None = None,
        requirements: PathLike | None = None,
        on_decision: DecisionCallback | None = None,
    ) -> ExecutionResult:
        """Run one command in a session of its own, closed right after."""
        session = Session(
            self,
            f"run-{uuid.uuid4().hex[:12]}",
            _mode(mode, self.settings),
            cwd,
            None,
            persistent=False,
            backend=backend,
        )
        try:
            return await session.run(
                command,
                env=env,
                timeout=timeout,
                on_output=on_output,
                requirements=requirements,
                on_decision=on_decision,
            )
        finally:
            await session.close()

    async def backend(self, mode: ExecutionMode, name: str | None = None) -> Backend:
        """The backend for ``mode``: the host, or the sandbox backend ``name`` (default: the
        configured one), created on first use."""
        key = "local" if mode is ExecutionMode.LOCAL else name or self.settings.sandbox.backend
        if key not in self._backends:
            if mode is ExecutionMode.LOCAL:
                self._backends[key] = local_backend(self.settings)
            else:
                self._backends[key] = sandbox_backend(self.settings, key)
        return self._backends[key]

    def forget(self, session: Session) -> None:
        """A session is closing: its id is free again; its release is waited for at close."""
        if self._sessions.get(session.execution_id) is session:
            del self._sessions[session.execution_id]
        releasing = session.releasing
        if releasing is not None and not releasing.done():
            self._releasing.add(session)
            releasing.add_done_callback(lambda _: self._releasing.discard(session))

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap_idle())

    async def _reap_idle(self) -> None:
        """Close sessions idle for longer than ``ttl`` (their sandboxes cost memory)."""
        ttl = self.settings.ttl
        while self._sessions:
            await asyncio.sleep(min(ttl / 4, 30.0))
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if session.idle_since is not None and now - session.idle_since > ttl:
                    await session.close(reason=f"it was idle for more than {ttl:g} s (ttl)")

    async def close(self) -> None:
        """Close every session and backend; safe to call twice."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        sessions = [*self._sessions.values(), *self._releasing]
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
        backends = list(self._backends.values())
        self._backends.clear()
        await asyncio.gather(*(backend.close() for backend in backends), return_exceptions=True)


def _mode(mode: ExecutionMode | str | None, settings: Settings) -> ExecutionMode:
    if mode is None:
        return settings.mode
    try:
        return ExecutionMode(mode)
    except ValueError:
        accepted = ", ".join(m.value for m in ExecutionMode)
        raise InvalidSetting(
            f"unknown execution mode {mode!r}: expected one of {accepted}"
        ) from None


async def execute_command(
    command: str,
    mode: ExecutionMode | str | None = None,
    *,
    backend: str | None = None,
    requirements: PathLike | None = None,
    cwd: PathLike | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    on_output: OutputCallback | None = None,
    settings: Settings | None = None,
) -> ExecutionResult:
    """Run one command with the configured (or given) settings; the simplest entry point."""
    async with Runner(settings) as runner:
        return await runner.run(
            command,
            mode=mode,
            backend=backend,
            cwd=cwd,
            env=env,
            timeout=timeout,
            on_output=on_output,
            requirements=requirements,
        )
