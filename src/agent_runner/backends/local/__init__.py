"""LOCAL: host shells whose commands are supervised so that none outlives its session.

``shell`` runs commands and processes, ``client`` is the runner's side of the supervisor,
``supervisor`` is the program itself (standard library only, run with ``python -I -S``).
"""

from agent_runner.backends.local.shell import LocalBackend

__all__ = ["LocalBackend"]
