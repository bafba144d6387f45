"""``agent-runner sandbox ls|prune``: our sandboxes on a backend, and removing orphans."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import TypeVar

from agent_runner.backends.base import Backend, SandboxInfo
from agent_runner.backends.registry import sandbox_backend
from agent_runner.cli.common import Parser, Subcommands, emit, show_help
from agent_runner.cli.running import add_backend_option
from agent_runner.config import resolve

T = TypeVar("T")


def add_parsers(commands: Subcommands) -> None:
    sandbox = commands.add_parser("sandbox", help="list and remove sandboxes")
    sandbox.set_defaults(handler=lambda _args: show_help(sandbox))
    verbs = sandbox.add_subparsers(title="actions", metavar="ACTION", parser_class=Parser)
    listing = verbs.add_parser("ls", help="our sandboxes (labelled stigmer.sandbox)")
    add_backend_option(listing)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_ls)
    prune = verbs.add_parser("prune", help="remove sandboxes whose runner is gone")
    add_backend_option(prune)
    prune.add_argument("--all", action="store_true", help="remove every sandbox of ours")
    prune.set_defaults(handler=_prune)


def _backend(args: argparse.Namespace) -> Backend:
    settings = resolve(
        {"sandbox.backend": args.backend}, override_names={"sandbox.backend": "--backend"}
    ).settings
    return sandbox_backend(settings)


def _ls(args: argparse.Namespace) -> int:
    async def listing(backend: Backend) -> list[SandboxInfo]:
        return await backend.sandboxes()

    found = asyncio.run(_with(_backend(args), listing))
    if args.json:
        rows = [
            {
                "id": s.sandbox_id[:12],
                "name": s.name,
                "execution_id": s.execution_id,
                "state": s.state,
                "image": s.image,
                "created_at": s.created_at,
                "owner": str(s.owner),
                "orphaned": s.orphaned,
            }
            for s in found
        ]
        return emit(json.dumps(rows, indent=2))
    if not found:
        return emit("no sandboxes")
    print(f"{'ID':<13}{'EXECUTION':<20}{'STATE':<10}{'OWNER':<28}{'CREATED':<22}IMAGE")
    for s in found:
        owner = str(s.owner) + (" (gone)" if s.orphaned else "")
        print(
            f"{s.sandbox_id[:12]:<13}{s.execution_id:<20}{s.state:<10}{owner:<28}"
            f"{s.created_at:<22}{s.image}"
        )
    return 0


def _prune(args: argparse.Namespace) -> int:
    async def prune(backend: Backend) -> list[SandboxInfo]:
        return await backend.prune(everything=args.all)

    removed = asyncio.run(_with(_backend(args), prune))
    for s in removed:
        print(f"removed {s.sandbox_id[:12]} ({s.execution_id}, owner {s.owner})")
    return emit(f"{len(removed)} sandbox(es) removed")


async def _with(backend: Backend, action: Callable[[Backend], Awaitable[T]]) -> T:
    try:
        return await action(backend)
    finally:
        await backend.close()
