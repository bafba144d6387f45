"""Commands that run other commands or shell code: what they run is analysed too.

Wrappers (``env``, ``timeout``, ``xargs``...) and privilege tools (``sudo``, ``su``...) run a
command given in their words; shells (``bash -c``), interpreters (``python -c``, ``-m``) and
the built-ins ``eval``, ``source`` and ``trap`` run code. The command goes back to
:meth:`Commands.run <agent_runner.policy.commands.Commands.run>` as a view of its own
(its parent is the wrapper's view, so user rules can cover both), the code to a walker of
its own; what cannot be known before the command runs is a finding
(:meth:`~agent_runner.policy.commands.Commands.generated`).

:mod:`~agent_runner.policy.commands` dispatches here and these functions call back into it,
so they name what they use of it structurally (:class:`Host`), not by import.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from agent_runner.policy import tools, written
from agent_runner.policy.analysis import Analysis, Stdin, View
from agent_runner.policy.ids import DYNAMIC, PRIVILEGE, REMOTE, WRITTEN
from agent_runner.policy.paths import Cwd
from agent_runner.policy.words import LIT, UNKNOWN, Part, Word

_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


class Host(Protocol):
    """What these functions use of :class:`~agent_runner.policy.commands.Commands`."""

    analysis: Analysis

    def run(
        self,
        words: list[Word],
        cwd: Cwd,
        stdin: Stdin | None,
        parent: View | None = None,
        offset: int = 0,
    ) -> Cwd: ...

    def script(self, code: str, cwd: Cwd, stdin: Stdin | None, view: View) -> Cwd: ...

    def generated(self, view: View, word: Word, what: str = "runs code") -> None: ...

    def check_write(self, view: View, word: Word | None, offset: int, cwd: Cwd) -> None: ...

    def runs_download(self, view: View, word: Word, cwd: Cwd) -> bool: ...


def wrapper(
    host: Host,
    view: View,
    name: str,
    args: list[Word],
    texts: list[str | None],
    cwd: Cwd,
    stdin: Stdin | None,
) -> Cwd:
    """``env``, ``timeout``, ``xargs``, ``nohup``...: the command they run, as if written alone
    (``env -S`` and ``watch`` run a string of shell code)."""
    view.neutral = True
    spec = tools.WRAPPERS[name]
    parsed = tools.parse_options(texts, spec.spec, permute=False)
    if name == "command" and parsed.has("v", "V"):
        return cwd
    inner_cwd = cwd
    for opt in parsed.values("C", "chdir") if name == "env" else []:
        found = host.analysis.workspace.resolve(args[opt.index], opt.offset, cwd)
        inner_cwd = None if found is None else frozenset(found)
    for opt in parsed.values("o", "output") if name == "time" else []:
        host.check_write(view, args[opt.index], opt.offset, cwd)
    start = parsed.operands[0] if parsed.operands else len(args)
    start += spec.positionals
    # ``env A=1 cmd``, and ``time A=1 cmd`` (a keyword); other wrappers would fail to run
    # ``A=1``, so skipping it there only errs on the safe side.
    while start < len(args) and _ASSIGNMENT.match(texts[start] or "-"):
        start += 1
    if name == "env" and start < len(args) and texts[start] == "-":
        start += 1
    code = parsed.values("S", "split-string") if name == "env" else []
    if name == "watch" and not parsed.has("x", "exec") and start < len(args):
        code = [tools.Opt("", start)]
    if code:
        rest = args[code[0].index :]
        if any(word.text is None for word in rest):
            host.generated(view, next(word for word in rest if word.text is None))
            return cwd
        joined = " ".join(word.text or "" for word in rest)[code[0].offset :]
        host.script(joined, inner_cwd, stdin, view)
        return cwd
    if start >= len(args):
        return cwd
    inner = list(args[start:])
    if name == "xargs":
        inner = xargs_words(parsed, args, inner)
    end = host.run(inner, inner_cwd, stdin, view, start + 1)
    return end if name in ("command", "builtin", "time") else cwd


def xargs_words(parsed: tools.Parsed, args: list[Word], inner: list[Word]) -> list[Word]:
    """The command xargs runs, with the words it reads from input unknown."""
    replace = [opt for opt in parsed.options if opt.name in tools.XARGS_REPLACE]
    if not replace:
        return [*inner, UNKNOWN]
    opt = replace[0]
    marker = "{}"
    if opt.index >= 0:
        marker = (args[opt.index].text or "{}")[opt.offset :] or "{}"
    return [UNKNOWN if w.text is None or marker in w.text else w for w in inner]


def privileged(
    host: Host,
    view: View,
    name: str,
    args: list[Word],
    texts: list[str | None],
    cwd: Cwd,
    stdin: Stdin | None,
) -> None:
    """``sudo``, ``su``, ``doas``...: a privilege finding, and the command or code they run."""
    host.analysis.find(PRIVILEGE, view.text, "runs with elevated privileges", (view,))
    spec = tools.PRIVILEGED[name].spec
    if name in ("su", "runuser"):
        for opt in tools.parse_options(texts, spec).values(*tools.PRIVILEGED_CODE_OPTIONS):
            run_code(host, view, args[opt.index], opt.offset, cwd)
        if name == "su":
            return
    parsed = tools.parse_options(texts, spec, permute=False)
    if not parsed.operands or name == "sudoedit":
        return
    start = parsed.operands[0]
    if name == "sudo" and parsed.has("s", "i", "shell", "login"):
        rest = args[start:]
        unknown = next((word for word in rest if word.text is None), None)
        if unknown is not None:
            host.generated(view, unknown)
        else:
            host.script(" ".join(word.text or "" for word in rest), cwd, stdin, view)
        return
    host.run(args[start:], cwd, stdin, view, start + 1)


def run_code(host: Host, view: View, word: Word, offset: int, cwd: Cwd) -> Cwd:
    """``word[offset:]`` is shell code run by ``view``."""
    if word.text is None:
        host.generated(view, word)
        return cwd
    return host.script(word.text[offset:], cwd, None, view)


def shell(
    host: Host, view: View, args: list[Word], texts: list[str | None], cwd: Cwd, stdin: Stdin | None
) -> None:
    """``sh``/``bash``...: the ``-c`` string, a program read on standard input, or a script
    file downloaded earlier in the command."""
    flags = ["-" + t[1:] if t and t[:1] == "+" and len(t) > 1 else t for t in texts]
    parsed = tools.parse_options(flags, tools.SHELL_OPTIONS, permute=False)
    operand = parsed.operands[0] if parsed.operands else None
    analysis = host.analysis
    if analysis.written is not None:
        for opt in parsed.values("rcfile", "init-file"):
            written.run_file(analysis, view, args[opt.index], opt.offset, cwd, "sources")
    if parsed.has("c"):
        if operand is not None:
            run_code(host, view, args[operand], 0, cwd)
        return
    if parsed.has("s") or operand is None or texts[operand] in ("-", "/dev/stdin"):
        stdin_program(host, view, stdin, cwd, shell=True)
    elif args[operand].subst:
        host.generated(view, args[operand])
    elif not host.runs_download(view, args[operand], cwd) and analysis.written is not None:
        written.run_file(analysis, view, args[operand], 0, cwd)
        written.project_code(analysis, view)


def interpreter(
    host: Host,
    view: View,
    name: str,
    args: list[Word],
    texts: list[str | None],
    cwd: Cwd,
    stdin: Stdin | None,
) -> None:
    """``python``, ``node``, ``perl``...: ``-c``/``-e`` code known only at run time, ``-m`` modules
    (run as commands: ``python -m pip``), ``perl -i`` edits, and programs read on standard input
    or downloaded earlier."""
    spec = tools.INTERPRETERS[name]
    parsed = tools.parse_options(texts, spec.spec, permute=False)
    codes = [opt for opt in parsed.options if opt.name in spec.code and opt.index >= 0]
    for opt in codes:
        if args[opt.index].text is None:
            host.generated(view, args[opt.index])
    modules = [opt for opt in parsed.options if opt.name == spec.module and opt.index >= 0]
    analysis = host.analysis
    if modules:
        opt = modules[0]
        module = args[opt.index]
        if opt.offset:
            module = Word([Part((module.text or "")[opt.offset :], LIT)], -1, -1)
            if args[opt.index].text is None:
                module = UNKNOWN
        if analysis.written is not None and module.text is not None:
            written.run_module(analysis, view, module.text, cwd)
        host.run([module, *args[opt.index + 1 :]], cwd, stdin, view, opt.index + 1)
        return
    if name == "perl" and any(opt.name == "i" for opt in parsed.options):
        files = tools.parse_options(texts, spec.spec).operands[(0 if codes else 1) :]
        for index in files:
            host.check_write(view, args[index], 0, cwd)
    if codes:
        return
    operand = parsed.operands[0] if parsed.operands else None
    if operand is None or texts[operand] in ("-", "/dev/stdin"):
        stdin_program(host, view, stdin, cwd, shell=False)
    elif args[operand].subst:
        host.generated(view, args[operand])
    elif not host.runs_download(view, args[operand], cwd) and analysis.written is not None:
        written.run_file(analysis, view, args[operand], 0, cwd)


def evaluate(
    host: Host, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
) -> Cwd:
    """``eval``: its words, joined, are shell code."""
    unknown = next((word for word in args if word.text is None), None)
    if unknown is not None:
        host.generated(view, unknown, "evaluates code")
        return cwd
    return host.script(" ".join(t or "" for t in texts), cwd, None, view) if args else cwd


def source_file(
    host: Host, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd,
    stdin: Stdin | None,
) -> Cwd:  # fmt: skip
    """``source``/``.``: a script from a substitution, standard input or an earlier download,
    or one the sandbox wrote."""
    analysis = host.analysis
    if args and args[0].subst:
        host.generated(view, args[0])
    elif args and texts[0] in ("/dev/stdin", "-", "/proc/self/fd/0"):
        stdin_program(host, view, stdin, cwd, shell=True)
    elif args and not host.runs_download(view, args[0], cwd) and analysis.written is not None:
        written.source_file(analysis, view, args[0], cwd)
    return cwd


def trap(
    host: Host, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
) -> Cwd:
    """``trap``: the handler is shell code."""
    if args and texts[0] not in ("-", "-p", "-l", "--", "-P"):
        run_code(host, view, args[0], 0, cwd)
    return cwd


def stdin_program(host: Host, view: View, stdin: Stdin | None, cwd: Cwd, shell: bool) -> None:
    """``view`` reads its program from standard input."""
    if stdin is None:
        return
    if stdin.written is not None:
        host.analysis.find(WRITTEN, stdin.source or view.text, f"runs {stdin.written}")
    elif stdin.fetch:
        host.analysis.find(REMOTE, stdin.source or view.text, "runs code fetched from the network")
    elif shell and stdin.script is not None:
        host.script(stdin.script, cwd, None, view)
    elif shell and stdin.unknown:
        host.analysis.find(DYNAMIC, view.text, "runs shell code produced at run time", (view,))
