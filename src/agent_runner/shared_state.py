"""What an AUTO session's two shells share: the directory and the variables its commands set.

In AUTO mode one session may run some commands on the host and others in its sandbox.
For the agent it is one shell: after ``cd src && export DEBUG=1`` on the host, the next
command in the sandbox starts in ``/workspace/src`` with ``DEBUG=1``, and the other way
round. The directory is translated between the workspace on the host and ``/workspace``
in the sandbox (a directory outside the workspace does not carry over); only variables a
command set or unset carry over, never the rest of either environment, and never the
variables that describe one machine (``PATH``, ``HOME``, ...).

From the sandbox to the host less crosses: only variables that cannot change what host
programs run or load (:mod:`agent_runner.auto.variables`; the others are held in the
sandbox and named in the command's reason), and only a directory that is really inside
the workspace on the host (not one reached through a symbolic link the sandbox made).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent_runner.auto import variables
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


@dataclass(frozen=True)
class Carried:
    """What one command's changes mean for the session's other shell."""

    changes: dict[str, str | None]
    """The variable changes the other shell takes over."""
    held: dict[str, str] = field(default_factory=dict)
    """Variables a sandboxed command set that stay in the sandbox, with the reason for each."""
    cwd_held: str | None = None
    """The sandbox's directory, when the host shell does not follow it there."""

    def notes(self) -> list[str]:
        """What the command's reason adds: what did not cross to the host, and why."""
        notes = [variables.describe(self.held)] if self.held else []
        if self.cwd_held is not None:
            notes.append(
                f"the host shell does not follow into {self.cwd_held}: on the host it "
                "resolves outside the workspace"
            )
        return notes


@dataclass
class SharedState:
    """The session's accumulated changes, replayed on a shell that opens later."""

    host_workspace: str
    variables: dict[str, str | None] = field(default_factory=dict)
    relative_cwd: str | None = None
    held: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    """Variables the sandbox set that the host shell did not take: name -> (value, why)."""

    def _root(self, mode: ExecutionMode) -> str:
        return self.host_workspace if mode is ExecutionMode.LOCAL else SANDBOX_WORKSPACE

    def record(self, mode: ExecutionMode, before: ShellState, after: ShellState) -> Carried:
        """Take note of what a command on ``mode``'s shell changed, and what of it the other
        shell takes over."""
        changes = changes_between(before.env, after.env)
        held: dict[str, str] = {}
        if mode is ExecutionMode.SANDBOX:
            changes, held = variables.split(changes)
            self.held.update({name: (after.env.get(name), why) for name, why in held.items()})
        for name in changes:
            self.held.pop(name, None)
        self.variables.update(changes)
        root = self._root(mode)
        relative = os.path.relpath(after.cwd, root)
        if relative != os.curdir and relative.startswith(os.pardir):
            return Carried(changes, held)
        if mode is ExecutionMode.SANDBOX and not self._inside_on_host(relative):
            return Carried(changes, held, cwd_held=relative)
        self.relative_cwd = relative
        return Carried(changes, held)

    def _inside_on_host(self, relative: str) -> bool:
        """Whether the workspace's ``relative`` directory is inside it on the host too: a
        link the sandbox made (``ln -s / up``) must not take the host shell out of it."""
        root = os.path.realpath(self.host_workspace)
        real = os.path.realpath(os.path.join(self.host_workspace, relative))
        return real == root or real.startswith(root.rstrip("/") + "/")

    def accept(self, names: list[str] | None = None) -> dict[str, str | None]:
        """Take held variables over after all (the user said so); return the changes for
        the host shell. ``None``: all of them."""
        chosen = list(self.held) if names is None else names
        unknown = [name for name in chosen if name not in self.held]
        if unknown:
            raise KeyError(", ".join(unknown))
        changes = {name: self.held.pop(name)[0] for name in chosen}
        self.variables.update(changes)
        return changes

    def cwd_for(self, mode: ExecutionMode) -> str | None:
        """Where ``mode``'s shell should be, or ``None`` when the session left the workspace."""
        if self.relative_cwd is None:
            return None
        return os.path.normpath(os.path.join(self._root(mode), self.relative_cwd))
