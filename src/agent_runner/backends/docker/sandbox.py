"""A started sandbox container, as the backend hands it to a shell.

A record of its own so that the backend (which makes sandboxes) and the shells (which run
commands in them) both depend on it and neither on the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_runner.backends.channel import ExecutorChannel


@dataclass
class Sandbox:
    """A started container with its executor on the line (or a sleeper, without python3)."""

    container_id: str
    image: str
    channel: ExecutorChannel
    uid: int
    gid: int
    has_executor: bool = True
