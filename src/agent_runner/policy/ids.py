"""The rule ids AUTO mode reports, and the order of severity among the findings.

:class:`~agent_runner.policy.decision.Decision` carries one in ``rule`` and every
:class:`~agent_runner.policy.analysis.Finding` one of the finding ids. They are stable:
users, the corpus and ``agent-runner explain --json`` match on them, and
``docs/sandbox/auto-mode.md`` lists them.
"""

from __future__ import annotations

USER_RULE = "user-rule"
REQUIREMENTS = "requirements"
UNPARSABLE = "unparsable"
DYNAMIC = "dynamic-command"
PACKAGE = "package-install"
PRIVILEGE = "privilege"
REMOTE = "remote-code"
OUTSIDE = "outside-workspace"
ADMIN = "system-admin"
WRITTEN = "sandbox-written"
"""A local command would run code the sandbox wrote (:mod:`agent_runner.policy.written`)."""
DEFAULT = "default"
PRIORITY = (UNPARSABLE, DYNAMIC, REMOTE, WRITTEN, PRIVILEGE, PACKAGE, ADMIN, OUTSIDE)
"""The finding ids, most severe first: of several findings, the first in this order decides.
Code the sandbox wrote is code from an untrusted source, like code fetched from the network."""
