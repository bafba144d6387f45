"""User rules (``execution.auto.rules``): compiled, matched against each simple command, and
checked against their own examples when the configuration loads.

A rule's ``prefix`` is split into words like a command; it matches a simple command whose
leading words are exactly those words (the first word may also match the last path
component: ``pip`` matches ``/usr/bin/pip``). Every simple command is tried, including the
ones wrapped by ``sudo``/``env``/``timeout``/``xargs``/``python -m`` and those inside
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

This module says which rule decides which command (:func:`choose`); what that means for the
whole command is up to :func:`~agent_runner.policy.decision.decide`. Rules arrive as any
objects with ``prefix``, ``mode`` and ``examples`` (:class:`RuleSpec`): the settings'
``AutoRule`` is one, and the policy does not import the settings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from agent_runner.errors import InvalidSetting
from agent_runner.modes import ExecutionMode
from agent_runner.policy.analysis import View, quote
from agent_runner.policy.syntax import encode, parse
from agent_runner.policy.walker import analyse
from agent_runner.policy.words import Source


class RuleSpec(Protocol):
    """A user rule as the settings hold it (``agent_runner.config.AutoRule`` is one)."""

    @property
    def prefix(self) -> str:
        """Command prefix, matched word by word against each simple command."""

    @property
    def mode(self) -> str:
        """Where matching commands run: ``local`` or ``sandbox`` (an ExecutionMode is one)."""

    @property
    def examples(self) -> Sequence[str]:
        """Commands the rule must match and decide (:func:`check_rules`)."""


@dataclass(frozen=True, slots=True)
class Rule:
    """A user rule compiled: its number in the list, and its prefix as words."""

    number: int
    prefix: str
    words: tuple[str, ...]
    mode: ExecutionMode

    @property
    def label(self) -> str:
        return f'auto rule {self.number} (prefix "{self.prefix}", {self.mode.value})'


def compile_rules(rules: Sequence[RuleSpec]) -> tuple[Rule, ...]:
    """The rules compiled (cached: the same rules come with every command)."""
    return _compile(tuple((rule.prefix, ExecutionMode(rule.mode).value) for rule in rules))


@lru_cache(maxsize=64)
def _compile(specs: tuple[tuple[str, str], ...]) -> tuple[Rule, ...]:
    compiled: list[Rule] = []
    for number, (prefix, mode) in enumerate(specs, start=1):
        rule = Rule(number, prefix, (), ExecutionMode(mode))
        source = encode(prefix)
        root = parse(source)
        nodes = [node for node in root.named_children if node.type != "comment"]
        if root.has_error or len(nodes) != 1 or nodes[0].type != "command":
            raise InvalidSetting(f"{rule.label}: the prefix must be the words of one command")
        reader = Source(source)
        words = [reader.word(child) for child in nodes[0].named_children]
        if any(word.text is None for word in words):
            raise InvalidSetting(f"{rule.label}: the prefix must not use $variables or $(...)")
        compiled.append(Rule(number, prefix, tuple(w.text or "" for w in words), rule.mode))
    return tuple(compiled)


def matches(rule: Rule, view: View) -> bool:
    """Whether ``view``'s leading words are the rule's prefix."""
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


Chosen = dict[View, tuple[Rule | None, int]]
"""For each simple command: the user rule deciding it and how many of its words it covers."""


def choose(view: View, rules: Iterable[Rule], chosen: Chosen) -> tuple[Rule | None, int]:
    """The rule deciding ``view``: the longest match, sandbox on a tie.

    A rule chosen for a wrapper (``sudo apt update``) also covers the words of the wrapped
    command it spans (``apt update``).
    """
    candidates = [(rule, len(rule.words)) for rule in rules if matches(rule, view)]
    parent_rule, parent_covered = chosen.get(view.parent, (None, 0)) if view.parent else (None, 0)
    if parent_rule is not None and view.offset and parent_covered > view.offset:
        candidates.append((parent_rule, parent_covered - view.offset))
    best: tuple[Rule | None, int] = (None, 0)
    for rule, covered in candidates:
        current = best[0]
        rank = (covered, rule.mode == ExecutionMode.SANDBOX)
        if current is None or rank > (best[1], current.mode == ExecutionMode.SANDBOX):
            best = (rule, covered)
    return best


def check_rules(rules: Sequence[RuleSpec]) -> None:
    """Check that every example of every rule is matched, and decided, by that rule."""
    compiled = compile_rules(rules)
    workspace = os.getcwd()
    for rule, spec in zip(compiled, rules, strict=True):
        for example in spec.examples:
            analysis = analyse(example, workspace)
            if analysis.error is not None:
                raise InvalidSetting(f'{rule.label}: example "{example}" {analysis.error}')
            matched = [view for view in analysis.views if matches(rule, view)]
            if not matched:
                seen = ", ".join(quote(view.text, 40) for view in analysis.views) or "nothing"
                raise InvalidSetting(
                    f'{rule.label}: example "{example}" does not match the prefix '
                    f"(its commands: {seen})"
                )
            winner, _ = choose(matched[0], compiled, {})
            if winner is not None and winner.mode != rule.mode:
                raise InvalidSetting(
                    f'{rule.label}: example "{example}" is decided by {winner.label} instead'
                )
