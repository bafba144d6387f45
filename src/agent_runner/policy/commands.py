"""One simple command, as it runs: what it is, and what it does that AUTO mode cares about.

The walk (:mod:`~agent_runner.policy.walker`) hands every simple command it meets to
:meth:`Commands.run` as words. ``run`` records the command as a
:class:`~agent_runner.policy.analysis.View`, fails closed on a name known only at run time,
and dispatches on the tool the name runs (:mod:`~agent_runner.policy.tools`): the built-ins
that change the walk's state (``cd``/``pushd``/``popd``) or only look risky (``kill %1``),
the commands that run other commands or code (:mod:`~agent_runner.policy.nested`: wrappers,
``sudo``, shells, interpreters, ``eval``/``source``/``trap``), and every other tool, whose
findings come from the tool tables: package installs, administration, container host
access, writes outside the workspace, and downloads that a later command may run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from agent_runner.policy import nested, tools, written
from agent_runner.policy.analysis import Analysis, Stdin, View
from agent_runner.policy.ids import ADMIN, DYNAMIC, OUTSIDE, PACKAGE, PRIVILEGE, REMOTE
from agent_runner.policy.paths import Cwd
from agent_runner.policy.words import Source, Word

Script = Callable[[str, Cwd, Stdin | None, View], Cwd]
"""Walks shell code found in a command (``bash -c '...'``); the walker supplies it."""

_RESERVED = frozenset({"{", "}", "if", "then", "else", "elif", "fi", "do", "done", "case",
                       "esac", "while", "until", "for", "select", "in", "function", "!", "[[",
                       "]]"})  # fmt: skip


class Commands:
    """The simple commands of one parse tree, and the findings they record."""

    def __init__(self, analysis: Analysis, source: Source, script: Script) -> None:
        self.analysis = analysis
        self.source = source
        """Where the words were written, for the text of views and reasons."""
        self._script = script

    def run(
        self,
        words: list[Word],
        cwd: Cwd,
        stdin: Stdin | None,
        parent: View | None = None,
        offset: int = 0,
        text: str | None = None,
    ) -> Cwd:
        """Analyse one simple command; returns the working directory after it."""
        view = View(words, text if text is not None else self.source.span(words), parent, offset)
        if not view.text and parent is not None:
            view.text = parent.text
        self.analysis.views.append(view)
        head = words[0]
        if head.text is None or (head.expands and head.text not in ("[", "[[")):
            self.generated(view, head, "runs a command")
            return cwd
        if head.text in _RESERVED and head.plain:
            # tree-sitter reads ``time { cmd; }`` as the words ``time { cmd`` and ``}``, and
            # ``! if a; then b; fi`` as commands named ``if`` and ``then``: the words after a
            # reserved word are still a command.
            view.neutral = True
            if len(words) == 1:
                return cwd
            return self.run(words[1:], cwd, stdin, view, 1)
        if "/" in head.text and self.runs_download(view, head, cwd):
            return cwd
        name = tools.normalize(head.text)
        args = words[1:]
        texts = [word.text for word in args]
        view.fetcher = name in tools.FETCHERS
        view.neutral = name in tools.NEUTRAL
        if name in tools.DETACHERS:
            self.analysis.background = True
        functions = self.analysis.functions
        if "/" not in head.text and head.text in functions:
            return None if functions[head.text] else cwd
        if self.analysis.written is not None:
            written.command(self.analysis, view, head, name, texts, cwd)
        special = SPECIALS.get(name)
        if special is not None:
            return special(self, view, name, args, texts, cwd, stdin)
        if name in tools.WRAPPERS:
            return nested.wrapper(self, view, name, args, texts, cwd, stdin)
        if name in tools.PRIVILEGED:
            nested.privileged(self, view, name, args, texts, cwd, stdin)
        elif name in tools.SHELLS:
            nested.shell(self, view, args, texts, cwd, stdin)
        elif name in tools.INTERPRETERS:
            nested.interpreter(self, view, name, args, texts, cwd, stdin)
        else:
            self.tool(view, name, args, texts, cwd, stdin)
        return cwd

    def tool(
        self,
        view: View,
        name: str,
        args: list[Word],
        texts: list[str | None],
        cwd: Cwd,
        stdin: Stdin | None,
    ) -> None:
        """Any other tool: what the tables say it does with these words."""
        if view.fetcher:
            self.record_downloads(name, args, texts, cwd)
        if name == "tee" and stdin is not None and stdin.fetch:
            for loc in tools.write_locations(name, texts):
                found = self.analysis.workspace.resolve(args[loc.index], 0, cwd)
                self.analysis.downloads.update(found or [])
        if tools.installs_packages(name, texts):
            self.analysis.find(PACKAGE, view.text, "installs packages", (view,))
        if tools.administers(name, texts):
            self.analysis.find(ADMIN, view.text, "administers the system", (view,))
        if name in tools.CONTAINER_TOOLS:
            if tools.container_host_access(texts):
                what = "gives a container access to the host"
                self.analysis.find(PRIVILEGE, view.text, what, (view,))
            for loc in tools.container_mounts(texts):
                self.check_write(view, args[loc.index], loc.offset, cwd, "mounts", loc.stop)
            return
        if name == "find":
            plan = tools.find_plan(texts)
            if plan.modifies:
                for loc in plan.roots:
                    word = None if loc.index == tools.CWD else args[loc.index]
                    self.check_write(view, word, loc.offset, cwd, removes=True)
            for loc in plan.files:
                self.check_write(view, args[loc.index], loc.offset, cwd)
            for start, end in plan.runs:
                if start < end:
                    self.run(args[start:end], cwd, None, view, start + 1)
            return
        for loc in tools.write_locations(name, texts):
            word = None if loc.index == tools.CWD else args[loc.index]
            self.check_write(view, word, loc.offset, cwd, "changes", loc.stop, loc.removes)

    # -- what the commands record -------------------------------------------------------

    def check_write(
        self,
        view: View,
        word: Word | None,
        offset: int,
        cwd: Cwd,
        verb: str = "changes",
        stop: str = "",
        removes: bool = False,
    ) -> None:
        """Record a finding when ``word[offset:]`` (None: the cwd) is outside the workspace."""
        workspace = self.analysis.workspace
        what = workspace.outside_write(self.source, word, offset, cwd, verb, stop, removes)
        if what is not None:
            self.analysis.find(OUTSIDE, view.text, what, (view,))
        elif self.analysis.written is not None:
            written.write_through(self.analysis, view.text, word, offset, cwd, stop, removes)

    def generated(self, view: View, word: Word, what: str = "runs code") -> None:
        """``view`` runs code that only exists at run time (``sh -c "$X"``, ``eval $(...)``)."""
        if word.fetch:
            self.analysis.find(REMOTE, view.text, f"{what} fetched from the network")
        else:
            self.analysis.find(DYNAMIC, view.text, f"{what} known only at run time", (view,))

    def script(self, code: str, cwd: Cwd, stdin: Stdin | None, view: View) -> Cwd:
        """Analyse shell code found inside the command (``bash -c '...'``, ``eval``)."""
        return self._script(code, cwd, stdin, view)

    def record_downloads(
        self, name: str, args: list[Word], texts: list[str | None], cwd: Cwd
    ) -> None:
        """Remember the files a download command saves, for :meth:`runs_download`."""
        named, urls = tools.downloads(name, texts)
        downloads = self.analysis.downloads
        for loc in named:
            downloads.update(
                self.analysis.workspace.resolve(args[loc.index], loc.offset, cwd) or []
            )
        for index in urls:
            url = texts[index]
            if url is not None and cwd is not None:
                saved = tools.url_file_name(url)
                downloads.update(os.path.normpath(os.path.join(d, saved)) for d in cwd)

    def runs_download(self, view: View, word: Word, cwd: Cwd) -> bool:
        """Record remote-code when ``word`` names a file downloaded earlier in the command."""
        downloads = self.analysis.downloads
        if not downloads or word.text is None:
            return False
        if not set(self.analysis.workspace.resolve(word, 0, cwd) or []) & downloads:
            return False
        self.analysis.find(REMOTE, view.text, "runs a file downloaded earlier in the command")
        return True


# -- built-ins with their own handling: (commands, view, name, args, texts, cwd, stdin) -> cwd


def _cd(
    commands: Commands, view: View, name: str, args: list[Word], texts: list[str | None],
    cwd: Cwd, _: Any,
) -> Cwd:  # fmt: skip
    """``cd``/``pushd``/``popd``: where relative paths land from here on."""
    analysis = commands.analysis
    operands = [i for i, t in enumerate(texts) if t is None or t == "-" or t[:1] != "-"]
    stack = analysis.dirs
    if name == "popd":
        return stack.pop() if stack and not operands else None
    if name == "pushd" and not operands:
        return None
    word = args[operands[0]] if operands else None
    if word is None:
        target: Cwd = frozenset({analysis.workspace.home})
    elif word.text == "-":
        target = analysis.oldpwd
    elif name == "pushd" and (word.text or "+")[:1] in "+-":
        return None
    else:
        found = analysis.workspace.resolve(word, 0, cwd)
        target = None if found is None else frozenset(found)
    if name == "pushd":
        stack.append(cwd)
    analysis.oldpwd = cwd
    return target


def _kill(
    commands: Commands, view: View, name: str, args: list[Word], texts: list[str | None],
    cwd: Cwd, _: Any,
) -> Cwd:  # fmt: skip
    """``kill``: signalling this shell's own jobs is fine, any other process is not."""
    if any(t in ("-l", "-L", "--list", "--table") for t in texts):
        return cwd
    parsed = tools.parse_options(texts, tools.OptSpec("sn", frozenset({"signal"}), True))
    targets = [args[i] for i in parsed.operands]
    if not all(_job(word) for word in targets):
        commands.analysis.find(ADMIN, view.text, "signals other processes", (view,))
    return cwd


def _job(word: Word) -> bool:
    """A job of this shell: ``%1`` or ``$!``."""
    if word.text is not None:
        return word.text.startswith("%")
    return len(word.parts) == 1 and word.parts[0].text == "!"


SPECIALS: dict[str, Callable[..., Cwd]] = {
    "eval": nested.evaluate,
    "source": nested.source_file,
    ".": nested.source_file,
    "trap": nested.trap,
    "cd": _cd,
    "pushd": _cd,
    "popd": _cd,
    "kill": _kill,
}
"""Commands with their own handling, by name; each returns the working directory after it."""
