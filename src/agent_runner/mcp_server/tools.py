"""The tools as a client lists them: names, short descriptions, arguments, honest annotations.

Each tool is a thin function over :mod:`.commands`, :mod:`.files` and :mod:`.sessions`; its
result is one pydantic model (``outputSchema`` and ``structuredContent``) plus the model's
short text, which is what most clients show the model. An :class:`AgentRunnerError` is a
tool error the model reads (``isError``), never a crash.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field

from agent_runner.config import MAX_YIELD_SECONDS
from agent_runner.errors import AgentRunnerError
from agent_runner.mcp_server import models
from agent_runner.mcp_server.commands import Commands
from agent_runner.mcp_server.files import Files
from agent_runner.mcp_server.progress import Send
from agent_runner.mcp_server.sessions import Sessions
from agent_runner.modes import ExecutionMode
from agent_runner.policy import decide
from agent_runner.process import SIGNALS

DEFAULT_PAGE = 32768
MAX_PAGE = 1024 * 1024


@dataclass
class App:
    """What the server's lifespan hands every call."""

    sessions: Sessions
    commands: Commands
    files: Files


def _app(ctx: Context) -> App:
    return cast(App, ctx.request_context.lifespan_context)


def _progress(ctx: Context) -> Send:
    """Progress notifications for this call (the SDK drops them when it has no token)."""

    async def send(progress: float, message: str) -> None:
        await ctx.report_progress(progress, None, message)

    return send


def _reply(model: models.Result) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=model.text())],
        structured_content=model.model_dump(mode="json"),
    )


async def _call(work: Awaitable[models.Result]) -> CallToolResult:
    try:
        return _reply(await work)
    except AgentRunnerError as error:
        raise ToolError(str(error)) from None


def _hints(
    *, read_only: bool, destructive: bool, idempotent: bool, open_world: bool
) -> ToolAnnotations:
    return ToolAnnotations(
        read_only_hint=read_only,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


READS = _hints(read_only=True, destructive=False, idempotent=True, open_world=False)

SessionId = Annotated[
    str, Field(description="Names the shell: cwd and exports carry over within it.")
]
Mode = Annotated[
    ExecutionMode | None,
    Field(description="local (host), sandbox, or auto (decided per command); when it opens."),
]
Budget = Annotated[
    int, Field(ge=16, le=MAX_PAGE, description="Bytes of stdout+stderr in this reply, at most.")
]
Wait = Annotated[
    float,
    Field(
        ge=0, description=f"Seconds to wait for output or the end (at most {MAX_YIELD_SECONDS:g})."
    ),
]
Signal = Annotated[str, Field(description=f"One of {', '.join(SIGNALS)}.")]

Cwd = Annotated[str | None, Field(description="Run there (the session moves there, as cd).")]
Env = Annotated[dict[str, str] | None, Field(description="Variables for this command only.")]
Stdin = Annotated[str | None, Field(description="Text for its stdin (else stdin is empty).")]
KeepStdin = Annotated[bool, Field(description="Leave stdin open for write_stdin after that.")]
Timeout = Annotated[float | None, Field(gt=0, description="Kill it after this many seconds.")]
Yield = Annotated[
    float | None,
    Field(
        ge=0,
        description="Seconds to wait before returning a process_id "
        f"(default execution.mcp.default_yield, 10; at most {MAX_YIELD_SECONDS:g}).",
    ),
]
CommandReply = Annotated[CallToolResult, models.CommandOutput]


def register(server: MCPServer[Any]) -> None:
    @server.tool(
        description="Run a bash command. Returns its output and exit code if it ends within "
        "yield_s; otherwise a process_id to poll (read_output), feed (write_stdin) or kill.",
        annotations=_hints(read_only=False, destructive=True, idempotent=False, open_world=True),
    )
    async def run_command(
        command: Annotated[str, Field(description="Bash code, exactly as bash -c takes it.")],
        ctx: Context,
        session_id: SessionId = "default",
        mode: Mode = None,
        cwd: Cwd = None,
        env: Env = None,
        stdin: Stdin = None,
        keep_stdin_open: KeepStdin = False,
        timeout_s: Timeout = None,
        yield_s: Yield = None,
        max_output_bytes: Budget = DEFAULT_PAGE,
    ) -> CommandReply:
        return await _call(
            _app(ctx).commands.run(
                command,
                session_id=session_id,
                mode=mode.value if mode is not None else None,
                cwd=cwd,
                env=env,
                stdin=stdin,
                keep_stdin_open=keep_stdin_open,
                timeout_s=timeout_s,
                yield_s=yield_s,
                max_output_bytes=max_output_bytes,
                send=_progress(ctx),
            )
        )

    @server.tool(
        description="Page a process's output from cursor (default: where the last reply "
        "ended), waiting up to wait_s for more; shows its status and exit code.",
        annotations=_hints(read_only=True, destructive=False, idempotent=False, open_world=False),
    )
    async def read_output(
        process_id: str,
        ctx: Context,
        cursor: Annotated[str | None, Field(description="A cursor from an earlier reply.")] = None,
        max_bytes: Budget = DEFAULT_PAGE,
        wait_s: Wait = 0,
    ) -> CommandReply:
        return await _call(
            _app(ctx).commands.read(
                process_id, cursor=cursor, max_bytes=max_bytes, wait_s=wait_s, send=_progress(ctx)
            )
        )

    @server.tool(
        description="Send text to a process's stdin (and optionally close it), then return "
        "the output that follows within wait_s. Empty data just polls.",
        annotations=_hints(read_only=False, destructive=True, idempotent=False, open_world=True),
    )
    async def write_stdin(
        process_id: str,
        data: str,
        ctx: Context,
        close_stdin: bool = False,
        wait_s: Wait = 1,
        max_bytes: Budget = DEFAULT_PAGE,
    ) -> CommandReply:
        return await _call(
            _app(ctx).commands.write(
                process_id,
                data,
                close_stdin=close_stdin,
                wait_s=wait_s,
                max_bytes=max_bytes,
                send=_progress(ctx),
            )
        )

    @server.tool(
        description="Signal a process's whole tree; unless the signal is KILL, KILL follows "
        "after grace_s if any of it is left.",
        annotations=_hints(read_only=False, destructive=True, idempotent=True, open_world=False),
    )
    async def kill_process(
        process_id: str,
        ctx: Context,
        signal: Signal = "TERM",
        grace_s: Annotated[float, Field(ge=0, le=60)] = 5,
        max_bytes: Budget = DEFAULT_PAGE,
    ) -> CommandReply:
        return await _call(
            _app(ctx).commands.kill(process_id, signal=signal, grace_s=grace_s, max_bytes=max_bytes)
        )

    @server.tool(
        description="The processes sessions started (one session, or all).", annotations=READS
    )
    async def list_processes(
        ctx: Context, session_id: str | None = None
    ) -> Annotated[CallToolResult, models.ProcessList]:
        async def work() -> models.ProcessList:
            found = []
            for slot in _app(ctx).sessions.slots(session_id):
                for tracked in slot.tracked.values():
                    p = tracked.process
                    found.append(
                        models.ProcessInfo(
                            process_id=p.id,
                            session_id=tracked.session_id,
                            command=p.command,
                            status=p.status.value,
                            exit_code=p.exit_code,
                            mode=p.mode.value,
                            backend=p.backend,
                            stdin_open=p.stdin_open,
                            duration_s=round(p.duration_s, 3),
                            stdout_bytes=p.total("stdout"),
                            stderr_bytes=p.total("stderr"),
                        )
                    )
            return models.ProcessList(processes=found)

        return await _call(work())

    @server.tool(
        description="Where AUTO mode would run a command, and why. Runs nothing.",
        annotations=READS,
    )
    async def explain_command(
        command: str, ctx: Context, session_id: SessionId = "default"
    ) -> Annotated[CallToolResult, models.Explanation]:
        async def work() -> models.Explanation:
            sessions = _app(ctx).sessions
            slot = sessions.find(session_id)
            standing = slot.session.standing(ExecutionMode.LOCAL) if slot is not None else None
            decision = decide(
                command,
                cwd=standing.cwd if standing is not None else sessions.workspace,
                workspace=sessions.workspace,
                auto=sessions.settings.auto,
            )
            return models.Explanation(
                mode=decision.mode.value,
                reason=decision.reason,
                rule=decision.rule,
                trigger=decision.trigger,
            )

        return await _call(work())

    _register_files(server)
    _register_sessions(server)


def _register_files(server: MCPServer[Any]) -> None:
    @server.tool(
        description="Read lines of a text file where the session runs (host or sandbox).",
        annotations=READS,
    )
    async def read_file(
        path: str,
        ctx: Context,
        session_id: SessionId = "default",
        offset_line: Annotated[int, Field(ge=1)] = 1,
        limit_lines: Annotated[int, Field(ge=1, le=100_000)] = 2000,
    ) -> Annotated[CallToolResult, models.FileContent]:
        return await _call(
            _app(ctx).files.read(
                path, session_id=session_id, offset_line=offset_line, limit_lines=limit_lines
            )
        )

    @server.tool(
        description="Write (or append) a text file where the session runs; creates parent "
        "directories.",
        annotations=_hints(read_only=False, destructive=True, idempotent=False, open_world=False),
    )
    async def write_file(
        path: str,
        content: str,
        ctx: Context,
        session_id: SessionId = "default",
        append: bool = False,
    ) -> Annotated[CallToolResult, models.FileWritten]:
        return await _call(
            _app(ctx).files.write(path, content, session_id=session_id, append=append)
        )

    @server.tool(
        description="List a directory tree where the session runs, sorted, up to depth.",
        annotations=READS,
    )
    async def list_files(
        ctx: Context,
        path: str = ".",
        session_id: SessionId = "default",
        depth: Annotated[int, Field(ge=1, le=20)] = 2,
        max_entries: Annotated[int, Field(ge=1, le=10_000)] = 500,
    ) -> Annotated[CallToolResult, models.FileList]:
        return await _call(
            _app(ctx).files.list(path, session_id=session_id, depth=depth, max_entries=max_entries)
        )


def _register_sessions(server: MCPServer[Any]) -> None:
    @server.tool(
        description="A session's mode, where it stands (host and/or sandbox) and its "
        "running processes.",
        annotations=READS,
    )
    async def session_info(
        ctx: Context, session_id: SessionId = "default"
    ) -> Annotated[CallToolResult, models.SessionInfo]:
        async def work() -> models.SessionInfo:
            sessions = _app(ctx).sessions
            slot = sessions.find(session_id)
            limit = sessions.settings.mcp.max_processes
            if slot is None:
                return models.SessionInfo(
                    session_id=session_id,
                    open=False,
                    mode=sessions.default_mode.value,
                    max_processes=limit,
                )
            session = slot.session
            places = []
            for mode in (ExecutionMode.LOCAL, ExecutionMode.SANDBOX):
                standing = session.standing(mode)
                if standing is not None:
                    sandbox = session.sandbox_id() if mode is ExecutionMode.SANDBOX else None
                    places.append(
                        models.PlaceInfo(mode=mode.value, cwd=standing.cwd, sandbox_id=sandbox)
                    )
            return models.SessionInfo(
                session_id=session_id,
                open=True,
                mode=session.mode.value,
                places=places,
                running_processes=slot.running(),
                max_processes=limit,
            )

        return await _call(work())

    @server.tool(
        description="Close a session: kill its processes and remove its sandbox.",
        annotations=_hints(read_only=False, destructive=True, idempotent=True, open_world=False),
    )
    async def close_session(
        ctx: Context, session_id: SessionId = "default"
    ) -> Annotated[CallToolResult, models.SessionClosedResult]:
        async def work() -> models.SessionClosedResult:
            closed, killed = await _app(ctx).sessions.close(session_id)
            return models.SessionClosedResult(
                session_id=session_id, closed=closed, processes_killed=killed
            )

        return await _call(work())
