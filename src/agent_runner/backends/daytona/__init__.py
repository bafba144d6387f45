"""SANDBOX on Daytona: one cloud sandbox per session, from a snapshot, through the SDK.

``backend`` is where (client, the session's sandbox, workspace, what closing does),
``lifecycle`` finds, revives, creates and deletes sandboxes (also for
:mod:`agent_runner.compat.stigmer`), ``shell`` and ``process`` are how (session commands
under the ``driver``), ``remote`` is the toolbox with every failure explained, ``client``
the SDK client and its errors, ``workspace`` the copy in and out, ``inventory`` lists and
prunes. Daytona has no byte stream into a sandbox, so the executor is not used here:
state is kept on the runner's side, as on Docker's exec path.
"""

from agent_runner.backends.daytona.backend import DaytonaBackend

__all__ = ["DaytonaBackend"]
