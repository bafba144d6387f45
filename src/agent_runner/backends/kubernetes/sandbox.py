"""A session's pod, as the provisioners hand it out and the shell and backend refer to it.

A record of its own so that the provisioners (which make or claim pods), the connection
(which execs into them) and the shell all depend on it and not on each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxPod:
    """A running pod held for one session."""

    name: str
    uid: str
    container: str
    claim: str | None = None
    """The agent-sandbox SandboxClaim it came through (deleting it deletes the pod)."""
    warm: bool = False
    """It came from a warm pool rather than being started for the session."""
