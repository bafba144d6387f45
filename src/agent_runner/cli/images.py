"""``agent-runner image ensure|pull|build|ls|prune|check``: sandbox images on the engine.

Images are a Docker engine concept: these commands work on the engine the docker backend
uses (``DOCKER_HOST``); other backends start from images or snapshots of their own.
What is done and why goes to stderr as it happens (:mod:`.progress`); the result, one
line or a table, goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from agent_runner.backends.docker import DockerBackend
from agent_runner.cli.common import Parser, Subcommands, emit, show_help
from agent_runner.cli.progress import progress_view
from agent_runner.config import SANDBOX_BACKENDS, resolve
from agent_runner.errors import InvalidSetting
from agent_runner.images import TIERS, Checklist, ImageInfo
from agent_runner.images.client import megabytes, short_id
from agent_runner.requirements import Requirements

T = TypeVar("T")
CHECK_FAILED = 1
MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "skip": "skip"}


def add_parsers(commands: Subcommands) -> None:
    image = commands.add_parser(
        "image",
        help="sandbox images on the Docker engine: ensure, pull, build, ls, prune, check",
        description="Sandbox images on the Docker engine (DOCKER_HOST). Images are a Docker "
        "engine concept: other sandbox backends start from images or snapshots of their own.",
    )
    image.set_defaults(handler=lambda _args: show_help(image))
    verbs = image.add_subparsers(title="actions", metavar="ACTION", parser_class=Parser)

    ensure = verbs.add_parser(
        "ensure",
        help="make the image a sandbox would use present (local, else pulled, else built)",
    )
    ensure.add_argument(
        "--refresh",
        action="store_true",
        help="pull even when present, and now even if a pull failed within the last hour",
    )
    _common(ensure, _ensure)

    pull = verbs.add_parser("pull", help="pull an image now (default: execution.sandbox_image)")
    pull.add_argument("image", nargs="?", help="default: execution.sandbox_image")
    _common(pull, _pull)

    build = verbs.add_parser(
        "build", help="build a tier here, or the image for a requirements file"
    )
    build.add_argument("--tier", choices=TIERS, help="build this tier (default: basic)")
    build.add_argument(
        "--requirements",
        metavar="FILE",
        help="build the sandbox image with FILE installed (on --tier if given, else on the "
        "image `ensure` gives), as `exec --requirements FILE` would",
    )
    _common(build, _build)

    listing = verbs.add_parser("ls", help="our images: tiers and the layers built on them")
    listing.add_argument("--json", action="store_true")
    _common(listing, _ls)

    prune = verbs.add_parser(
        "prune", help="remove layer images nothing needs any more (never the configured image)"
    )
    prune.add_argument("--all", action="store_true", help="every layer no container uses")
    prune.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    _common(prune, _prune)

    check = verbs.add_parser(
        "check",
        help="check IMAGE against the sandbox image contract (exit 1 if it fails)",
        description="Start IMAGE as a sandbox would be started and check the image contract "
        "(docs/sandbox/README.md): bash, a non-root uid that can write /workspace, sleep, "
        "python3 >= 3.8 for the fast path; with a tier, every tool of that tier.",
    )
    check.add_argument("image")
    check.add_argument(
        "--tier", choices=TIERS, help="also check the tier's tools (default: the image's label)"
    )
    check.add_argument("--json", action="store_true")
    _common(check, _check)


def _common(parser: argparse.ArgumentParser, handler: Callable[[argparse.Namespace], int]) -> None:
    parser.add_argument(
        "--backend",
        choices=SANDBOX_BACKENDS,
        help="only docker: images live on a Docker engine (other backends use their own)",
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress, only the result")
    parser.set_defaults(handler=handler)


def _run(
    args: argparse.Namespace, action: Callable[[DockerBackend], Awaitable[T]], *, steps: bool = True
) -> T:
    if (args.backend or "docker") != "docker":
        raise InvalidSetting(
            f"--backend {args.backend}: agent-runner image works on Docker engine images; "
            f"the {args.backend} backend starts from its own"
        )
    settings = resolve().settings

    async def run() -> T:
        backend = DockerBackend(settings)
        try:
            return await action(backend)
        finally:
            await backend.close()

    with progress_view(quiet=args.quiet, steps=steps):
        return asyncio.run(run())


def _ensure(args: argparse.Namespace) -> int:
    async def ensure(backend: DockerBackend) -> Any:
        return await backend.images.resolve(refresh=args.refresh)

    found = _run(args, ensure)
    return emit(f"{found.image} ({short_id(found.image_id)}): {found.why}")


def _pull(args: argparse.Namespace) -> int:
    async def pull(backend: DockerBackend) -> Any:
        return await backend.images.pull(args.image or backend.settings.sandbox_image)

    found = _run(args, pull)
    return emit(f"{found.image} ({short_id(found.image_id)}): pulled")


def _build(args: argparse.Namespace) -> int:
    requirements = Requirements.read(args.requirements) if args.requirements else None

    async def build(backend: DockerBackend) -> str:
        if requirements is None:
            return await backend.images.build_tier(args.tier or "basic")
        base = await backend.images.build_tier(args.tier) if args.tier else None
        layer = await backend.images.layer(requirements, base=base)
        reused = "built" if layer.built else "already present (same inputs), reused"
        return f"{layer.image} ({short_id(layer.image_id)}): {reused}"

    return emit(_run(args, build))


def _ls(args: argparse.Namespace) -> int:
    async def listing(backend: DockerBackend) -> list[ImageInfo]:
        return await backend.images.inventory()

    found = _run(args, listing, steps=False)
    if args.json:
        return emit(json.dumps([_row(image) for image in found], indent=2))
    if not found:
        return emit("no sandbox images of ours (agent-runner image ensure makes one)")
    sizes = {image.image_id: image.size for image in found}
    print(f"{'KIND':<7}{'IMAGE':<50}{'ID':<14}{'SIZE':>9}  {'CREATED':<18}NOTES")
    for image in found:
        layer = image.kind == "layer"
        placed = layer and image.base in sizes
        name = ("└ " if placed else "") + image.name
        size = megabytes(image.size)
        if placed and image.base is not None:
            size = f"+{(image.size - sizes[image.base]) / 1e6:.1f} MB"
        print(
            f"{image.kind:<7}{name:<50}{short_id(image.image_id):<14}{size:>9}  "
            f"{_when(image.created):<18}{'; '.join(_notes(image, placed))}"
        )
    return 0


def _notes(image: ImageInfo, placed: bool) -> list[str]:
    notes = []
    if image.configured:
        notes.append("execution.sandbox_image")
    if image.requirements:
        notes.append(f"from {image.requirements}")
    if image.kind == "layer" and not placed:
        base = f"{image.base_reference} ({short_id(image.base or '?')})"
        notes.append(f"on {base}" if image.base_present else f"its base {base} is gone")
    if image.stale:
        notes.append(f"stale: {image.stale}")
    if image.used_by:
        notes.append(f"used by {len(image.used_by)} container(s)")
    return notes


def _row(image: ImageInfo) -> dict[str, Any]:
    return {
        "id": image.image_id,
        "tags": list(image.tags),
        "kind": image.kind,
        "size": image.size,
        "created": _when(image.created),
        "base": image.base,
        "requirements": image.requirements,
        "stale": image.stale,
        "used_by": list(image.used_by),
        "configured": image.configured,
    }


def _when(created: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else "?"


def _prune(args: argparse.Namespace) -> int:
    async def prune(backend: DockerBackend) -> Any:
        return await backend.images.prune(everything=args.all, dry_run=args.dry_run)

    outcome = _run(args, prune, steps=False)
    for entry in outcome:
        if entry.removed:
            verb = "would remove" if args.dry_run else "removed"
            print(f"{verb} {entry.image.name} ({entry.why})")
        else:
            print(f"kept {entry.image.name} ({entry.why.removeprefix('kept: ')})")
    gone = sum(1 for entry in outcome if entry.removed)
    return emit(f"{gone} layer image(s) {'would be ' if args.dry_run else ''}removed")


def _check(args: argparse.Namespace) -> int:
    async def check(backend: DockerBackend) -> Checklist:
        return await backend.check_image(args.image, args.tier)

    checklist = _run(args, check, steps=False)
    if args.json:
        items = [vars(item) | {"required": item.required} for item in checklist.items]
        print(json.dumps({"image": checklist.image, "passed": checklist.passed, "items": items}))
        return 0 if checklist.passed else CHECK_FAILED
    tier = f", tier {checklist.tier}" if checklist.tier else ""
    print(
        f"{checklist.image} ({short_id(checklist.image_id)}, "
        f"{megabytes(checklist.size)}{tier}) against the sandbox image contract:"
    )
    width = max(len(item.name) for item in checklist.items)
    for item in checklist.items:
        print(f"  [{MARKS[item.status]}] {item.name:<{width}}  {item.detail}")
    counts = checklist.counts()
    verdict = "passed" if checklist.passed else "FAILED"
    print(f"{verdict}: {counts['ok']} ok, {counts['warn']} warning(s), {counts['fail']} failed")
    return 0 if checklist.passed else CHECK_FAILED
