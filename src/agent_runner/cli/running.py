"""``agent-runner exec`` (run a command) and ``agent-runner explain`` (AUTO's decision)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from agent_runner.cli.common import Subcommands, emit
from agent_runner.cli.progress import progress_view
from agent_runner.config import SANDBOX_BACKENDS, ExecutionMode, Settings, resolve
from agent_runner.errors import InvalidSetting
from agent_runner.results import ExecutionResult, OutputChunk, Stream
from agent_runner.runner import Runner
from agent_runner.session import DecisionCallback
from agent_runner.session_store import SessionStore


def add_parsers(commands: Subcommands) -> None:
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
    add_backend_option(run)
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
        "--requirements",
        metavar="FILE",
        help="run in a sandbox image with FILE's packages installed (pip; built once per "
        "content and image, then reused); sandbox and auto modes",
    )
    run.add_argument(
        "--session",
        metavar="ID",
        help="continue session ID: cwd and exported variables carry over between invocations",
    )
    run.add_argument(
        "--json", action="store_true", help="print the result as JSON instead of streaming"
    )
    run.add_argument(
        "--quiet", "-q", action="store_true", help="print neither AUTO's decision nor progress"
    )
    run.add_argument(
        "--download",
        action="store_true",
        help="afterwards, copy the files the command changed in the sandbox's copy of the "
        "workspace back into it (workspace copy on Daytona)",
    )
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


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=SANDBOX_BACKENDS,
        help="sandbox backend (default: execution.sandbox.backend, else docker)",
    )


def _exec(args: argparse.Namespace) -> int:
    overrides = {"mode": args.mode, "timeout": args.timeout, "sandbox.backend": args.backend}
    names = {"mode": "--mode", "timeout": "--timeout", "sandbox.backend": "--backend"}
    settings = resolve(overrides, override_names=names).settings
    if args.session and settings.mode is not ExecutionMode.LOCAL:
        raise InvalidSetting(
            f"--session carries state between invocations in local mode only (mode is "
            f"{settings.mode.value}); in other modes keep one Runner session open from Python"
        )
    env = dict(_parse_assignment(item) for item in args.env)
    with progress_view(quiet=args.quiet, steps=False):
        return asyncio.run(_run(settings, args, env))


async def _run(settings: Settings, args: argparse.Namespace, env: dict[str, str]) -> int:
    """One command; ``--env`` applies to it alone, what it exports carries over (--session)."""
    store = SessionStore.default() if args.session else None
    saved = store.load(args.session) if store is not None else None
    cwd = args.cwd or (saved.cwd if saved is not None else None)
    announced: list[str] = []
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
                requirements=args.requirements,
                on_output=None if args.json else _write_live,
                on_decision=None if args.quiet or args.json else _announcer(announced),
            )
            if store is not None:
                store.save(args.session, session.state())
            if args.download:
                changed = await session.download()
                print(f"agent-runner: downloaded {len(changed)} changed file(s)", file=sys.stderr)
    if args.json:
        print(result.model_dump_json(indent=2))
    _report_end(result, args, announced)
    return result.exit_code


def _write_live(chunk: OutputChunk) -> None:
    target = sys.stdout if chunk.stream is Stream.STDOUT else sys.stderr
    target.buffer.write(chunk.data)
    target.buffer.flush()


def _announcer(announced: list[str]) -> DecisionCallback:
    def announce(mode: ExecutionMode, reason: str | None) -> None:
        if reason is not None:
            announced.append(reason)
            print(f"auto -> {mode.value}: {reason}", file=sys.stderr, flush=True)

    return announce


def _report_end(result: ExecutionResult, args: argparse.Namespace, announced: list[str]) -> None:
    if args.json:
        return
    reason = result.reason or ""
    if announced and reason.startswith(announced[0] + "; "):
        # What the command's reason gained while it ran: what it wrote or set that the
        # host does not take.
        print(f"agent-runner: {reason[len(announced[0]) + 2 :]}", file=sys.stderr)
    if result.timed_out:
        print(f"agent-runner: timed out after {result.duration_s:.1f} s; killed", file=sys.stderr)
    if result.oom_killed:
        print("agent-runner: killed by the sandbox's memory limit", file=sys.stderr)


def _parse_assignment(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise InvalidSetting(f"--env {text!r}: expected NAME=VALUE")
    return name, value


def _explain(args: argparse.Namespace) -> int:
    from agent_runner.auto.quarantine import Quarantine
    from agent_runner.policy import decide

    settings = resolve().settings
    quarantine = Quarantine(args.cwd or os.getcwd(), tracked=False)
    decision = decide(
        args.command,
        requirements=args.requirements,
        cwd=args.cwd,
        auto=settings.auto,
        sandbox_written=quarantine.policy_view(os.environ.get("PATH")),
    )
    if args.json:
        return emit(json.dumps(decision.to_dict(), indent=2))
    return emit(f"auto -> {decision.mode.value}: {decision.reason}")
