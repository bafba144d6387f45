"""The MCP server: its lifespan owns the Runner, and the transports that serve it.

Stdio serves one client for the life of the process: when the client hangs up (stdin
closes) the lifespan ends and closes the Runner, which kills every process and removes every
sandbox it started. On SIGTERM/SIGINT/SIGHUP the Runner is closed the same way and the
process exits at once: the SDK reads stdin on a worker thread that no cancellation can
interrupt, so waiting for the lifespan would wait for the client's next message.

Streamable HTTP serves any number of clients (2026-07-28 requests carry no session at all),
so its sessions live until ``close_session``, their ``ttl``, or the server's stop, which
releases them all the same.
The Runner's close runs under a shielded cancel scope: the lifespan is left while its task
is being cancelled, and an unshielded await would re-raise at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

from agent_runner import __version__
from agent_runner.config import Settings
from agent_runner.mcp_server.auth import BearerToken, check_binding, rebinding_check
from agent_runner.mcp_server.commands import Commands
from agent_runner.mcp_server.files import Files
from agent_runner.mcp_server.sessions import Sessions, default_mode
from agent_runner.mcp_server.tools import App, register
from agent_runner.modes import ExecutionMode
from agent_runner.runner import Runner

INSTRUCTIONS = """\
A bash shell on this machine (mode local), in a sandbox (sandbox) or decided per command \
(auto). Commands in one session_id share cwd and exported variables. A command that \
outlives yield_s keeps running: poll it with read_output, feed it with write_stdin, stop it \
with kill_process. explain_command tells where auto would run a command."""


_LIVE: set[Runner] = set()
"""The Runners of the lifespans running in this process (what a signal must close)."""


def build_server(settings: Settings, workspace: str | None = None) -> MCPServer[App]:
    """The server, its tools registered; each client connection (stdio) or the HTTP server
    as a whole gets a Runner of its own for its lifespan."""
    root = os.path.abspath(workspace or os.getcwd())
    default_mode(settings)  # a default mode that is not allowed fails here, not per call

    @asynccontextmanager
    async def lifespan(_: MCPServer[App]) -> AsyncIterator[App]:
        runner = Runner(settings)
        sessions = Sessions(runner, settings, root)
        _LIVE.add(runner)
        try:
            if sessions.default_mode is not ExecutionMode.LOCAL and settings.sandbox.pool_size:
                backend = await runner.backend(ExecutionMode.SANDBOX)
                await backend.warm(root)  # execution.sandbox.pool_size: warm up for this workspace
            yield App(sessions, Commands(sessions), Files(sessions))
        finally:
            _LIVE.discard(runner)
            with anyio.CancelScope(shield=True):
                await runner.close()

    server: MCPServer[App] = MCPServer(
        "agent-runner",
        version=__version__,
        instructions=INSTRUCTIONS,
        lifespan=lifespan,
        log_level="WARNING",
    )
    register(server)
    return server


async def close_live_runners() -> None:
    with anyio.CancelScope(shield=True):
        await asyncio.gather(*(runner.close() for runner in list(_LIVE)), return_exceptions=True)


async def serve_stdio(server: MCPServer[Any]) -> None:
    """Until the client hangs up, or a signal comes (then everything is closed and the
    process exits with 128 + the signal's number)."""
    async with anyio.create_task_group() as group:

        async def on_signal() -> None:
            with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as got:
                async for signum in got:
                    await close_live_runners()
                    print(f"agent-runner mcp: stopped by signal {signum}", file=sys.stderr)
                    sys.stderr.flush()
                    os._exit(128 + signum)

        group.start_soon(on_signal)
        await server.run_stdio_async()
        group.cancel_scope.cancel()


async def serve_http(
    server: MCPServer[Any], *, host: str, port: int, token: str | None, path: str = "/mcp"
) -> None:
    """Streamable HTTP at ``http://host:port/mcp``; uvicorn stops on SIGTERM/SIGINT, and
    the app's shutdown ends the lifespan."""
    import uvicorn

    check_binding(host, token)
    app: Any = server.streamable_http_app(
        streamable_http_path=path, host=host, transport_security=rebinding_check(host)
    )
    if token is not None:
        app = BearerToken(app, token)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    web = uvicorn.Server(config)

    async def announce() -> None:
        while not web.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await anyio.sleep(0.05)
        bound = web.servers[0].sockets[0].getsockname()[1] if web.servers else port
        shown = f"[{host}]" if ":" in host else host
        print(
            f"agent-runner mcp: serving http://{shown}:{bound}{path}", file=sys.stderr, flush=True
        )

    async with anyio.create_task_group() as group:
        group.start_soon(announce)
        await web.serve()
        group.cancel_scope.cancel()
