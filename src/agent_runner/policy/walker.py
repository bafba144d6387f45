"""The walk of a command: statements, from the parse tree down to each simple command.

:func:`analyse` turns a command into an :class:`~agent_runner.policy.analysis.Analysis`:
every simple command as it runs and every risky thing about them. :class:`Walker` handles
the statements of one parse tree (lists, pipelines, subshells, redirections, loops,
conditionals, function definitions) and tracks where relative paths land through them;
each simple command goes to :class:`~agent_runner.policy.commands.Commands`, and shell code
found inside one (``bash -c '...'``, ``eval``) comes back here, to a walker of its own.

Words are data unless the shell would run them: quoted text stays text, while ``$(...)``
(also inside double quotes), backticks, ``bash -c`` strings, ``eval`` arguments, here-
documents fed to a shell and the like are parsed and walked as code. Anything whose text is
only known at run time fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tree_sitter import Node

from agent_runner.policy import tools, written
from agent_runner.policy.analysis import Analysis, Stdin, View
from agent_runner.policy.commands import Commands
from agent_runner.policy.ids import OUTSIDE, UNPARSABLE
from agent_runner.policy.paths import Cwd, merge
from agent_runner.policy.syntax import encode, parse
from agent_runner.policy.words import UNKNOWN, Source, Word

MAX_DEPTH = 8
"""How deep shell code may nest in shell code (``bash -c "eval '...'"``) and be analysed."""

_WRITE_REDIRECTS = frozenset({">", ">>", "&>", "&>>", ">|", "<>", ">&", "&>|"})
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_STATEMENTS = frozenset({"subshell", "compound_statement", "pipeline", "list", "if_statement",
                         "while_statement", "for_statement", "case_statement"})  # fmt: skip


def analyse(
    command: str,
    workspace: str,
    start: str | None = None,
    sandbox_written: written.SandboxWritten | None = None,
) -> Analysis:
    """Analyse ``command`` run from ``start`` (default: the workspace itself), knowing what
    the sandbox wrote on the host (:mod:`~agent_runner.policy.written`), if anything."""
    analysis = Analysis(workspace, sandbox_written)
    if "\x00" in command:
        analysis.error = "contains a NUL byte"
        return analysis
    source = encode(command)
    root = parse(source)
    if root.has_error:
        analysis.error = "is not valid shell syntax"
        return analysis
    Walker(analysis, source).stmt(root, frozenset({start or workspace}))
    written.finish(analysis)
    return analysis


def leaves_processes(command: str) -> bool:
    """Whether ``command`` may leave processes running after it returns: something put in
    the background (``cmd &``, also inside ``bash -c '...'``), detached (``nohup``,
    ``setsid``, ``disown``, ``screen``, ``tmux``...), or text that cannot be analysed."""
    analysis = analyse(command, "/")
    return analysis.error is not None or analysis.background


class Walker:
    """Walks one parse tree (the command, or shell code found inside it)."""

    def __init__(self, analysis: Analysis, source: bytes, depth: int = 0) -> None:
        self.analysis = analysis
        self.source = Source(source)
        self.depth = depth
        self.commands = Commands(analysis, self.source, self.script)

    # -- statements ---------------------------------------------------------------------

    def stmt(self, node: Node, cwd: Cwd, stdin: Stdin | None = None) -> Cwd:
        """Walk one statement (by its type: ``_HANDLERS``, after the class); returns the
        working directory after it."""
        handler = _HANDLERS.get(node.type)
        if handler is not None:
            return handler(self, node, cwd, stdin)
        for child in node.named_children:
            cwd = self.stmt(child, cwd, stdin)
        return cwd

    def sequence(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        children = node.children
        for index, child in enumerate(children):
            if not child.is_named:
                continue
            end = self.stmt(child, cwd, stdin)
            background = index + 1 < len(children) and children[index + 1].type == "&"
            if not background:
                cwd = end
            else:
                self.analysis.background = True
        return cwd

    def subshell(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        self.sequence(node, cwd, stdin)
        return cwd

    def and_or(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        left, right = node.named_children[0], node.named_children[-1]
        either = any(child.type == "||" for child in node.children)
        after_left = self.stmt(left, cwd, stdin)
        after_right = self.stmt(right, merge(cwd, after_left) if either else after_left, stdin)
        return merge(cwd, after_left, after_right)

    def pipeline(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        incoming = stdin
        for member in node.named_children:
            mark = len(self.analysis.views)
            self.stmt(member, cwd, incoming)
            made = self.analysis.views[mark:]
            if (incoming and incoming.fetch) or any(view.fetcher for view in made):
                incoming = Stdin(fetch=True, source=self.source.text(node))
            else:
                incoming = self.produced(member, made, cwd)
        return cwd

    def produced(self, member: Node, made: list[View], cwd: Cwd = None) -> Stdin | None:
        """What a pipeline member writes: known text (``echo 'ls'``), a file, or unknown."""
        name_node = member.child_by_field_name("name") if member.type == "command" else None
        own = [v for v in made if name_node and v.words[0].start == name_node.start_byte]
        if not own:
            return Stdin(unknown=True)
        words = own[0].words
        texts = [word.text for word in words[1:]]
        name = words[0].text
        if None in texts or name is None:
            return Stdin(unknown=True)
        name = tools.normalize(name)
        if name in ("echo", "printf"):
            data = [t for t in texts if t is not None and not re.match(r"^-[neE]+$", t)]
            return Stdin(script=" ".join(data).replace("\\n", "\n"))
        if name == "cat":
            return self.read_file(own[0].words[1:], cwd)
        return Stdin(unknown=True)

    def read_file(self, words: list[Word], cwd: Cwd) -> Stdin | None:
        """What ``cat FILE...`` or ``< FILE`` feeds: a file the sandbox wrote, or nothing known."""
        for word in words:
            shown = written.stdin_file(self.analysis, word, cwd)
            if shown is not None:
                return Stdin(written=shown)
        return None

    def redirected(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        body = node.child_by_field_name("body")
        redirects = [child for child in node.named_children if child.type in _REDIRECTS]
        for child in redirects:
            stdin = self.redirect(child, cwd, node, stdin)
        if body is None:
            return cwd
        mark = len(self.analysis.views)
        end = self.stmt(body, cwd, stdin)
        if any(view.fetcher for view in self.analysis.views[mark:]):
            # ``curl URL > install.sh``: the file now holds downloaded code.
            for child in redirects:
                target = child.child_by_field_name("destination")
                if child.type == "file_redirect" and target is not None:
                    found = self.analysis.workspace.resolve(self.source.word(target), 0, cwd)
                    self.analysis.downloads.update(found or [])
        return end

    def redirect(self, node: Node, cwd: Cwd, statement: Node, stdin: Stdin | None) -> Stdin | None:
        kind = node.type
        if kind == "file_redirect":
            operator = next((c.type for c in node.children if not c.is_named), "")
            target = node.child_by_field_name("destination")
            if target is not None and operator in _WRITE_REDIRECTS:
                word = self.source.word(target)
                if not ((operator == ">&" and (word.text or "x").isdigit()) or word.text == "-"):
                    what = self.analysis.workspace.outside_write(
                        self.source, word, 0, cwd, "writes"
                    )
                    if what is not None:
                        self.analysis.find(OUTSIDE, self.source.text(statement), what)
                    elif self.analysis.written is not None:
                        text = self.source.text(statement)
                        written.write_through(self.analysis, text, word, 0, cwd)
            elif target is not None and operator == "<":
                word = self.source.word(target)
                stdin = self.read_file([word], cwd)
                if word.subst:
                    stdin = Stdin(
                        fetch=word.fetch, unknown=True, source=self.source.text(statement)
                    )
        elif kind == "herestring_redirect":
            word = self.source.word(node.named_children[-1]) if node.named_children else UNKNOWN
            stdin = self.stdin_of(word, self.source.text(statement))
        elif kind == "heredoc_redirect":
            body = next((c for c in node.named_children if c.type == "heredoc_body"), None)
            if body is not None:
                dynamic = [c for c in body.named_children if c.type != "heredoc_content"]
                if not dynamic:
                    stdin = Stdin(script=self.source.text(body))
                else:
                    fetch = any(self.source.fetches(c) for c in dynamic)
                    stdin = Stdin(fetch=fetch, unknown=True, source=self.source.text(statement))
            for child in node.named_children:
                if child.type in _REDIRECTS:
                    stdin = self.redirect(child, cwd, statement, stdin)
        for child in node.named_children:
            if child.type not in _REDIRECTS:
                self.stmt(child, cwd, None)
        return stdin

    def stdin_of(self, word: Word, source: str) -> Stdin:
        if word.text is not None:
            return Stdin(script=word.text, source=source)
        return Stdin(fetch=word.fetch, unknown=True, source=source)

    def command(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        words: list[Word] = []
        name_start = -1
        for child in node.named_children:
            kind = child.type
            if kind in _REDIRECTS:
                stdin = self.redirect(child, cwd, node, stdin)
            elif kind == "command_name":
                name_start = child.start_byte
                words.append(self.source.word(child))
            elif kind in _STATEMENTS:
                break  # ``time (cmd)``: the statement is walked below, not a word
            elif kind not in ("variable_assignment", "comment") and name_start >= 0:
                words.append(self.source.word(child))
        end = cwd
        if words:
            text = self.source.between(name_start, node.end_byte)
            end = self.commands.run(words, cwd, stdin, text=text)
        for child in node.named_children:
            if child.type not in _REDIRECTS:
                self.stmt(child, cwd, stdin)
        return end

    def if_statement(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        current, after_condition = cwd, cwd
        ends: list[Cwd] = []
        has_else = False
        for child in node.children:
            if child.type == "then":
                after_condition = current
            elif child.type in ("elif_clause", "else_clause"):
                ends.append(current)
                has_else |= child.type == "else_clause"
                current = self.sequence(child, after_condition, stdin)
            elif child.is_named:
                current = self.stmt(child, current, stdin)
            elif child.type == "&":
                self.analysis.background = True
        ends.append(current)
        if not has_else:
            ends.append(after_condition)
        return merge(*ends)

    def loop_statement(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        body = node.child_by_field_name("body")
        for child in node.named_children:
            if body is None or child.id != body.id:
                cwd = self.stmt(child, cwd, stdin)
        if body is None:
            return cwd
        end = self.stmt(body, cwd, stdin)
        if end == cwd:
            return cwd
        merged = merge(cwd, end)
        return merged if self.stmt(body, merged, stdin) == merged else None

    def case_statement(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        ends: list[Cwd] = []
        for child in node.named_children:
            if child.type == "case_item":
                ends.append(self.sequence(child, cwd, stdin))
            else:
                cwd = self.stmt(child, cwd, stdin)
        return merge(cwd, *ends)

    def function(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        name = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        changes = body is not None and self.stmt(body, cwd, None) != cwd
        if name is not None:
            self.analysis.functions[self.source.text(name)] = changes
        return cwd

    def script(self, code: str, cwd: Cwd, stdin: Stdin | None, view: View) -> Cwd:
        """Analyse shell code found inside the command (``bash -c '...'``, ``eval``)."""
        if self.depth >= MAX_DEPTH:
            self.analysis.find(UNPARSABLE, view.text, "nests shell code too deeply to analyse")
            return None
        source = encode(code)
        root = parse(source)
        if root.has_error:
            self.analysis.find(UNPARSABLE, view.text, "runs shell code that cannot be parsed")
            return None
        return Walker(self.analysis, source, self.depth + 1).stmt(root, cwd, stdin)


_HANDLERS: dict[str, Callable[[Walker, Node, Cwd, Stdin | None], Cwd]] = {
    "program": Walker.sequence,
    "compound_statement": Walker.sequence,
    "do_group": Walker.sequence,
    "subshell": Walker.subshell,
    "command_substitution": Walker.subshell,
    "process_substitution": Walker.subshell,
    "list": Walker.and_or,
    "pipeline": Walker.pipeline,
    "redirected_statement": Walker.redirected,
    "command": Walker.command,
    "if_statement": Walker.if_statement,
    "while_statement": Walker.loop_statement,
    "for_statement": Walker.loop_statement,
    "c_style_for_statement": Walker.loop_statement,
    "case_statement": Walker.case_statement,
    "function_definition": Walker.function,
    "comment": lambda walker, node, cwd, stdin: cwd,
}
"""The walk of each kind of statement, by node type; any other node is walked child by
child. Built once: a walker is made for every piece of shell code found in a command."""
