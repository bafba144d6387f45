"""The original plan's function names, as a thin facade over :class:`~agent_runner.Runner`.

Callers written against the plan (``execute_command``, ``execute_in_sandbox``, ...) keep
working; new code should use ``Runner`` and ``Session`` directly. Commands given an
``execution_id`` share one session (and so one sandbox) until ``cleanup_sandbox``.
"""

from __future__ import annotations

from typing import Any

from agent_runner.config import ExecutionMode, Settings
from agent_runner.results import ExecutionResult
from agent_runner.runner import Runner
from agent_runner.runner import execute_command as _execute_once
from agent_runner.session import PathLike, Session

_runner: Runner | None = None
_sessions: dict[str, Session] = {}


def _shared_runner() -> Runner:
    global _runner
    if _runner is None:
        _runner = Runner()
    return _runner


def _session(execution_id: str, mode: ExecutionMode | str | None) -> Session:
    if execution_id not in _sessions:
        _sessions[execution_id] = _shared_runner().session(execution_id, mode=mode)
    return _sessions[execution_id]


async def execute_command(
    command: str,
    mode: ExecutionMode | str | None = None,
    requirements: PathLike | None = None,
    *,
    execution_id: str | None = None,
    **options: Any,
) -> ExecutionResult:
    """Run ``command`` in ``mode`` (default: configured); AUTO decides per command."""
    if execution_id is None:
        return await _execute_once(command, mode, requirements=requirements, **options)
    return await _session(execution_id, mode).run(command, requirements=requirements, **options)


async def execute_local(command: str, **options: Any) -> ExecutionResult:
    """Run ``command`` on the host."""
    return await execute_command(command, ExecutionMode.LOCAL, **options)


async def execute_in_sandbox(
    command: str, requirements: PathLike | None = None, **options: Any
) -> ExecutionResult:
    """Run ``command`` in a sandbox."""
    return await execute_command(command, ExecutionMode.SANDBOX, requirements, **options)


def detect_execution_mode(
    command: str, requirements: PathLike | None = None, cwd: PathLike | None = None
) -> ExecutionMode:
    """AUTO's choice for ``command`` (LOCAL or SANDBOX); see :mod:`agent_runner.policy`."""
    from agent_runner.policy import decide

    return decide(
        command, requirements=requirements, cwd=cwd, auto=_shared_runner().settings.auto
    ).mode


async def ensure_sandbox_image(settings: Settings | None = None) -> str:
    """Make the sandbox image present (local, else pulled); return its reference."""
    from agent_runner.backends.docker import DockerBackend

    backend = DockerBackend(settings or _shared_runner().settings)
    try:
        return await backend.ensure_image()
    finally:
        await backend.close()


async def create_sandbox_container(execution_id: str, requirements: PathLike | None = None) -> str:
    """Start the sandbox of session ``execution_id`` now; return its id."""
    session = _session(execution_id, ExecutionMode.SANDBOX)
    return await session.open(ExecutionMode.SANDBOX, requirements=requirements)


async def cleanup_sandbox(execution_id: str | None = None) -> None:
    """Close session ``execution_id`` (its sandbox is removed), or every facade session."""
    ids = [execution_id] if execution_id is not None else list(_sessions)
    for key in ids:
        session = _sessions.pop(key, None)
        if session is not None:
            await session.close()
