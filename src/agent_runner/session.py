"""Session: one agent execution, its commands in order, on the shells of its modes.

A session owns at most one shell per mode (the host shell, the sandbox) for its lifetime
and runs its commands one at a time, so ``cd`` and ``export`` carry over. In AUTO mode each
command goes where the policy sends it, and what it changed is carried to the other shell,
except what the sandbox wrote that could run on the host (:mod:`agent_runner.auto`).
Closing the session, or leaving it idle past ``ttl``, releases both shells.

Custom requirements are read (and checked) here, before any sandbox starts, and travel to
the backend in :class:`ShellSpec`; the sandbox is opened on an image with them installed
and keeps that image for the session's life, so another file later is an error, not a
silent mix.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

from agent_runner.backends.base import (
    Backend,
    CommandRequest,
    DownloadsChanges,
    ProcessRequest,
    Shell,
    ShellSpec,
    ShellState,
)
from agent_runner.backends.executor import VOLATILE_VARIABLES, carry_over, may_change_state
from agent_runner.config import Settings
from agent_runner.errors import InvalidSetting, ModeUnavailable, SessionClosed
from agent_runner.inputs import checked_command, checked_env, checked_timeout
from agent_runner.modes import ExecutionMode
from agent_runner.output import OutputCollector
from agent_runner.process import Process, ProcessStatus
from agent_runner.process_state import StateSplitter, new_marker, wrap
from agent_runner.requirements import Requirements, for_command, keeps_one_image
from agent_runner.results import ExecutionResult, OutputCallback, OutputChunk, Stream
from agent_runner.shared_state import SharedState

if TYPE_CHECKING:
    from agent_runner.auto.quarantine import Quarantine
    from agent_runner.auto.written import SandboxWrite

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
        self._env = checked_env(env, "the session's env")
        self._unset = frozenset(unset)
        self._shared = (
            SharedState(os.path.abspath(self._cwd or os.getcwd()))
            if mode is ExecutionMode.AUTO
            else None
        )
        self._quarantine: Quarantine | None = None
        if self._shared is not None:
            from agent_runner.auto.quarantine import Quarantine

            tracked = self.settings.sandbox.workspace == "bind"
            self._quarantine = Quarantine(self._shared.host_workspace, tracked=tracked)
        self._persistent = persistent
        self._shells: dict[ExecutionMode, Shell] = {}
        self._processes: dict[str, Process] = {}
        self._lock = asyncio.Lock()
        self._opening = asyncio.Lock()
        self._sandbox_requirements: Requirements | None = None
        """What the sandbox was opened with: it keeps that image for the session's life."""
        self._closed_because: str | None = None
        self._closing: asyncio.Future[None] | None = None
        self.idle_since: float | None = time.monotonic()

    @property
    def settings(self) -> Settings:
        return self._host.settings

    @property
    def closed(self) -> bool:
        """It was closed (by :meth:`close`, its runner, or its ``ttl``)."""
        return self._closed_because is not None

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

        ``requirements`` (a pip requirements file) makes the sandbox start on an image with
        those packages installed, built on first use (sandbox and auto modes; in auto mode
        it sends the command to the sandbox). ``on_decision`` hears the chosen mode and
        AUTO's reason before the command starts.
        """
        command, env, timeout = checked_command(command), checked_env(env), checked_timeout(timeout)
        async with self._lock:
            if self._closed_because is not None:
                raise SessionClosed(
                    f"session {self.execution_id!r} is closed: {self._closed_because}"
                )
            self.idle_since = None
            try:
                mode, reason = self._choose_mode(command, requirements)
                wanted = for_command(requirements, mode, self.mode)
                if on_decision is not None:
                    on_decision(mode, reason)
                if wanted is not None:
                    await self._shell(mode, wanted)
                return await self._run(command, mode, reason, timeout, env, on_output)
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
        watching = self._quarantine if mode is ExecutionMode.SANDBOX else None
        snapshot = await watching.before() if watching is not None else None
        started = time.perf_counter()
        notes: list[str] = []
        try:
            outcome = await shell.run(request, output)
            await output.flush()
        finally:
            await output.close()
            if watching is not None:
                notes = await watching.after(snapshot, command)
        if self._shared is not None:
            notes = [*await self._share(mode, before, shell.state), *notes]
        if notes and reason is not None:
            reason = "; ".join([reason, *notes])
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
        assert self._quarantine is not None
        host_env = local.state.env if local is not None else {**os.environ, **self._env}
        decision = decide(
            command,
            requirements=requirements,
            cwd=start,
            workspace=self._shared.host_workspace,
            auto=self.settings.auto,
            sandbox_written=self._quarantine.policy_view(host_env.get("PATH")),
        )
        return decision.mode, decision.reason

    async def _share(self, mode: ExecutionMode, before: ShellState, after: ShellState) -> list[str]:
        """Carry what the command changed to the session's other shell (AUTO mode); return
        what did not cross, for the command's reason."""
        assert self._shared is not None
        carried = self._shared.record(mode, before, after)
        for other_mode, other in self._shells.items():
            if other_mode is not mode:
                await other.adjust(self._shared.cwd_for(other_mode), carried.changes)
        return carried.notes()

    async def _backend(self, mode: ExecutionMode) -> Backend:
        return await self._host.backend(mode, self.backend_name)

    async def _shell(self, mode: ExecutionMode, requirements: Requirements | None = None) -> Shell:
        async with self._opening:
            return await self._open_shell(mode, requirements)

    async def _open_shell(self, mode: ExecutionMode, requirements: Requirements | None) -> Shell:
        if mode in self._shells:
            if requirements is not None:
                keeps_one_image(self.execution_id, self._sandbox_requirements, requirements)
            return self._shells[mode]
        backend = await self._backend(mode)
        if requirements is not None and not getattr(backend, "supports_requirements", False):
            raise ModeUnavailable(
                f"the {backend.name} backend cannot install custom requirements "
                f"({requirements.path}) into its sandboxes: use the docker backend, or put "
                "the packages into the image it starts from"
            )
        spec = ShellSpec(
            self.execution_id,
            self.settings,
            self._cwd,
            self._env,
            self._unset,
            self._persistent,
            requirements,
        )
        shell = await backend.open_shell(spec)
        self._shells[mode] = shell
        if mode is ExecutionMode.SANDBOX:
            self._sandbox_requirements = requirements
        if self._shared is not None:
            await shell.adjust(self._shared.cwd_for(mode), self._shared.variables)
        return shell

    async def start(
        self,
        command: str,
        *,
        stdin: bool = False,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[OutputChunk], None] | None = None,
        keep_state: bool = False,
    ) -> Process:
        """Start ``command`` beside the session's commands and return at once.

        It starts where the session stands (cwd, exported variables, plus ``env``); what it
        changes stays its own. ``stdin=True`` lets :meth:`Process.write` feed it; otherwise
        its stdin is empty. ``timeout`` kills it after that many seconds (default: never).
        ``on_output`` hears each chunk as it comes (a plain function: a process's output is
        never held back for a listener). Closing the session, or leaving it untouched past
        ``ttl``, kills it. ``keep_state`` has it report where it left its shell, so that
        :meth:`adopt` can carry that over once it ended (:mod:`agent_runner.process_state`).
        """
        command, env, timeout = checked_command(command), checked_env(env), checked_timeout(timeout)
        if self._closed_because is not None:
            raise SessionClosed(f"session {self.execution_id!r} is closed: {self._closed_because}")
        mode, reason = self._choose_mode(command, None)
        shell = await self._shell(mode)
        if mode is ExecutionMode.SANDBOX and self._quarantine is not None:
            # It may write the workspace at any moment while it runs: until the user accepts
            # the sandbox's writes, nothing in the workspace counts as the user's.
            notes = self._quarantine.hold_workspace("a sandboxed process may write it any time")
            reason = "; ".join([reason or "", *notes]).strip("; ") or None
        reports = keep_state and may_change_state(command, {**shell.state.env, **env})
        marker = new_marker() if reports else None
        report = StateSplitter(marker) if marker is not None else None
        process = Process(
            command,
            mode=mode,
            backend=(await self._backend(mode)).name,
            reason=reason,
            buffer_limit=self.settings.max_output_bytes,
            on_output=on_output,
            touched=self._touch,
            report=report,
        )
        process.started_in = shell.state if report is not None else None
        text = wrap(command, marker) if marker is not None else command
        request = ProcessRequest(text, timeout, env, stdin)
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

    async def adopt(self, process: Process, env: Mapping[str, str] | None = None) -> bool:
        """Carry what ``process`` changed in its shell to the session, as :meth:`run` would
        have: its ``cd`` and its exports (``env``, the overlay it was started with, excepted).

        Only what the process itself changed is applied, on top of where the session stands
        now: a command that ran in the meantime keeps its own changes. Only a process started
        with ``keep_state`` that exited by itself has anything to carry; returns whether it did.
        """
        after, start = process.state, process.started_in
        shell = self._shells.get(process.mode)
        if after is None or start is None or shell is None:
            return False
        if process.status is not ProcessStatus.EXITED:
            return False
        before = shell.state
        merged = carry_over(start.env, env or {}, after.env)
        changes: dict[str, str | None] = {
            name: value
            for name, value in merged.items()
            if start.env.get(name) != value and name not in VOLATILE_VARIABLES
        }
        changes.update({name: None for name in start.env if name not in merged})
        await shell.adjust(after.cwd if after.cwd != start.cwd else None, changes)
        if self._shared is not None:
            await self._share(process.mode, before, shell.state)
        return True

    def discard(self, process_id: str) -> None:
        """Forget an ended process (its output with it); a running one stays."""
        process = self._processes.get(process_id)
        if process is not None and not process.running:
            del self._processes[process_id]

    def standing(self, mode: ExecutionMode) -> ShellState | None:
        """Where ``mode``'s shell stands (cwd, exported variables), if it is open."""
        shell = self._shells.get(mode)
        return shell.state if shell is not None else None

    def sandbox_id(self) -> str | None:
        """The session's sandbox, if it has one open."""
        shell = self._shells.get(ExecutionMode.SANDBOX)
        return shell.sandbox_id if shell is not None else None

    def _touch(self) -> None:
        """Someone used the session: its idle time starts again (unless a command runs)."""
        if self.idle_since is not None:
            self.idle_since = time.monotonic()

    async def open(
        self, mode: ExecutionMode | None = None, *, requirements: PathLike | None = None
    ) -> str:
        """Open the shell for ``mode`` (default: the session's) now; return its sandbox id.

        ``requirements``: as for :meth:`run` (the sandbox only).
        """
        mode = mode or self.mode
        if mode is ExecutionMode.AUTO:
            raise InvalidSetting("a session starts its local or its sandbox shell, not auto")
        if requirements is not None and mode is ExecutionMode.LOCAL:
            raise InvalidSetting(
                "custom requirements are installed into a sandbox image, not the host"
            )
        wanted = Requirements.read(requirements) if requirements is not None else None
        shell = await self._shell(mode, wanted)
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

    def sandbox_writes(self) -> list[SandboxWrite]:
        """What the sandbox wrote in the workspace that the host does not run until accepted
        (AUTO sessions; the record is the machine's, so other sessions' writes show too)."""
        return self._auto().writes()

    async def trust_sandbox_writes(self, paths: Iterable[PathLike] | None = None) -> list[str]:
        """Accept what the sandbox wrote at ``paths`` (relative to the workspace; a directory
        accepts all under it), or everything in the workspace: later local commands may run
        it. Returns what was accepted."""
        quarantine = self._auto()
        async with self._lock:
            return quarantine.accept(paths)

    def held_variables(self) -> dict[str, str]:
        """Variables the sandbox set that the host shell did not take, with the reason."""
        self._auto()
        assert self._shared is not None
        return {name: why for name, (_, why) in self._shared.held.items()}

    async def trust_sandbox_variables(self, names: Iterable[str] | None = None) -> list[str]:
        """Give the host shell the held variables ``names`` (None: all) after all."""
        self._auto()
        assert self._shared is not None
        async with self._lock:
            try:
                changes = self._shared.accept(None if names is None else list(names))
            except KeyError as error:
                raise InvalidSetting(f"not held back from the host: {error.args[0]}") from None
            local = self._shells.get(ExecutionMode.LOCAL)
            if local is not None:
                await local.adjust(None, changes)
        return sorted(changes)

    def _auto(self) -> Quarantine:
        if self._quarantine is None:
            raise InvalidSetting(
                f"session {self.execution_id!r} runs in {self.mode.value} mode: only AUTO "
                "sessions hold back what the sandbox wrote"
            )
        return self._quarantine

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
        """Release the session's shells (sandbox included) and what runs in them.

        Safe to call twice, and from two places at once: every caller waits for the one
        release, which runs to its end even if a caller is cancelled (a half-done release
        would leave a sandbox or a host process behind).
        """
        if self._closing is None:
            self._closed_because = reason
            self._closing = asyncio.ensure_future(self._release())
            self._host.forget(self)
        await asyncio.shield(self._closing)

    @property
    def releasing(self) -> asyncio.Future[None] | None:
        """The release under way (or done), once :meth:`close` began."""
        return self._closing

    async def _release(self) -> None:
        for process in self._processes.values():
            process.session_closed()  # closing the shells below is what kills them
        shells = list(self._shells.values())
        self._shells.clear()
        results = await asyncio.gather(*(shell.close() for shell in shells), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
