"""What the walk of one command collects: :class:`Analysis`.

Every simple command as it runs (:class:`View`, wrappers unwrapped: ``sudo apt update`` is
a view of ``sudo`` and one of ``apt update``) and every risky thing about them
(:class:`Finding`, with the rule id and a readable reason). The walk
(:mod:`~agent_runner.policy.walker`) fills it in; the decision
(:mod:`~agent_runner.policy.decision`) reads it, with the user rules, which match views and
may waive the findings their views own. What the session's sandbox wrote on the host comes
in as a :class:`SandboxWritten` (rule ``sandbox-written``: :mod:`~agent_runner.policy.written`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from agent_runner.policy.paths import Cwd, Workspace
from agent_runner.policy.words import Word


@dataclass(eq=False, slots=True)
class View:
    """A simple command as it runs: the words of a command, or of the command a wrapper runs."""

    words: list[Word]
    text: str
    parent: View | None = None
    offset: int = 0
    """Index of ``words[0]`` among the parent's words (0: not taken from the parent's words)."""
    neutral: bool = False
    """Needs no local user rule (wrappers, ``cd``, ``true``...)."""
    fetcher: bool = False
    """Downloads something (``curl``, ``wget``)."""


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str
    trigger: str
    reason: str
    owners: tuple[View, ...] = ()
    """Commands whose local user rules may waive this finding; none: it cannot be waived."""


@dataclass(frozen=True, slots=True)
class Stdin:
    """What a command reads on standard input, as far as a shell reading a program cares."""

    fetch: bool = False
    script: str | None = None
    unknown: bool = False
    source: str = ""
    """The text that feeds it (the pipeline, here-document or here-string)."""
    written: str | None = None
    """A file the sandbox wrote that it reads (``sh < x``, ``cat x | sh``), as shown."""


class SandboxWritten(Protocol):
    """What the sandbox wrote on the host that the user has not accepted (absolute paths in;
    the answers are how the reason shows them: ``run.sh, which the sandbox wrote``)."""

    def covering(self, path: str) -> str | None:
        """``path`` when the sandbox wrote it or a directory holding it; None otherwise."""

    def under(self, directory: str, names: frozenset[str] | None = None) -> str | None:
        """A path at or under ``directory`` that the sandbox wrote and that holds code, whose
        name is one of ``names`` (names or ``*.suffix``; None: any name). A directory the
        sandbox made counts whatever the names, its contents being unknown."""

    def code(self) -> str | None:
        """Code the sandbox wrote in the workspace (the first found), or None."""

    @property
    def search_path(self) -> Sequence[str]:
        """The host shell's ``PATH`` up to the last directory the sandbox wrote in (empty when
        it wrote in none of them)."""


def quote(text: str, limit: int = 80) -> str:
    """``text`` as a reason shows it: on one line, in double quotes, at most ``limit`` long."""
    flat = " ".join(text.split())
    return f'"{flat if len(flat) <= limit else flat[: limit - 1] + "…"}"'


class Analysis:
    """Everything found in one command: the simple commands and what is risky about them."""

    def __init__(self, workspace: str, written: SandboxWritten | None = None) -> None:
        self.workspace = Workspace(workspace)
        self.written = written
        """What the sandbox wrote on the host and nobody accepted (None: nothing)."""
        self.views: list[View] = []
        self.findings: list[Finding] = []
        self.functions: dict[str, bool] = {}
        """Shell functions defined so far, and whether calling one may change directory."""
        self.dirs: list[Cwd] = []
        """The ``pushd`` stack, in the order the text is read."""
        self.oldpwd: Cwd = None
        self.downloads: set[str] = set()
        """Files downloaded earlier in the command (``curl -o x.sh URL && sh x.sh``)."""
        self.error: str | None = None
        """Why the command cannot be analysed at all (then nothing else counts)."""
        self.runs_project: View | None = None
        """The first command that runs the project's code (rule ``sandbox-written``)."""
        self.background = False
        """Something in it may outlive it (``cmd &``, ``nohup``, ``setsid``, ``disown``...)."""

    def find(self, rule: str, trigger: str, what: str, owners: tuple[View, ...] = ()) -> None:
        """Record that ``trigger`` does ``what`` (the end of the reason)."""
        self.findings.append(Finding(rule, trigger, f"{quote(trigger)} {what}", owners))
