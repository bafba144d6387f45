"""The decision: :func:`decide` applies the rules in order, first match wins.

The rules themselves are listed in :mod:`agent_runner.policy`; this module is their order.
It analyses the command (:func:`~agent_runner.policy.walker.analyse`), lets the user rules
claim or waive what they match (:mod:`~agent_runner.policy.user_rules`), and turns what is
left into one :class:`Decision` with a readable reason. The settings come in structurally
(:class:`AutoSpec`: ``agent_runner.config.AutoSettings`` is one), so the policy imports
nothing from the configuration, which itself calls the policy to check user rules.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_runner.modes import ExecutionMode
from agent_runner.policy.analysis import Analysis, Finding, View, quote
from agent_runner.policy.ids import DEFAULT, PRIORITY, REQUIREMENTS, UNPARSABLE, USER_RULE
from agent_runner.policy.user_rules import Chosen, Rule, RuleSpec, choose, compile_rules
from agent_runner.policy.walker import analyse
from agent_runner.policy.written import SandboxWritten


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


class AutoSpec(Protocol):
    """``execution.auto`` as the settings hold it (``agent_runner.config.AutoSettings``)."""

    @property
    def default(self) -> str:
        """Where a command runs when no rule sends it elsewhere: ``local`` or ``sandbox``."""

    @property
    def rules(self) -> Sequence[RuleSpec]:
        """User rules, tried before the built-in ones."""


@dataclass(frozen=True)
class _Unconfigured:
    """``execution.auto`` when nothing is configured."""

    default: str = ExecutionMode.LOCAL
    rules: tuple[RuleSpec, ...] = ()


_UNCONFIGURED = _Unconfigured()


def decide(
    command: str,
    *,
    requirements: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    auto: AutoSpec | None = None,
    workspace: str | os.PathLike[str] | None = None,
    sandbox_written: SandboxWritten | None = None,
) -> Decision:
    """Decide where AUTO mode runs ``command`` (the rules: :mod:`agent_runner.policy`).

    ``cwd`` is where the command starts (default: the current directory); relative paths in
    the command resolve against it. ``workspace`` is where changes are allowed (default:
    ``cwd``); a session that has ``cd``-ed away from its workspace passes both.
    ``sandbox_written`` is what the session's sandbox wrote on the host that the user has
    not accepted (:mod:`~agent_runner.policy.written`; None: nothing). Never raises for any
    command text: what cannot be analysed goes to the sandbox.
    """
    settings = auto or _UNCONFIGURED
    start = os.path.normpath(os.path.abspath(os.fspath(cwd) if cwd is not None else "."))
    root = os.fspath(workspace) if workspace is not None else start
    workspace = os.path.normpath(os.path.abspath(root))
    try:
        analysis = analyse(command, workspace, start, sandbox_written)
    except RecursionError:
        analysis = Analysis(workspace)
        analysis.error = "nests too deeply to analyse"
    chosen: Chosen = {}
    if analysis.error is None and settings.rules:
        decision = _apply_rules(analysis, compile_rules(settings.rules), chosen)
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


def _apply_rules(analysis: Analysis, rules: tuple[Rule, ...], chosen: Chosen) -> Decision | None:
    """Rule 1: a sandbox rule match anywhere, or local rules covering every command."""
    for view in analysis.views:
        rule, _ = chosen[view] = choose(view, rules, chosen)
        if rule is not None and rule.mode == ExecutionMode.SANDBOX:
            reason = f'{quote(view.text)} matches your sandbox rule "{rule.prefix}"'
            return Decision(ExecutionMode.SANDBOX, reason, USER_RULE, view.text)
    local = [view for view in analysis.views if _local(view, chosen)]
    if not local or any(not _waived(f, chosen) for f in analysis.findings):
        return None
    if all(_local(view, chosen) or view.neutral for view in analysis.views):
        return _allowed(local[0], chosen)
    return None
