"""AUTO mode: decide, per command, whether it runs on the host or in a sandbox, and say why.

The command is parsed with tree-sitter-bash, never matched as a string: ``echo "pip
install x"`` is an ``echo`` with some data, ``echo hi > /etc/hosts`` is a write outside the
workspace. Rules, first match wins:

1. **user-rule** — ``execution.auto.rules`` from the config file (see below).
2. **requirements** — a custom requirements file was given: only the sandbox has it.
3. **unparsable** / **dynamic-command** — the text is not valid shell (any ``ERROR`` or
   ``MISSING`` node), or it runs something that cannot be known before it runs: a command
   name built from a variable or substitution, ``eval``/``sh -c``/``source <(...)`` of
   anything but literal text, shell code piped in from another program.
4. A simple command *anywhere* in it (lists, pipes, subshells, ``$()``, backticks, ``bash -c``
   strings, loops, conditionals, function bodies, wrappers such as ``env``/``timeout``/
   ``xargs``/``sudo``) is risky; when several are, the first rule in this order is reported:
   **remote-code**, **privilege**, **package-install**, **system-admin**,
   **outside-workspace** (see :mod:`agent_runner.policy.tools` for the tool knowledge).
5. **default** — ``execution.auto.default`` (``local`` unless configured).

The workspace is ``cwd`` (default: the current directory); changes there and in the temp
directories (``/tmp``, ``/var/tmp``, ``$TMPDIR``, ``tempfile.gettempdir()``) are fine. Where
relative paths land is tracked through ``cd``/``pushd`` (and ``env -C``); after a ``cd`` to a
place known only at run time, relative writes count as outside the workspace.

Code layout: this module is the public API and the user rules; :mod:`~agent_runner.policy.walker`
parses and walks the command; :mod:`~agent_runner.policy.tools` knows the tools. The user
guide is ``docs/sandbox/auto-mode.md``.

User rules. A rule's ``prefix`` is split into words like a command; it matches a simple
command whose leading words are exactly those words (the first word may also match the last
path component: ``pip`` matches ``/usr/bin/pip``). Every simple command is tried, including
the ones wrapped by ``sudo``/``env``/``timeout``/``xargs``/``python -m`` and those inside
``bash -c`` strings. When several rules match one command the longest prefix wins, and
``sandbox`` wins a tie. A rule that covers a wrapper's words also covers the wrapped command
(``sudo apt update`` covers the ``apt update`` it runs; ``sudo`` alone does not).

- Any command matched by a ``sandbox`` rule sends the whole command to the sandbox.
- A ``local`` rule waives the findings of the commands it matches. The whole command stays
  local by rule when every simple command in it is matched by a local rule (wrappers and
  ``cd``, ``true``, ``exit``... excepted) and nothing unwaived remains; with
  ``default: local`` it is enough that nothing unwaived remains. Findings that belong to no
  single command are never waived: unparsable text, code fetched from the network, and
  redirections (``> /etc/x``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from agent_runner.config import AutoRule, AutoSettings, ExecutionMode
from agent_runner.errors import InvalidSetting
from agent_runner.policy.analysis import Analysis, Finding, View, quote
from agent_runner.policy.ids import (
    ADMIN,
    DEFAULT,
    DYNAMIC,
    OUTSIDE,
    PACKAGE,
    PRIORITY,
    PRIVILEGE,
    REMOTE,
    REQUIREMENTS,
    UNPARSABLE,
    USER_RULE,
)
from agent_runner.policy.syntax import encode, parse
from agent_runner.policy.walker import analyse
from agent_runner.policy.words import Source

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
    "Decision",
    "check_rules",
    "decide",
]


@dataclass(frozen=True)
class Decision:
    """Where AUTO mode runs a command, and why."""

    mode: ExecutionMode
    """LOCAL or SANDBOX, never AUTO."""
    reason: str
    """One human line: ``"pip install requests" installs packages``."""
    rule: str
    """Stable id of the rule that decided: ``package-install``, ``default``, ..."""
    trigger: str | None = None
    """The part of the command that triggered the rule (None for default/requirements)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "reason": self.reason,
            "rule": self.rule,
            "trigger": self.trigger,
        }


# --------------------------------------------------------------------------------------
# User rules
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Rule:
    number: int
    prefix: str
    words: tuple[str, ...]
    mode: ExecutionMode

    @property
    def label(self) -> str:
        return f'auto rule {self.number} (prefix "{self.prefix}", {self.mode.value})'


@lru_cache(maxsize=64)
def _compile(specs: tuple[tuple[str, str], ...]) -> tuple[_Rule, ...]:
    compiled: list[_Rule] = []
    for number, (prefix, mode) in enumerate(specs, start=1):
        rule = _Rule(number, prefix, (), ExecutionMode(mode))
        source = encode(prefix)
        root = parse(source)
        nodes = [node for node in root.named_children if node.type != "comment"]
        if root.has_error or len(nodes) != 1 or nodes[0].type != "command":
            raise InvalidSetting(f"{rule.label}: the prefix must be the words of one command")
        reader = Source(source)
        words = [reader.word(child) for child in nodes[0].named_children]
        if any(word.text is None for word in words):
            raise InvalidSetting(f"{rule.label}: the prefix must not use $variables or $(...)")
        compiled.append(_Rule(number, prefix, tuple(w.text or "" for w in words), rule.mode))
    return tuple(compiled)


def _rules(rules: Sequence[AutoRule]) -> tuple[_Rule, ...]:
    return _compile(tuple((rule.prefix, ExecutionMode(rule.mode).value) for rule in rules))


def _matches(rule: _Rule, view: View) -> bool:
    if len(view.words) < len(rule.words):
        return False
    for index, expected in enumerate(rule.words):
        text = view.words[index].text
        if text != expected and not (
            index == 0
            and text is not None
            and "/" not in expected
            and text.endswith("/" + expected)
        ):
            return False
    return True


Chosen = dict[View, tuple[_Rule | None, int]]
"""For each simple command: the user rule deciding it and how many of its words it covers."""


def _choose(view: View, rules: Iterable[_Rule], chosen: Chosen) -> tuple[_Rule | None, int]:
    """The rule deciding ``view``: the longest match, sandbox on a tie.

    A rule chosen for a wrapper (``sudo apt update``) also covers the words of the wrapped
    command it spans (``apt update``).
    """
    candidates = [(rule, len(rule.words)) for rule in rules if _matches(rule, view)]
    parent_rule, parent_covered = chosen.get(view.parent, (None, 0)) if view.parent else (None, 0)
    if parent_rule is not None and view.offset and parent_covered > view.offset:
        candidates.append((parent_rule, parent_covered - view.offset))
    best: tuple[_Rule | None, int] = (None, 0)
    for rule, covered in candidates:
        current = best[0]
        rank = (covered, rule.mode == ExecutionMode.SANDBOX)
        if current is None or rank > (best[1], current.mode == ExecutionMode.SANDBOX):
            best = (rule, covered)
    return best


def check_rules(rules: Sequence[AutoRule]) -> None:
    """Check that every example of every rule is matched, and decided, by that rule."""
    compiled = _rules(rules)
    workspace = os.getcwd()
    for rule, spec in zip(compiled, rules, strict=True):
        for example in spec.examples:
            analysis = analyse(example, workspace)
            if analysis.error is not None:
                raise InvalidSetting(f'{rule.label}: example "{example}" {analysis.error}')
            matched = [view for view in analysis.views if _matches(rule, view)]
            if not matched:
                seen = ", ".join(quote(view.text, 40) for view in analysis.views) or "nothing"
                raise InvalidSetting(
                    f'{rule.label}: example "{example}" does not match the prefix '
                    f"(its commands: {seen})"
                )
            winner, _ = _choose(matched[0], compiled, {})
            if winner is not None and winner.mode != rule.mode:
                raise InvalidSetting(
                    f'{rule.label}: example "{example}" is decided by {winner.label} instead'
                )


# --------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------


def decide(
    command: str,
    *,
    requirements: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    auto: AutoSettings | None = None,
    workspace: str | os.PathLike[str] | None = None,
) -> Decision:
    """Decide where AUTO mode runs ``command`` (see the module docstring for the rules).

    ``cwd`` is where the command starts (default: the current directory); relative paths in
    the command resolve against it. ``workspace`` is where changes are allowed (default:
    ``cwd``); a session that has ``cd``-ed away from its workspace passes both. Never raises
    for any command text: what cannot be analysed goes to the sandbox.
    """
    settings = auto or AutoSettings()
    start = os.path.normpath(os.path.abspath(os.fspath(cwd) if cwd is not None else "."))
    root = os.fspath(workspace) if workspace is not None else start
    workspace = os.path.normpath(os.path.abspath(root))
    try:
        analysis = analyse(command, workspace, start)
    except RecursionError:
        analysis = Analysis(workspace)
        analysis.error = "nests too deeply to analyse"
    chosen: Chosen = {}
    if analysis.error is None and settings.rules:
        decision = _apply_rules(analysis, _rules(settings.rules), chosen)
        if decision is not None:
            return decision
    if requirements is not None and os.fspath(requirements) != "":
        reason = f"a custom requirements file was given ({os.fspath(requirements)})"
        return Decision(ExecutionMode.SANDBOX, reason, REQUIREMENTS)
    if analysis.error is not None:
        reason = f"{quote(command)} {analysis.error}; failing closed"
        return Decision(ExecutionMode.SANDBOX, reason, UNPARSABLE, command)
    remaining = [f for f in analysis.findings if not _waived(f, chosen)]
    if remaining:
        first = min(remaining, key=lambda f: PRIORITY.index(f.rule))
        return Decision(ExecutionMode.SANDBOX, first.reason, first.rule, first.trigger)
    default = ExecutionMode(settings.default)
    waived = [f for f in analysis.findings if f.owners]
    if waived and default == ExecutionMode.LOCAL:
        return _allowed(waived[0].owners[0], chosen)
    reason = f"nothing risky found; execution.auto.default is {default.value}"
    return Decision(default, reason, DEFAULT)


def _local(view: View, chosen: Chosen) -> bool:
    rule = chosen.get(view, (None, 0))[0]
    return rule is not None and rule.mode == ExecutionMode.LOCAL


def _waived(finding: Finding, chosen: Chosen) -> bool:
    """Local rules waive a finding when they cover every command it belongs to."""
    return bool(finding.owners) and all(_local(owner, chosen) for owner in finding.owners)


def _allowed(view: View, chosen: Chosen) -> Decision:
    rule = chosen[view][0]
    prefix = rule.prefix if rule is not None else ""
    reason = f'{quote(view.text)} is allowed by your local rule "{prefix}"'
    return Decision(ExecutionMode.LOCAL, reason, USER_RULE, view.text)


def _apply_rules(analysis: Analysis, rules: tuple[_Rule, ...], chosen: Chosen) -> Decision | None:
    """Rule 1: a sandbox rule match anywhere, or local rules covering every command."""
    for view in analysis.views:
        rule, _ = chosen[view] = _choose(view, rules, chosen)
        if rule is not None and rule.mode == ExecutionMode.SANDBOX:
            reason = f'{quote(view.text)} matches your sandbox rule "{rule.prefix}"'
            return Decision(ExecutionMode.SANDBOX, reason, USER_RULE, view.text)
    local = [view for view in analysis.views if _local(view, chosen)]
    if not local or any(not _waived(f, chosen) for f in analysis.findings):
        return None
    if all(_local(view, chosen) or view.neutral for view in analysis.views):
        return _allowed(local[0], chosen)
    return None
