"""Runner and Session: which mode runs a command, on which shell, and what comes back.

A :class:`Runner` holds settings and the backends; a :class:`Session` is one agent
execution, owning at most one shell per mode (the host shell, the sandbox) for its lifetime
and running its commands one at a time, so ``cd`` and ``export`` carry over. Closing the
session, or leaving it idle past ``ttl``, releases both shells.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

from agent_runner.backends.base import Backend, CommandRequest, Shell, ShellSpec, ShellState
from agent_runner.backends.registry import local_backend, sandbox_backend
from agent_runner.config import ExecutionMode, Settings, current_settings
from agent_runner.errors import AgentRunnerError, InvalidSetting, ModeUnavailable, SessionClosed
from agent_runner.output import OutputCollector
from agent_runner.results import ExecutionResult, OutputCallback, OutputChunk, Stream
from agent_runner.shared_state import SharedState

PathLike = str | os.PathLike[str]
_EXECUTION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
DecisionCallback = Callable[[ExecutionMode, str | None], None]


class Runner:
    """Entry point: one per process (or per set of settings)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings if settings is not None else current_settings()
        self._backends: dict[ExecutionMode, Backend] = {}
        self._sessions: dict[str, Session] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    async def __aenter__(self) -> Runner:
        await self.start()
        return self

    async def start(self) -> None:
        """Prepare for the configured mode: with a warm pool, start filling it now."""
        if self.settings.mode is not ExecutionMode.LOCAL and self.settings.sandbox.pool_size:
            backend = await self.backend(ExecutionMode.SANDBOX)
            await backend.warm(os.getcwd())

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def session(
        self,
        execution_id: str | None = None,
        *,
        mode: ExecutionMode | str | None = None,
        cwd: PathLike | None = None,
        env: Mapping[str, str] | None = None,
        unset: Iterable[str] = (),
    ) -> Session:
        """A new session; use it as ``async with`` so it is always closed."""
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
            self, execution_id, _mode(mode, self.settings), cwd, env, unset, persistent=True
        )
        self._sessions[execution_id] = session
        self._start_reaper()
        return session

    async def run(
        self,
        command: str,
        *,
        mode: ExecutionMode | str | None = None,
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

    async def backend(self, mode: ExecutionMode) -> Backend:
        if mode not in self._backends:
            factory = local_backend if mode is ExecutionMode.LOCAL else sandbox_backend
            self._backends[mode] = factory(self.settings)
        return self._backends[mode]

    def _forget(self, session: Session) -> None:
        if self._sessions.get(session.execution_id) is session:
            del self._sessions[session.execution_id]

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
        sessions = list(self._sessions.values())
        await asyncio.gather(*(session.close() for session in sessions), return_exceptions=True)
        backends = list(self._backends.values())
        self._backends.clear()
        await asyncio.gather(*(backend.close() for backend in backends), return_exceptions=True)


class Session:
    """One agent execution: its commands run in order and share cwd and exported variables."""

    def __init__(
        self,
        runner: Runner,
        execution_id: str,
        mode: ExecutionMode,
        cwd: PathLike | None,
        env: Mapping[str, str] | None,
        unset: Iterable[str] = (),
        *,
        persistent: bool,
    ) -> None:
        self.runner = runner
        self.execution_id = execution_id
        self.mode = mode
        self._cwd = os.fspath(cwd) if cwd is not None else None
        self._env = dict(env or {})
        self._unset = frozenset(unset)
        self._shared = (
            SharedState(os.path.abspath(self._cwd or os.getcwd()))
            if mode is ExecutionMode.AUTO
            else None
        )
        self._persistent = persistent
        self._shells: dict[ExecutionMode, Shell] = {}
        self._lock = asyncio.Lock()
        self._closed_because: str | None = None
        self.idle_since: float | None = time.monotonic()

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def run(
        self,
        command: str,
        *,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_output: OutputCallback | None = None,
        requirements: PathLike | None = None,
        on_decision: DecisionCallback | None = None,
    ) -> ExecutionResult:
        """Run ``command`` after the session's previous commands have finished.

        ``on_decision`` hears the chosen mode and AUTO's reason before the command starts.
        """
        async with self._lock:
            if self._closed_because is not None:
                raise SessionClosed(
                    f"session {self.execution_id!r} is closed: {self._closed_because}"
                )
            self.idle_since = None
            try:
                mode, reason = self._choose_mode(command, requirements)
                if mode is ExecutionMode.SANDBOX:
                    reject_requirements(requirements)
                if on_decision is not None:
                    on_decision(mode, reason)
                return await self._run(command, mode, reason, timeout, env or {}, on_output)
            finally:
                self.idle_since = time.monotonic()

    async def _run(
        self,
        command: str,
        mode: ExecutionMode,
        reason: str | None,
        timeout: float | None,
        env: Mapping[str, str],
        on_output: OutputCallback | None,
    ) -> ExecutionResult:
        shell = await self._shell(mode)
        before = shell.state
        settings = self.runner.settings
        output = OutputCollector(settings.max_output_bytes, on_output)
        request = CommandRequest(command, timeout if timeout is not None else settings.timeout, env)
        started = time.perf_counter()
        try:
            outcome = await shell.run(request, output)
            await output.flush()
        finally:
            await output.close()
        if self._shared is not None:
            await self._share(mode, before, shell.state)
        return ExecutionResult(
            command=command,
            exit_code=outcome.exit_code,
            stdout=output.text(Stream.STDOUT),
            stderr=output.text(Stream.STDERR),
            duration_s=time.perf_counter() - started,
            mode=mode,
            backend=(await self.runner.backend(mode)).name,
            reason=reason,
            timed_out=outcome.timed_out,
            truncated=output.truncated,
            oom_killed=outcome.oom_killed,
            sandbox_id=shell.sandbox_id,
        )

    def _choose_mode(
        self, command: str, requirements: PathLike | None
    ) -> tuple[ExecutionMode, str | None]:
        if self.mode is not ExecutionMode.AUTO:
            return self.mode, None
        from agent_runner.policy import decide

        assert self._shared is not None
        local = self._shells.get(ExecutionMode.LOCAL)
        start = (
            local.state.cwd
            if local is not None
            else self._shared.cwd_for(ExecutionMode.LOCAL) or self._shared.host_workspace
        )
        decision = decide(
            command,
            requirements=requirements,
            cwd=start,
            workspace=self._shared.host_workspace,
            auto=self.runner.settings.auto,
        )
        return decision.mode, decision.reason

    async def _share(self, mode: ExecutionMode, before: ShellState, after: ShellState) -> None:
        """Carry what the command changed to the session's other shell (AUTO mode)."""
        assert self._shared is not None
        changes = self._shared.record(mode, before, after)
        for other_mode, other in self._shells.items():
            if other_mode is not mode:
                await other.adjust(self._shared.cwd_for(other_mode), changes)

    async def _shell(self, mode: ExecutionMode) -> Shell:
        if mode not in self._shells:
            backend = await self.runner.backend(mode)
            spec = ShellSpec(
                self.execution_id,
                self.runner.settings,
                self._cwd,
                self._env,
                self._unset,
                self._persistent,
            )
            shell = await backend.open_shell(spec)
            self._shells[mode] = shell
            if self._shared is not None:
                await shell.adjust(self._shared.cwd_for(mode), self._shared.variables)
        return self._shells[mode]

    async def start(self, mode: ExecutionMode | None = None) -> str:
        """Open the shell for ``mode`` (default: the session's) now; return its sandbox id."""
        mode = mode or self.mode
        if mode is ExecutionMode.AUTO:
            raise InvalidSetting("a session starts its local or its sandbox shell, not auto")
        shell = await self._shell(mode)
        return shell.sandbox_id or ""

    def state(self) -> ShellState | None:
        """Where the host shell stands (for resuming the session later), if it ran anything."""
        shell = self._shells.get(ExecutionMode.LOCAL)
        return shell.state if shell is not None else None

    async def stream(
        self, command: str, **options: Any
    ) -> AsyncIterator[OutputChunk | ExecutionResult]:
        """Yield output chunks as they come, then the :class:`ExecutionResult` last.

        Leaving the loop early cancels the command (and kills it).
        """
        queue: asyncio.Queue[OutputChunk] = asyncio.Queue(maxsize=64)
        task = asyncio.ensure_future(self.run(command, on_output=queue.put, **options))
        getter: asyncio.Future[OutputChunk] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    break
                yield getter.result()
            while not queue.empty():
                yield queue.get_nowait()
            yield task.result()
        finally:
            for pending in (getter, task):
                if pending is not None and not pending.done():
                    pending.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self, *, reason: str = "it was closed") -> None:
        """Release the session's shells (sandbox included); safe to call twice."""
        if self._closed_because is not None:
            return
        self._closed_because = reason
        self.runner._forget(self)
        shells = list(self._shells.values())
        self._shells.clear()
        results = await asyncio.gather(*(shell.close() for shell in shells), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


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
            cwd=cwd,
            env=env,
            timeout=timeout,
            on_output=on_output,
            requirements=requirements,
        )


def reject_requirements(requirements: PathLike | None) -> None:
    """Custom requirements need an image layered with them, which is not built yet; running
    without them would hide that, so it is an error."""
    if requirements is None:
        return
    path = os.fspath(requirements)
    if not os.path.isfile(path):
        raise InvalidSetting(f"requirements file {path} does not exist")
    raise ModeUnavailable(
        f"sandboxes with custom requirements ({path}) are not supported yet: build an image "
        "FROM the sandbox image that installs them and set execution.sandbox_image to it"
    )
