"""AUTO mode: decide, per command, whether it runs on the host or in a sandbox, and say why.

The command is parsed with tree-sitter-bash, never matched as a string: ``echo "pip
install x"`` is an ``echo`` with some data, ``echo hi > /etc/hosts`` is a write outside the
workspace. Rules, first match wins:

1. **user-rule** — ``execution.auto.rules`` from the config file (see
   :mod:`~agent_runner.policy.user_rules`).
2. **requirements** — a custom requirements file was given: only the sandbox has it.
3. **unparsable** / **dynamic-command** — the text is not valid shell (any ``ERROR`` or
   ``MISSING`` node), or it runs something that cannot be known before it runs: a command
   name built from a variable or substitution, ``eval``/``sh -c``/``source <(...)`` of
   anything but literal text, shell code piped in from another program.
4. A simple command *anywhere* in it (lists, pipes, subshells, ``$()``, backticks, ``bash -c``
   strings, loops, conditionals, function bodies, wrappers such as ``env``/``timeout``/
   ``xargs``/``sudo``) is risky; when several are, the first rule in this order is reported:
   **remote-code**, **sandbox-written** (it would run code the session's sandbox wrote on
   the host: :mod:`~agent_runner.policy.written`), **privilege**, **package-install**,
   **system-admin**, **outside-workspace** (see :mod:`agent_runner.policy.tools` for the
   tool knowledge).
5. **default** — ``execution.auto.default`` (``local`` unless configured).

The workspace is ``cwd`` (default: the current directory); changes there and in the temp
directories (``/tmp``, ``/var/tmp``, ``$TMPDIR``, ``tempfile.gettempdir()``) are fine. Where
relative paths land is tracked through ``cd``/``pushd`` (and ``env -C``); after a ``cd`` to a
place known only at run time, relative writes count as outside the workspace.

Code layout, in the order a decision runs through it (the user guide is
``docs/sandbox/auto-mode.md``):

- :mod:`~.decision`: :class:`Decision` and :func:`decide`, the rules in order.
- :mod:`~.user_rules`: user rules compiled, matched, chosen; :func:`check_rules`.
- :mod:`~.walker`: the walk over statements (lists, pipelines, redirections, control
  flow), with :mod:`~.syntax` (the parser), :mod:`~.words` (quoting and expansions) and
  :mod:`~.paths` (where paths land; the workspace).
- :mod:`~.commands`: one simple command; :mod:`~.nested`: commands that run other commands
  or code (wrappers, ``sudo``, shells, interpreters, ``eval``/``source``/``trap``).
- :mod:`~.analysis`: what the walk collects (views, findings); :mod:`~.ids`: the rule ids.
- :mod:`~.tools`: what is known about individual tools (tables, and questions over them).
- :mod:`~.written`: rule ``sandbox-written``, what the session's sandbox wrote on the host.

The package imports nothing from :mod:`agent_runner.config`: settings come in structurally
(:class:`~.decision.AutoSpec`, :class:`~.user_rules.RuleSpec`), so the configuration can
call :func:`check_rules` while it loads.
"""

from agent_runner.policy.decision import Decision, decide
from agent_runner.policy.ids import (
    ADMIN,
    DEFAULT,
    DYNAMIC,
    OUTSIDE,
    PACKAGE,
    PRIVILEGE,
    REMOTE,
    REQUIREMENTS,
    UNPARSABLE,
    USER_RULE,
    WRITTEN,
)
from agent_runner.policy.user_rules import check_rules
from agent_runner.policy.walker import leaves_processes
from agent_runner.policy.written import SandboxWritten

__all__ = [
    "ADMIN",
    "DEFAULT",
    "DYNAMIC",
    "OUTSIDE",
    "PACKAGE",
    "PRIVILEGE",
    "REMOTE",
    "REQUIREMENTS",
    "UNPARSABLE",
    "USER_RULE",
    "WRITTEN",
    "Decision",
    "SandboxWritten",
    "check_rules",
    "decide",
    "leaves_processes",
]
