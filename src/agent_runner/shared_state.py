"""What an AUTO session's two shells share: the directory and the variables its commands set.

In AUTO mode one session may run some commands on the host and others in its sandbox.
For the agent it is one shell: after ``cd src && export DEBUG=1`` on the host, the next
command in the sandbox starts in ``/workspace/src`` with ``DEBUG=1``, and the other way
round. The directory is translated between the workspace on the host and ``/workspace``
in the sandbox (a directory outside the workspace does not carry over); only variables a
command set or unset carry over, never the rest of either environment, and never the
variables that describe one machine (``PATH``, ``HOME``, ...).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent_runner.backends.base import ShellState
from agent_runner.modes import ExecutionMode

SANDBOX_WORKSPACE = "/workspace"
MACHINE_VARIABLES = frozenset(
    {
        "PATH",
        "HOME",
        "HOSTNAME",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "USER",
        "LOGNAME",
        "SHELL",
        "TMPDIR",
        "_",
    }
)


def changes_between(before: Mapping[str, str], after: Mapping[str, str]) -> dict[str, str | None]:
    """Variables a command set (new value) or unset (``None``), machine-specific ones aside."""
    changed: dict[str, str | None] = {
        name: value for name, value in after.items() if before.get(name) != value
    }
    changed.update({name: None for name in before if name not in after})
    return {name: value for name, value in changed.items() if name not in MACHINE_VARIABLES}


@dataclass
class SharedState:
    """The session's accumulated changes, replayed on a shell that opens later."""

    host_workspace: str
    variables: dict[str, str | None] = field(default_factory=dict)
    relative_cwd: str | None = None

    def _root(self, mode: ExecutionMode) -> str:
        return self.host_workspace if mode is ExecutionMode.LOCAL else SANDBOX_WORKSPACE

    def record(
        self, mode: ExecutionMode, before: ShellState, after: ShellState
    ) -> dict[str, str | None]:
        """Take note of what a command on ``mode``'s shell changed; return the variable changes."""
        changes = changes_between(before.env, after.env)
        self.variables.update(changes)
        root = self._root(mode)
        relative = os.path.relpath(after.cwd, root)
        if relative == os.curdir or not relative.startswith(os.pardir):
            self.relative_cwd = relative
        return changes

    def cwd_for(self, mode: ExecutionMode) -> str | None:
        """Where ``mode``'s shell should be, or ``None`` when the session left the workspace."""
        if self.relative_cwd is None:
            return None
        return os.path.normpath(os.path.join(self._root(mode), self.relative_cwd))
