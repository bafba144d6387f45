"""The long-running pattern (Codex's ``exec_command``/``write_stdin``) on ``Session.start``.

``run_command`` starts the command as a process and waits up to ``yield_s`` for it:

- it **ended** in time: the reply has its exit code and output, and the session carries its
  ``cd`` and exports to the next command, as ``Session.run`` does (``Session.adopt``);
- it is **still running**: the reply has a ``process_id`` and the output so far; the process
  runs on, beside the session's later commands, and whatever it changes (``cd``, ``export``)
  stays its own. ``read_output`` pages and waits, ``write_stdin`` feeds it, ``kill_process``
  ends its tree.

Commands in one session start one after another: a second ``run_command`` waits until the
first one ended or yielded. A call that is cancelled (``notifications/cancelled``, or its
HTTP stream closed) kills the command it started, under a shielded scope: anyio re-raises
the cancellation at every unshielded await, so the cleanup would otherwise not get far.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

import anyio

from agent_runner.config import MAX_YIELD_SECONDS
from agent_runner.errors import InvalidSetting
from agent_runner.mcp_server.models import CommandOutput
from agent_runner.mcp_server.paging import Cursor, available, page
from agent_runner.mcp_server.progress import LatestLine, Send, reporting
from agent_runner.mcp_server.sessions import Sessions, Slot, Tracked
from agent_runner.mcp_server.stdin_guard import StdinGuard, reads_code
from agent_runner.modes import ExecutionMode
from agent_runner.policy import Decision, decide

QUIET_START = 0.05
"""Seconds a command runs before progress notifications start (few calls last that long)."""
KILL_WAIT = 30.0
"""How long a kill waits to see the process end before it reports it as it stands."""


def clamp_wait(seconds: float) -> float:
    return min(max(0.0, seconds), MAX_YIELD_SECONDS)


class Commands:
    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    async def run(
        self,
        command: str,
        *,
        session_id: str,
        mode: str | None,
        cwd: str | None,
        env: Mapping[str, str] | None,
        stdin: str | None,
        keep_stdin_open: bool,
        timeout_s: float | None,
        yield_s: float | None,
        max_output_bytes: int,
        send: Send | None,
    ) -> CommandOutput:
        slot = await self.sessions.get(session_id, mode)
        if timeout_s is not None and timeout_s <= 0:
            raise InvalidSetting("timeout_s must be more than 0")
        wait = clamp_wait(self.sessions.settings.mcp.default_yield if yield_s is None else yield_s)
        text = command if cwd is None else f"cd -- {shlex.quote(cwd)} || exit\n{command}"
        overlay = dict(env or {})
        latest = LatestLine()
        async with slot.lock:
            limit = self.sessions.settings.mcp.max_processes
            if slot.running() >= limit:
                raise InvalidSetting(
                    f"session {session_id!r} has {limit} processes running "
                    "(execution.mcp.max_processes); kill_process one first"
                )
            process = await slot.session.start(
                text,
                stdin=stdin is not None or keep_stdin_open,
                timeout=timeout_s if timeout_s is not None else self.sessions.settings.timeout,
                env=overlay,
                on_output=latest,
                keep_state=True,
            )
            tracked = Tracked(process, session_id, latest, overlay, self._guard(slot, command))
            slot.tracked[process.id] = tracked
            try:
                if stdin is not None:
                    await self._write(tracked, stdin, close=not keep_stdin_open)
                # Most commands end within moments: only a longer one needs progress.
                if await process.wait(min(wait, QUIET_START)) is None and wait > QUIET_START:
                    async with reporting(latest, send):
                        await process.wait(wait - QUIET_START)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await process.kill("KILL", grace=0)
                    await process.wait(KILL_WAIT)
                    slot.forget(process.id)
                raise
            await slot.session.adopt(process, overlay)
        return self._reply(slot, tracked, Cursor(), max_output_bytes)

    async def read(
        self,
        process_id: str,
        *,
        cursor: str | None,
        max_bytes: int,
        wait_s: float,
        send: Send | None,
    ) -> CommandOutput:
        slot, tracked = self.sessions.process(process_id)
        start = Cursor.parse(cursor) if cursor is not None else tracked.cursor
        await self._wait(tracked, start, clamp_wait(wait_s), max_bytes, send)
        return self._reply(slot, tracked, start, max_bytes)

    async def write(
        self,
        process_id: str,
        data: str,
        *,
        close_stdin: bool,
        wait_s: float,
        max_bytes: int,
        send: Send | None,
    ) -> CommandOutput:
        slot, tracked = self.sessions.process(process_id)
        start = tracked.cursor
        await self._write(tracked, data, close=close_stdin)
        await self._wait(tracked, start, clamp_wait(wait_s), max_bytes, send)
        return self._reply(slot, tracked, start, max_bytes)

    async def kill(
        self, process_id: str, *, signal: str, grace_s: float, max_bytes: int
    ) -> CommandOutput:
        slot, tracked = self.sessions.process(process_id)
        await tracked.process.kill(signal, grace_s)
        if signal.upper().removeprefix("SIG") in ("TERM", "KILL", "INT", "HUP", "QUIT"):
            await tracked.process.wait(grace_s + KILL_WAIT)
        return self._reply(slot, tracked, tracked.cursor, max_bytes)

    def _guard(self, slot: Slot, command: str) -> StdinGuard | None:
        """AUTO judges input to a host shell or REPL (:mod:`.stdin_guard`)."""
        if slot.session.mode is not ExecutionMode.AUTO:
            return None
        found = reads_code(command)
        if found is None:
            return None
        kind, program = found
        workspace = self.sessions.workspace
        settings = self.sessions.settings

        def judge(script: str) -> Decision:
            standing = slot.session.standing(ExecutionMode.LOCAL)
            cwd = standing.cwd if standing is not None else workspace
            return decide(script, cwd=cwd, workspace=workspace, auto=settings.auto)

        return StdinGuard(kind, program, judge)

    async def _write(self, tracked: Tracked, data: str, *, close: bool) -> None:
        """Pass ``data`` on (judged first, for a host shell in AUTO); empty data is a poll."""
        process = tracked.process
        if data and not process.stdin_open:
            state = "it has ended" if not process.running else "its stdin is closed"
            raise InvalidSetting(
                f"process {process.id} takes no input: {state} (keep_stdin_open=true on "
                "run_command leaves stdin open for write_stdin)"
            )
        guard = tracked.guard if process.mode is ExecutionMode.LOCAL else None
        if guard is not None:
            data = guard.admit(data, final=close)
        if data:
            await process.write(data)
        if close:
            await process.close_stdin()

    async def _wait(
        self, tracked: Tracked, start: Cursor, wait: float, budget: int, send: Send | None
    ) -> None:
        """Until the process ends, ``wait`` passes, or a page's worth of output is there."""
        process = tracked.process
        if wait <= 0 or not process.running:
            return
        latest = tracked.latest
        with anyio.move_on_after(wait):
            async with reporting(latest, send):
                while process.running and available(process, start) < budget:
                    with anyio.move_on_after(0.5):
                        await process.wait()

    def _reply(self, slot: Slot, tracked: Tracked, start: Cursor, budget: int) -> CommandOutput:
        process = tracked.process
        got = page(process, start, budget)
        tracked.cursor = got.next
        standing = slot.session.standing(process.mode)
        done = not process.running and not got.truncated
        if done:
            slot.forget(process.id)
        else:
            slot.prune()
        return CommandOutput(
            status=process.status.value,
            exit_code=process.exit_code,
            stdout=got.stdout,
            stderr=got.stderr,
            truncated=got.truncated,
            dropped=got.dropped,
            cursor=str(got.next),
            process_id=None if done else process.id,
            mode=process.mode.value,
            backend=process.backend,
            reason=process.reason,
            duration_s=round(process.duration_s, 4),
            cwd_after=standing.cwd if standing is not None else None,
        )
