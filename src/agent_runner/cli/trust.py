"""``agent-runner trust``: list what AUTO's sandboxes wrote in a workspace, and accept it.

What a sandbox writes in a ``bind`` workspace is held back from the host (a local command
that would run it goes to the sandbox) until the user accepts it. The record is the
machine's (:mod:`agent_runner.auto.store`), so this works between ``agent-runner exec
--mode auto`` calls and beside a running Python session alike.
"""

from __future__ import annotations

import argparse
import json
import os

from agent_runner.cli.common import Subcommands, emit


def add_parsers(commands: Subcommands) -> None:
    trust = commands.add_parser(
        "trust",
        help="list what AUTO's sandbox wrote in the workspace, or accept it",
        description="Without PATH: list what sandboxes wrote in the workspace that the host "
        "does not run until accepted. With PATH (or --all): accept it, so local commands may "
        "run it again.",
    )
    trust.add_argument("--cwd", help="the workspace (default: the current directory)")
    trust.add_argument(
        "--all", action="store_true", help="accept everything the sandbox wrote in the workspace"
    )
    trust.add_argument("--json", action="store_true", help="print the list as JSON")
    trust.add_argument(
        "paths",
        nargs="*",
        metavar="PATH",
        help="what to accept (relative to the current directory; a directory accepts all under it)",
    )
    trust.set_defaults(handler=_trust)


def _trust(args: argparse.Namespace) -> int:
    from agent_runner.auto.quarantine import Quarantine

    workspace = os.path.abspath(args.cwd or os.getcwd())
    quarantine = Quarantine(workspace, tracked=False)
    if args.all or args.paths:
        paths = None if args.all else [os.path.abspath(path) for path in args.paths]
        accepted = quarantine.accept(paths)
        if args.json:
            return emit(json.dumps({"accepted": accepted}, indent=2))
        if not accepted:
            return emit("nothing to accept: the sandbox wrote nothing there that is held back")
        return emit("accepted: " + ", ".join(accepted))
    writes = quarantine.writes()
    if args.json:
        return emit(json.dumps([write.to_dict() for write in writes], indent=2))
    if not writes:
        return emit(f"nothing the sandbox wrote is held back in {workspace}")
    lines = [f"the sandbox wrote, and the host does not run until you accept ({workspace}):"]
    lines.extend(f"  {write}" for write in writes)
    lines.append("accept with: agent-runner trust PATH... (or --all)")
    return emit("\n".join(lines))
