"""The ``agent-runner`` command.

Usage and environment errors are one line on stderr and exit status 2; ``exec`` otherwise
exits with the command's own status, so scripts can use it like ``bash -c``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from agent_runner import __version__
from agent_runner.config import (
    ExecutionMode,
    Settings,
    config_path,
    find_key,
    resolve,
    text_to_value,
)
from agent_runner.config_file import ConfigFile
from agent_runner.errors import AgentRunnerError, InvalidSetting
from agent_runner.results import ExecutionResult, OutputChunk, Stream
from agent_runner.runner import Runner
from agent_runner.session_store import SessionStore

USAGE_ERROR = 2
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


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line with a pointer to help, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="agent-runner",
        description="Run an AI agent's shell commands on the host, in a sandbox, "
        "or decided per command.",
    )
    parser.add_argument("--version", action="version", version=f"agent-runner {__version__}")
    parser.set_defaults(handler=lambda _args: _help(parser))
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "exec", help="run a shell command", description="Run COMMAND with bash -c."
    )
    run.add_argument(
        "--mode",
        "--execution-mode",
        dest="mode",
        choices=[mode.value for mode in ExecutionMode],
        help="where to run it (default: from the config cascade, else local)",
    )
    run.add_argument("--cwd", help="working directory (default: the current one)")
    run.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="K=V",
        help="set a variable for this command (repeatable)",
    )
    run.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="kill the command after this long"
    )
    run.add_argument(
        "--session",
        metavar="ID",
        help="continue session ID: cwd and exported variables carry over between invocations",
    )
    run.add_argument(
        "--json", action="store_true", help="print the result as JSON instead of streaming"
    )
    run.add_argument("--quiet", "-q", action="store_true", help="do not print AUTO's decision")
    run.add_argument("command", help="the command, exactly as bash -c would take it")
    run.set_defaults(handler=_exec)

    explain = commands.add_parser(
        "explain",
        help="show where AUTO mode would run a command, and why (runs nothing)",
        description="Print AUTO mode's decision for COMMAND without running it.",
    )
    explain.add_argument("--cwd", help="the workspace the command would run in (default: here)")
    explain.add_argument(
        "--requirements", metavar="FILE", help="as if this requirements file was given"
    )
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")
    explain.add_argument("command")
    explain.set_defaults(handler=_explain)

    config = commands.add_parser("config", help="read and change settings")
    config.set_defaults(handler=lambda _args: _help(config))
    actions = config.add_subparsers(title="actions", metavar="ACTION", parser_class=_Parser)
    get = actions.add_parser("get", help="print a setting's value")
    get.add_argument("key", help="e.g. execution.mode")
    get.set_defaults(handler=_config_get)
    put = actions.add_parser("set", help="write a setting to the config file")
    put.add_argument("key", help="e.g. execution.mode")
    put.add_argument("value")
    put.set_defaults(handler=_config_set)
    listing = actions.add_parser("list", help="every setting, its value and where it came from")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_config_list)
    path = actions.add_parser("path", help="print the config file's path")
    path.set_defaults(handler=lambda _args: _print(str(config_path())))

    sandbox = commands.add_parser("sandbox", help="list and remove sandbox containers")
    sandbox.set_defaults(handler=lambda _args: _help(sandbox))
    verbs = sandbox.add_subparsers(title="actions", metavar="ACTION", parser_class=_Parser)
    listing_sandboxes = verbs.add_parser("ls", help="our sandboxes (labelled stigmer.sandbox)")
    listing_sandboxes.add_argument("--json", action="store_true")
    listing_sandboxes.set_defaults(handler=_sandbox_ls)
    prune = verbs.add_parser("prune", help="remove sandboxes whose runner is gone")
    prune.add_argument("--all", action="store_true", help="remove every sandbox of ours")
    prune.set_defaults(handler=_sandbox_prune)
    return parser


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return USAGE_ERROR


def _print(text: str) -> int:
    print(text)
    return 0


def _exec(args: argparse.Namespace) -> int:
    overrides = {"mode": args.mode, "timeout": args.timeout}
    names = {"mode": "--mode", "timeout": "--timeout"}
    settings = resolve(overrides, override_names=names).settings
    if args.session and settings.mode is not ExecutionMode.LOCAL:
        raise InvalidSetting(
            f"--session carries state between invocations in local mode only (mode is "
            f"{settings.mode.value}); in other modes keep one Runner session open from Python"
        )
    env = dict(_parse_assignment(item) for item in args.env)
    return asyncio.run(_run(settings, args, env))


async def _run(settings: Settings, args: argparse.Namespace, env: dict[str, str]) -> int:
    """One command; ``--env`` applies to it alone, what it exports carries over (--session)."""
    store = SessionStore.default() if args.session else None
    saved = store.load(args.session) if store is not None else None
    cwd = args.cwd or (saved.cwd if saved is not None else None)
    async with Runner(settings) as runner:
        session = runner.session(
            args.session,
            cwd=cwd,
            env=saved.variables if saved else None,
            unset=saved.unset if saved else (),
        )
        async with session:
            result = await session.run(
                args.command,
                env=env,
                on_output=None if args.json else _write_live,
                on_decision=None if args.quiet or args.json else _announce,
            )
            if store is not None:
                store.save(args.session, session.state())
    if args.json:
        print(result.model_dump_json(indent=2))
    _report_end(result, args)
    return result.exit_code


def _write_live(chunk: OutputChunk) -> None:
    target = sys.stdout if chunk.stream is Stream.STDOUT else sys.stderr
    target.buffer.write(chunk.data)
    target.buffer.flush()


def _announce(mode: ExecutionMode, reason: str | None) -> None:
    if reason is not None:
        print(f"auto -> {mode.value}: {reason}", file=sys.stderr, flush=True)


def _report_end(result: ExecutionResult, args: argparse.Namespace) -> None:
    if args.json:
        return
    if result.timed_out:
        print(f"agent-runner: timed out after {result.duration_s:.1f} s; killed", file=sys.stderr)
    if result.oom_killed:
        print("agent-runner: killed by the sandbox's memory limit", file=sys.stderr)


def _parse_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InvalidSetting(f"--env {text!r}: expected NAME=VALUE")
    return name, value


def _config_get(args: argparse.Namespace) -> int:
    setting = find_key(args.key)
    value = resolve().value(setting.key)
    return _print(_render(value))


def _config_set(args: argparse.Namespace) -> int:
    setting = find_key(args.key)
    if setting.key == "auto.rules":
        raise InvalidSetting(
            f"edit {setting.public_name} in {config_path()} directly (it is a list of rules)"
        )
    value = _validated(setting.key, text_to_value(setting, args.value))
    ConfigFile(config_path()).set(setting.key, value)
    return _print(f"{setting.public_name} = {_render(value)}  ({config_path()})")


def _validated(key: str, value: Any) -> Any:
    """Refuse a value the cascade would refuse, before it reaches the file."""
    resolve({key: value}, override_names={key: f"value for {key}"}, environ={})
    return _plain(value)


def _plain(value: Any) -> Any:
    """Numbers and booleans typed on the command line are written as such, not as text."""
    if not isinstance(value, str):
        return value
    lowered = value.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _config_list(args: argparse.Namespace) -> int:
    from agent_runner.config import setting_keys

    resolved = resolve()
    rows = [
        (s.public_name, resolved.value(s.key), str(resolved.origins[s.key]), s.variable or "")
        for s in setting_keys()
    ]
    if args.json:
        payload = [
            {"key": key, "value": _jsonable(value), "source": origin, "variable": variable}
            for key, value, origin, variable in rows
        ]
        return _print(json.dumps(payload, indent=2))
    width = max(len(row[0]) for row in rows)
    value_width = min(40, max(len(_render(row[1])) for row in rows))
    for key, value, origin, _variable in rows:
        print(f"{key:<{width}}  {_render(value):<{value_width}}  {origin}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if value is None or isinstance(value, bool | int | float):
        return value
    return str(value)


def _render(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return json.dumps(_jsonable(value))
    return str(value)


def _sandbox_ls(args: argparse.Namespace) -> int:
    from agent_runner.backends.docker_inventory import list_sandboxes

    found = asyncio.run(_with_docker(list_sandboxes))
    if args.json:
        rows = [
            {
                "id": s.container_id[:12],
                "name": s.name,
                "execution_id": s.execution_id,
                "state": s.state,
                "image": s.image,
                "created_at": s.created_at,
                "owner": f"{s.owner.pid}@{s.owner.host}",
                "orphaned": s.orphaned,
            }
            for s in found
        ]
        return _print(json.dumps(rows, indent=2))
    if not found:
        return _print("no sandboxes")
    print(f"{'ID':<13}{'EXECUTION':<20}{'STATE':<10}{'OWNER':<28}{'CREATED':<22}IMAGE")
    for s in found:
        owner = f"{s.owner.pid}@{s.owner.host}" + (" (gone)" if s.orphaned else "")
        print(
            f"{s.container_id[:12]:<13}{s.execution_id:<20}{s.state:<10}{owner:<28}{s.created_at:<22}{s.image}"
        )
    return 0


def _sandbox_prune(args: argparse.Namespace) -> int:
    from agent_runner.backends.docker_inventory import prune_orphans

    async def prune(backend: Any) -> Any:
        return await prune_orphans(backend, everything=args.all)

    removed = asyncio.run(_with_docker(prune))
    for s in removed:
        print(
            f"removed {s.container_id[:12]} ({s.execution_id}, owner {s.owner.pid}@{s.owner.host})"
        )
    return _print(f"{len(removed)} sandbox(es) removed")


async def _with_docker(action: Callable[[Any], Any]) -> Any:
    from agent_runner.backends.docker import DockerBackend

    backend = DockerBackend(resolve().settings)
    try:
        return await action(backend)
    finally:
        await backend.close()


def _explain(args: argparse.Namespace) -> int:
    from agent_runner.policy import decide

    settings = resolve().settings
    decision = decide(
        args.command, requirements=args.requirements, cwd=args.cwd, auto=settings.auto
    )
    if args.json:
        return _print(json.dumps(decision.to_dict(), indent=2))
    return _print(f"auto -> {decision.mode.value}: {decision.reason}")
