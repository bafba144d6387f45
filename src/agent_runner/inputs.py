"""What a caller hands in, checked at the edge, so a bad value is one clear line.

A NUL byte in a command or a variable, a variable name with ``=`` in it, a NaN timeout:
each would otherwise surface deep down as a raw ``ValueError`` from the kernel's side, or
as a sandbox that seems to have died. The rules are the executor's own
(:mod:`agent_runner.backends.executor`), so both ends refuse the same things.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runner.backends.executor import command_problem, env_problem, timeout_problem
from agent_runner.errors import InvalidSetting


def checked_command(command: Any) -> str:
    problem = command_problem(command)
    if problem is not None:
        raise InvalidSetting(problem)
    return str(command)


def checked_env(env: Mapping[str, str] | None, what: str = "env") -> dict[str, str]:
    values = dict(env or {})
    problem = env_problem(values)
    if problem is not None:
        raise InvalidSetting(f"{what}: {problem}")
    return values


def checked_timeout(timeout: Any) -> float | None:
    problem = timeout_problem(timeout)
    if problem is not None:
        raise InvalidSetting(problem)
    return None if timeout is None else float(timeout)
