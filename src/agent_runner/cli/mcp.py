"""``agent-runner mcp``: serve the runner to MCP clients (stdio by default, or HTTP).

The SDK is imported only here, when the command runs: without the extra the command is one
line telling how to install it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from agent_runner.cli.common import Subcommands
from agent_runner.cli.running import add_backend_option
from agent_runner.config import ExecutionMode, resolve
from agent_runner.errors import InvalidSetting

TOKEN_VARIABLE = "STIGMER_MCP_TOKEN"

REGISTER = """\
register it with a client (stdio; the client starts and stops it):
  Claude Code:  claude mcp add agent-runner -- agent-runner mcp
                claude mcp add agent-runner -- agent-runner mcp --mode sandbox
  Codex:        codex mcp add agent-runner -- agent-runner mcp
                (or in ~/.codex/config.toml:
                 [mcp_servers.agent-runner]
                 command = "agent-runner"
                 args = ["mcp"])
  Cursor:       .cursor/mcp.json (or ~/.cursor/mcp.json):
                {"mcpServers": {"agent-runner": {"command": "agent-runner", "args": ["mcp"]}}}

over HTTP (one server, many clients):
  agent-runner mcp --transport http --port 8765
  claude mcp add --transport http agent-runner http://127.0.0.1:8765/mcp
  binding beyond loopback needs a token, checked on every request:
  agent-runner mcp --transport http --host 0.0.0.0 --port 8765 --token-file ~/.stigmer/mcp-token
  claude mcp add --transport http agent-runner http://HOST:8765/mcp \\
      --header "Authorization: Bearer $(cat ~/.stigmer/mcp-token)"
  codex mcp add agent-runner --url http://HOST:8765/mcp --bearer-token-env-var STIGMER_MCP_TOKEN

Every process and sandbox the server started is gone when it stops (for stdio: when the
client disconnects). Settings: execution.mcp.* (agent-runner config list)."""

INSTALL_HINT = "agent-runner mcp needs the MCP SDK: pip install 'stigmer-agent-runner[mcp]'"


def add_parsers(commands: Subcommands) -> None:
    serve = commands.add_parser(
        "mcp",
        help="serve the runner as an MCP server (tools: run_command, read_output, ...)",
        description="Serve the runner to MCP clients (Claude Code, Cursor, Codex, ...):\n"
        "commands, long-running processes, files and AUTO's decisions as tools.",
        epilog=REGISTER,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default: the client starts the server) or streamable HTTP",
    )
    serve.add_argument("--host", default="127.0.0.1", help="HTTP: address to bind (loopback)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP: port (default 8765)")
    serve.add_argument(
        "--token", help=f"HTTP: bearer token every request must carry (or ${TOKEN_VARIABLE})"
    )
    serve.add_argument("--token-file", type=Path, help="HTTP: read the token from this file")
    serve.add_argument(
        "--mode",
        choices=[mode.value for mode in ExecutionMode],
        help="mode of sessions opened without one (default: execution.mcp.mode, then "
        "execution.mode)",
    )
    add_backend_option(serve)
    serve.add_argument(
        "--workspace",
        help="directory sessions start in and AUTO treats as the workspace (default: here)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    try:
        import mcp.server  # noqa: F401
    except ImportError:
        raise InvalidSetting(INSTALL_HINT) from None
    from agent_runner.mcp_server import build_server, serve_http, serve_stdio
    from agent_runner.mcp_server.auth import check_binding, load_token

    overrides = {"mcp.mode": args.mode, "sandbox.backend": args.backend}
    names = {"mcp.mode": "--mode", "sandbox.backend": "--backend"}
    settings = resolve(overrides, override_names=names).settings
    if args.workspace is not None and not os.path.isdir(args.workspace):
        raise InvalidSetting(f"--workspace {args.workspace}: not a directory")
    server = build_server(settings, args.workspace)
    if args.transport == "stdio":
        asyncio.run(serve_stdio(server))
        return 0
    given = args.token
    if given is None and args.token_file is None:
        given = os.environ.get(TOKEN_VARIABLE) or None
    token = load_token(given, args.token_file)
    check_binding(args.host, token)
    asyncio.run(serve_http(server, host=args.host, port=args.port, token=token))
    return 0
