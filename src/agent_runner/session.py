"""Session: one agent execution, its commands in order, on the shells of its modes.

A session owns at most one shell per mode (the host shell, the sandbox) for its lifetime
and runs its commands one at a time, so ``cd`` and ``export`` carry over. In AUTO mode each
command goes where the policy sends it, and what it changed is carried to the other shell.
Closing the session, or leaving it idle past ``ttl``, releases both shells.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Protocol

from agent_runner.backends.base import (
    Backend,
    CommandRequest,
    DownloadsChanges,
    ProcessRequest,
    Shell,
    ShellSpec,
    ShellState,
)
from agent_runner.config import Settings
from agent_runner.errors import InvalidSetting, ModeUnavailable, SessionClosed
from agent_runner.modes import ExecutionMode
from agent_runner.output import OutputCollector
from agent_runner.process import Process
from agent_runner.results import ExecutionResult, OutputCallback, OutputChunk, Stream
from agent_runner.shared_state import SharedState

PathLike = str | os.PathLike[str]
DecisionCallback = Callable[[ExecutionMode, str | None], None]


class SessionHost(Protocol):
    """What a session needs from the runner that opened it."""

    settings: Settings

    async def backend(self, mode: ExecutionMode, name: str | None = None) -> Backend: ...

    def forget(self, session: Session) -> None: ...


class Session:
    """One agent execution: its commands run in order and share cwd and exported variables."""

    def __init__(
        self,
        host: SessionHost,
        execution_id: str,
        mode: ExecutionMode,
        cwd: PathLike | None,
        env: Mapping[str, str] | None,
        unset: Iterable[str] = (),
        *,
        persistent: bool,
        backend: str | None = None,
    ) -> None:
        self._host = host
        self.execution_id = execution_id
        self.mode = mode
        self.backend_name = backend
        """The sandbox backend for this session (default: ``execution.sandbox.backend``)."""
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
        self._processes: dict[str, Process] = {}
        self._lock = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._closed_because: str | None = None
        self.idle_since: float | None = time.monotonic()

    @property
    def settings(self) -> Settings:
        return self._host.settings

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
        settings = self.settings
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
            backend=(await self._backend(mode)).name,
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
            auto=self.settings.auto,
        )
        return decision.mode, decision.reason

    async def _share(self, mode: ExecutionMode, before: ShellState, after: ShellState) -> None:
        """Carry what the command changed to the session's other shell (AUTO mode)."""
        assert self._shared is not None
        changes = self._shared.record(mode, before, after)
        for other_mode, other in self._shells.items():
            if other_mode is not mode:
                await other.adjust(self._shared.cwd_for(other_mode), changes)

    async def _backend(self, mode: ExecutionMode) -> Backend:
        return await self._host.backend(mode, self.backend_name)

    async def _shell(self, mode: ExecutionMode) -> Shell:
        async with self._opening:
            return await self._open_shell(mode)

    async def _open_shell(self, mode: ExecutionMode) -> Shell:
        if mode not in self._shells:
            backend = await self._backend(mode)
            spec = ShellSpec(
                self.execution_id,
                self.settings,
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

    async def start(
        self,
        command: str,
        *,
        stdin: bool = False,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[OutputChunk], None] | None = None,
    ) -> Process:
        """Start ``command`` beside the session's commands and return at once.

        It starts where the session stands (cwd, exported variables, plus ``env``); what it
        changes stays its own. ``stdin=True`` lets :meth:`Process.write` feed it; otherwise
        its stdin is empty. ``timeout`` kills it after that many seconds (default: never).
        ``on_output`` hears each chunk as it comes (a plain function: a process's output is
        never held back for a listener). Closing the session, or leaving it untouched past
        ``ttl``, kills it.
        """
        if self._closed_because is not None:
            raise SessionClosed(f"session {self.execution_id!r} is closed: {self._closed_because}")
        mode, reason = self._choose_mode(command, None)
        shell = await self._shell(mode)
        process = Process(
            command,
            mode=mode,
            backend=(await self._backend(mode)).name,
            reason=reason,
            buffer_limit=self.settings.max_output_bytes,
            on_output=on_output,
            touched=self._touch,
        )
        request = ProcessRequest(command, timeout, dict(env or {}), stdin)
        process.attach(await shell.start(request, process), stdin=stdin)
        self._processes[process.id] = process
        self._touch()
        return process

    def processes(self) -> list[Process]:
        """The processes started in this session, oldest first (ended ones included)."""
        return list(self._processes.values())

    def process(self, process_id: str) -> Process:
        try:
            return self._processes[process_id]
        except KeyError:
            raise InvalidSetting(
                f"no process {process_id!r} in session {self.execution_id!r}"
            ) from None

    def _touch(self) -> None:
        """Someone used the session: its idle time starts again (unless a command runs)."""
        if self.idle_since is not None:
            self.idle_since = time.monotonic()

    async def open(self, mode: ExecutionMode | None = None) -> str:
        """Open the shell for ``mode`` (default: the session's) now; return its sandbox id."""
        mode = mode or self.mode
        if mode is ExecutionMode.AUTO:
            raise InvalidSetting("a session starts its local or its sandbox shell, not auto")
        shell = await self._shell(mode)
        return shell.sandbox_id or ""

    async def download(self, target: PathLike | None = None) -> list[str]:
        """Copy the files that commands changed in the sandbox's copy of the workspace back
        into ``target`` (default: the session's directory); return their relative paths.

        For backends that copy the workspace in (Daytona's ``copy``); new and modified files
        come back, deleted ones are not deleted. Nothing ran in a sandbox yet: nothing to do.
        """
        async with self._lock:
            shell = self._shells.get(ExecutionMode.SANDBOX)
            if shell is None:
                return []
            if not isinstance(shell, DownloadsChanges):
                backend = (await self._backend(ExecutionMode.SANDBOX)).name
                raise ModeUnavailable(f"the {backend} backend cannot download changed files")
            return await shell.download(os.fspath(target or self._cwd or os.getcwd()))

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
        self._host.forget(self)
        for process in self._processes.values():
            process.session_closed()  # closing the shells below is what kills them
        shells = list(self._shells.values())
        self._shells.clear()
        results = await asyncio.gather(*(shell.close() for shell in shells), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result


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
