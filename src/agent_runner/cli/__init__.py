"""The ``agent-runner`` command.

Usage and environment errors are one line on stderr and exit status 2; ``exec`` otherwise
exits with the command's own status, so scripts can use it like ``bash -c``. Each group of
subcommands lives in a module of its own that adds its parsers here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from agent_runner import __version__
from agent_runner.cli import configuration, images, mcp, running, sandboxes, trust
from agent_runner.cli.common import USAGE_ERROR, Parser, show_help
from agent_runner.errors import AgentRunnerError

INTERRUPTED = 130


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(format="agent-runner: %(message)s", level=logging.WARNING)
    parser = _parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except AgentRunnerError as error:
        print(f"agent-runner: error: {error}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("agent-runner: interrupted", file=sys.stderr)
        return INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="agent-runner",
        description="Run an AI agent's shell commands on the host, in a sandbox, "
        "or decided per command.",
    )
    parser.add_argument("--version", action="version", version=f"agent-runner {__version__}")
    parser.set_defaults(handler=lambda _args: show_help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    running.add_parsers(commands)
    configuration.add_parsers(commands)
    sandboxes.add_parsers(commands)
    images.add_parsers(commands)
    trust.add_parsers(commands)
    mcp.add_parsers(commands)
    return parser
