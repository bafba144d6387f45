"""``agent-runner mcp``: the runner as an MCP server, on the official SDK (``mcp``).

Any MCP client (Claude Code, Cursor, Codex, a LangGraph agent) can use it as its shell,
long-running processes included. The package is named ``mcp_server`` so that ``import mcp``
always means the SDK; nothing imports it until ``agent-runner mcp`` runs, so the SDK is an
extra (``pip install 'stigmer-agent-runner[mcp]'``). Modules, one job each:

- :mod:`.server`: the lifespan that owns the Runner; stdio and streamable HTTP serving.
- :mod:`.tools`: the tools, their descriptions and annotations.
- :mod:`.models`: what they return.
- :mod:`.sessions`: client-named sessions and their processes.
- :mod:`.commands`: run_command's yield, read_output, write_stdin, kill_process.
- :mod:`.paging`: one budget and one cursor over stdout and stderr.
- :mod:`.progress`: the latest output line as progress notifications.
- :mod:`.stdin_guard`: AUTO mode judging input typed into host shells.
- :mod:`.files`: read_file, write_file, list_files through the session's shell.
- :mod:`.auth`: loopback binding and the bearer token of the HTTP transport.
"""

from agent_runner.mcp_server.server import build_server, serve_http, serve_stdio

__all__ = ["build_server", "serve_http", "serve_stdio"]
