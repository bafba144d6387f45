"""Shell analysis for AUTO mode: walk a tree-sitter-bash parse tree, collect findings.

:func:`analyse` turns a command into an :class:`Analysis`: every simple command as it runs
(:class:`View`, wrappers unwrapped) and every risky thing about them (:class:`Finding`, with
the rule id and a readable reason). :mod:`agent_runner.policy` turns that into a decision;
:mod:`agent_runner.policy.tools` knows the individual tools.

Words are data unless the shell would run them: quoted text stays text, while ``$(...)``
(also inside double quotes), backticks, ``bash -c`` strings, ``eval`` arguments, here-
documents fed to a shell and the like are parsed and walked as code. Anything whose text is
only known at run time fails closed.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from tree_sitter import Language, Node, Parser

from agent_runner.policy import tools

USER_RULE = "user-rule"
REQUIREMENTS = "requirements"
UNPARSABLE = "unparsable"
DYNAMIC = "dynamic-command"
PACKAGE = "package-install"
PRIVILEGE = "privilege"
REMOTE = "remote-code"
OUTSIDE = "outside-workspace"
ADMIN = "system-admin"
DEFAULT = "default"
PRIORITY = (UNPARSABLE, DYNAMIC, REMOTE, PRIVILEGE, PACKAGE, ADMIN, OUTSIDE)
MAX_DEPTH = 8


# --------------------------------------------------------------------------------------
# Parsing
# --------------------------------------------------------------------------------------

_local = threading.local()
_ASCII_ONLY = bytes(range(128)) + b"x" * 128


def encode(text: str) -> bytes:
    """The UTF-8 bytes of ``text``; lone surrogates are kept rather than refused."""
    return text.encode("utf-8", "surrogatepass")


def parse(source: bytes) -> Node:
    """Parse shell code; node offsets index ``source``.

    tree-sitter-bash 0.25 can read out of bounds, and crash the process, on ``{`` followed
    by some non-BMP characters (tree-sitter/tree-sitter-bash#337). Bash treats every
    non-ASCII byte as an ordinary word character, so the parser sees each one replaced by
    ``x``: same offsets, same structure, and callers keep slicing the original bytes.
    """
    parser: Parser | None = getattr(_local, "parser", None)
    if parser is None:
        import tree_sitter_bash

        parser = Parser(Language(tree_sitter_bash.language()))
        _local.parser = parser
    return parser.parse(source.translate(_ASCII_ONLY)).root_node


LIT, QUOTED, DYN = 0, 1, 2


@dataclass(frozen=True, slots=True)
class Part:
    text: str
    """Literal text, or for DYN the variable name ("" when not a plain variable)."""
    kind: int
    raw: str = ""
    fetch: bool = False
    """A substitution whose command downloads something."""
    subst: bool = False
    """The output of a command (``$(...)``, ``<(...)``)."""


class Word:
    """One shell word: its text when known before the command runs, else ``text is None``."""

    __slots__ = ("end", "fetch", "parts", "start", "subst", "text", "unquoted")

    def __init__(self, parts: Sequence[Part], start: int = -1, end: int = -1) -> None:
        self.parts = tuple(parts)
        self.start, self.end = start, end
        dynamic = any(p.kind == DYN for p in self.parts)
        self.text = None if dynamic else "".join(p.text for p in self.parts)
        self.fetch = any(p.fetch for p in self.parts)
        self.subst = any(p.subst for p in self.parts)
        self.unquoted = "".join(p.text for p in self.parts if p.kind == LIT)

    @property
    def plain(self) -> bool:
        """Written without quotes or escapes."""
        return len(self.parts) == 1 and self.parts[0].kind == LIT and self.parts[0].raw == self.text

    @property
    def expands(self) -> bool:
        """Unquoted glob or brace characters: the word may become other words."""
        return bool(re.search(r"[*?\[]|\{.*[,.].*\}", self.unquoted))


_UNKNOWN = Word([Part("", DYN)])
_FETCH_TEXT = re.compile(r"[\w.-]+")


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", r"\1", raw.replace("\\\n", ""), flags=re.S)


def _dq_unescape(raw: str) -> str:
    return re.sub(r'\\([$`"\\])', r"\1", raw.replace("\\\n", ""))


_ANSI = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b",
         "f": "\f", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}  # fmt: skip


def _ansi_c(raw: str) -> str:
    def sub(match: re.Match[str]) -> str:
        body = match.group(1)
        if body[0] == "x":
            return chr(int(body[1:], 16)) if len(body) > 1 else "\\x"
        if body[0].isdigit():
            return chr(int(body, 8) & 0xFF)
        return _ANSI.get(body, "\\" + body)

    return re.sub(r"\\(x[0-9a-fA-F]{0,2}|[0-7]{1,3}|.)", sub, raw, flags=re.S)


# --------------------------------------------------------------------------------------
# What the walk collects
# --------------------------------------------------------------------------------------

Cwd = frozenset[str] | None
"""Where relative paths land: the possible directories, or None when unknown."""


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


def quote(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return f'"{flat if len(flat) <= limit else flat[: limit - 1] + "…"}"'


def _merge(*states: Cwd) -> Cwd:
    merged: set[str] = set()
    for state in states:
        if state is None:
            return None
        merged |= state
    return frozenset(merged)


@lru_cache(maxsize=32)
def _roots(workspace: str, tmpdir: str) -> tuple[str, ...]:
    """The workspace and temp directories, also as their real paths (``/tmp`` may be a link)."""
    roots = {workspace, "/tmp", "/var/tmp", "/dev/shm", tmpdir, tempfile.gettempdir()}
    roots |= {os.path.realpath(root) for root in roots}
    return tuple(sorted(os.path.normpath(root) for root in roots))


class Analysis:
    """Everything found in one command: the simple commands and what is risky about them."""

    def __init__(self, workspace: str) -> None:
        self.workspace = workspace
        self.home = os.path.normpath(os.path.expanduser("~"))
        tmpdir = os.environ.get("TMPDIR", "")
        self.tmpdir = os.path.normpath(tmpdir) if tmpdir.startswith("/") else "/tmp"
        self.roots = _roots(workspace, self.tmpdir)
        """Where changes are allowed: the workspace and the temp directories."""
        self.views: list[View] = []
        self.findings: list[Finding] = []
        self.functions: dict[str, bool] = {}
        self.dirs: list[Cwd] = []
        """The ``pushd`` stack, in the order the text is read."""
        self.oldpwd: Cwd = None
        self.downloads: set[str] = set()
        """Files downloaded earlier in the command (``curl -o x.sh URL && sh x.sh``)."""
        self.error: str | None = None

    def inside(self, path: str, removed: bool = False) -> bool:
        """Whether changing ``path`` stays in the workspace or a temp directory.

        With ``removed`` the path itself goes away, so the workspace or temp directory
        itself does not count as inside (``rm -rf /tmp``).
        """
        if path in _DEVICES or path.startswith(("/dev/fd/", "/proc/self/fd/")):
            return True
        if removed and path in self.roots:
            return False
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in self.roots)


_DEVICES = frozenset({"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom",
                      "/dev/stdout", "/dev/stderr", "/dev/stdin", "/dev/tty"})  # fmt: skip
_WRITE_REDIRECTS = frozenset({">", ">>", "&>", "&>>", ">|", "<>", ">&", "&>|"})
_REDIRECTS = frozenset({"file_redirect", "heredoc_redirect", "herestring_redirect"})
_STATEMENTS = frozenset({"subshell", "compound_statement", "pipeline", "list", "if_statement",
                         "while_statement", "for_statement", "case_statement"})  # fmt: skip
_VERBS = {
    "changes": ("changes files outside the workspace", "changes a path known only at run time"),
    "writes": ("writes outside the workspace", "writes to a path known only at run time"),
    "mounts": ("mounts a host path outside the workspace", "mounts a path known only at run time"),
}
_RESERVED = frozenset({"{", "}", "if", "then", "else", "elif", "fi", "do", "done", "case",
                       "esac", "while", "until", "for", "select", "in", "function", "!", "[[",
                       "]]"})  # fmt: skip
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PLAIN_EXPANSION = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=][^}]*)?\}$")


class Walker:
    """Walks one parse tree (the command, or shell code found inside it)."""

    def __init__(self, analysis: Analysis, source: bytes, depth: int = 0) -> None:
        self.a = analysis
        self.src = source
        self.depth = depth
        self.handlers: dict[str, Callable[[Node, Cwd, Stdin | None], Cwd]] = {
            "program": self.sequence,
            "compound_statement": self.sequence,
            "do_group": self.sequence,
            "subshell": self.subshell,
            "command_substitution": self.subshell,
            "process_substitution": self.subshell,
            "list": self.and_or,
            "pipeline": self.pipeline,
            "redirected_statement": self.redirected,
            "command": self.command,
            "if_statement": self.if_statement,
            "while_statement": self.loop_statement,
            "for_statement": self.loop_statement,
            "c_style_for_statement": self.loop_statement,
            "case_statement": self.case_statement,
            "function_definition": self.function,
            "comment": lambda node, cwd, stdin: cwd,
        }

    # -- statements ---------------------------------------------------------------------

    def stmt(self, node: Node, cwd: Cwd, stdin: Stdin | None = None) -> Cwd:
        handler = self.handlers.get(node.type)
        if handler is not None:
            return handler(node, cwd, stdin)
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
        return cwd

    def subshell(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        self.sequence(node, cwd, stdin)
        return cwd

    def and_or(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        left, right = node.named_children[0], node.named_children[-1]
        either = any(child.type == "||" for child in node.children)
        after_left = self.stmt(left, cwd, stdin)
        after_right = self.stmt(right, _merge(cwd, after_left) if either else after_left, stdin)
        return _merge(cwd, after_left, after_right)

    def pipeline(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        incoming = stdin
        for member in node.named_children:
            mark = len(self.a.views)
            self.stmt(member, cwd, incoming)
            made = self.a.views[mark:]
            if (incoming and incoming.fetch) or any(view.fetcher for view in made):
                incoming = Stdin(fetch=True, source=self.text(node))
            else:
                incoming = self.produced(member, made)
        return cwd

    def produced(self, member: Node, made: list[View]) -> Stdin | None:
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
            return None
        return Stdin(unknown=True)

    def redirected(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        body = node.child_by_field_name("body")
        redirects = [child for child in node.named_children if child.type in _REDIRECTS]
        for child in redirects:
            stdin = self.redirect(child, cwd, node, stdin)
        if body is None:
            return cwd
        mark = len(self.a.views)
        end = self.stmt(body, cwd, stdin)
        if any(view.fetcher for view in self.a.views[mark:]):
            # ``curl URL > install.sh``: the file now holds downloaded code.
            for child in redirects:
                target = child.child_by_field_name("destination")
                if child.type == "file_redirect" and target is not None:
                    self.a.downloads.update(self.paths(self.word(target), 0, cwd) or [])
        return end

    def redirect(self, node: Node, cwd: Cwd, statement: Node, stdin: Stdin | None) -> Stdin | None:
        kind = node.type
        if kind == "file_redirect":
            operator = next((c.type for c in node.children if not c.is_named), "")
            target = node.child_by_field_name("destination")
            if target is not None and operator in _WRITE_REDIRECTS:
                word = self.word(target)
                if not ((operator == ">&" and (word.text or "x").isdigit()) or word.text == "-"):
                    self.check_write(None, word, 0, cwd, statement, "writes")
            elif target is not None and operator == "<":
                word = self.word(target)
                stdin = None
                if word.subst:
                    stdin = Stdin(fetch=word.fetch, unknown=True, source=self.text(statement))
        elif kind == "herestring_redirect":
            word = self.word(node.named_children[-1]) if node.named_children else _UNKNOWN
            stdin = self.stdin_of(word, self.text(statement))
        elif kind == "heredoc_redirect":
            body = next((c for c in node.named_children if c.type == "heredoc_body"), None)
            if body is not None:
                dynamic = [c for c in body.named_children if c.type != "heredoc_content"]
                if not dynamic:
                    stdin = Stdin(script=self.text(body))
                else:
                    fetch = any(self.fetches(c) for c in dynamic)
                    stdin = Stdin(fetch=fetch, unknown=True, source=self.text(statement))
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
                words.append(self.word(child))
            elif kind in _STATEMENTS:
                break  # ``time (cmd)``: the statement is walked below, not a word
            elif kind not in ("variable_assignment", "comment") and name_start >= 0:
                words.append(self.word(child))
        end = cwd
        if words:
            text = self.src[name_start : node.end_byte].decode("utf-8", "replace")
            end = self.run(words, cwd, stdin, text=text)
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
        ends.append(current)
        if not has_else:
            ends.append(after_condition)
        return _merge(*ends)

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
        merged = _merge(cwd, end)
        return merged if self.stmt(body, merged, stdin) == merged else None

    def case_statement(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        ends: list[Cwd] = []
        for child in node.named_children:
            if child.type == "case_item":
                ends.append(self.sequence(child, cwd, stdin))
            else:
                cwd = self.stmt(child, cwd, stdin)
        return _merge(cwd, *ends)

    def function(self, node: Node, cwd: Cwd, stdin: Stdin | None) -> Cwd:
        name = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        changes = body is not None and self.stmt(body, cwd, None) != cwd
        if name is not None:
            self.a.functions[self.text(name)] = changes
        return cwd

    # -- words --------------------------------------------------------------------------

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def word(self, node: Node) -> Word:
        parts: list[Part] = []
        self.parts(node, parts)
        return Word(parts, node.start_byte, node.end_byte)

    def parts(self, node: Node, out: list[Part]) -> None:
        kind = node.type
        raw = self.text(node)
        if kind in ("word", "number"):
            out.append(Part(_unescape(raw), LIT, raw))
        elif kind == "raw_string":
            out.append(Part(raw[1:-1], QUOTED))
        elif kind in ("string", "translated_string"):
            for child in node.children:
                if child.type == "string_content":
                    out.append(Part(_dq_unescape(self.text(child)), QUOTED))
                elif child.is_named:
                    self.parts(child, out)
                elif child.type == "$":
                    out.append(Part("$", QUOTED))
        elif kind == "ansi_c_string":
            out.append(Part(_ansi_c(raw[2:-1]), QUOTED))
        elif kind in ("concatenation", "command_name"):
            for child in node.children:
                if child.is_named:
                    self.parts(child, out)
                else:
                    out.append(Part(self.text(child), LIT, self.text(child)))
        elif kind == "simple_expansion":
            out.append(Part(raw[1:], DYN))
        elif kind == "expansion":
            match = _PLAIN_EXPANSION.match(raw)
            out.append(Part(match.group(1) if match else "", DYN))
        elif kind in ("command_substitution", "process_substitution"):
            inner = raw[1:-1] if raw.startswith("`") else raw[2:-1]
            if kind == "command_substitution" and inner.strip() == "pwd":
                out.append(Part("PWD", DYN))
            else:
                out.append(Part("", DYN, fetch=self.fetches(node), subst=True))
        elif kind == "brace_expression":
            out.append(Part(raw, LIT, raw))
        else:
            out.append(Part("", DYN))

    def fetches(self, node: Node) -> bool:
        """Whether the code under ``node`` mentions a download command."""
        text = self.text(node)
        return any(tools.normalize(w) in tools.FETCHERS for w in _FETCH_TEXT.findall(text))

    def span(self, words: Sequence[Word]) -> str:
        real = [word for word in words if word.start >= 0]
        if not real:
            return ""
        return self.src[real[0].start : max(w.end for w in real)].decode("utf-8", "replace")

    # -- paths --------------------------------------------------------------------------

    def paths(self, word: Word, offset: int, cwd: Cwd, stop: str = "") -> list[str] | None:
        """Absolute candidates for the path ``word[offset:]``; None when it is unknown."""
        pieces: list[str] = []
        skip = offset
        tilde = False
        for part in word.parts:
            if part.kind == DYN:
                if skip:
                    return None
                if pieces:
                    pieces.append("\x00")
                    continue
                value = self.variable(part.text, cwd)
                if value is None:
                    return None
                pieces.append(value)
                continue
            text = part.text[skip:]
            skip = max(0, skip - len(part.text))
            if not text:
                continue
            if not pieces and part.kind == LIT and text.startswith("~") and "\\~" not in part.raw:
                tilde = True
            pieces.append(text)
        path = "".join(pieces)
        for char in stop:
            path = path.split(char, 1)[0]
        if tilde:
            head, _, rest = path[1:].partition("/")
            if head not in ("", "+"):
                return None
            base = self.a.home if head == "" else self.variable("PWD", cwd)
            if base is None:
                return None
            path = f"{base}/{rest}"
        candidates = _braces(path) if "{" in word.unquoted else [path]
        found: list[str] = []
        for candidate in candidates:
            if candidate.startswith("/"):
                found.append(os.path.normpath(candidate))
            elif cwd is None:
                return None
            else:
                found.extend(os.path.normpath(os.path.join(d, candidate)) for d in cwd)
        return found

    def variable(self, name: str, cwd: Cwd) -> str | None:
        if name == "HOME":
            return self.a.home
        if name == "TMPDIR":
            return self.a.tmpdir
        if name == "PWD" and cwd is not None and len(cwd) == 1:
            return next(iter(cwd))
        return None

    def check_write(
        self,
        view: View | None,
        word: Word | None,
        offset: int,
        cwd: Cwd,
        statement: Node | None = None,
        verb: str = "changes",
        stop: str = "",
        removes: bool = False,
    ) -> None:
        """Record a finding when ``word[offset:]`` (None: the cwd) is outside the workspace."""
        if word is None:
            found = None if cwd is None else sorted(cwd)
            shown = "the current directory"
        else:
            found = self.paths(word, offset, cwd, stop)
            shown = self.src[word.start : word.end].decode("utf-8", "replace")[offset:]
            for char in stop:
                shown = shown.split(char, 1)[0]
            if word.start < 0:
                shown = "words read from its input"
        trigger = self.text(statement) if statement is not None else view.text if view else ""
        owners = (view,) if view is not None else ()
        if found is None:
            what = f"{_VERBS[verb][1]} ({shown})"
        else:
            # ``rm -rf .`` is refused by rm itself; the written ``.`` never removes the root.
            removes = removes and not re.search(r"(^|/)\./?$", shown)
            outside = [path for path in found if not self.a.inside(path, removes)]
            if not outside:
                return
            if shown != outside[0] and not shown.startswith(("/", "~")):
                shown = f"{shown} = {outside[0]}"
            what = f"{_VERBS[verb][0]} ({shown})"
            if outside[0] in self.a.roots:
                what = f"removes the workspace or temp directory itself ({shown})"
        self.find(OUTSIDE, trigger, what, owners)

    # -- findings -----------------------------------------------------------------------

    def find(self, rule: str, trigger: str, what: str, owners: tuple[View, ...] = ()) -> None:
        self.a.findings.append(Finding(rule, trigger, f"{quote(trigger)} {what}", owners))

    def generated(self, view: View, word: Word, what: str = "runs code") -> None:
        """``view`` runs code that only exists at run time (``sh -c "$X"``, ``eval $(...)``)."""
        if word.fetch:
            self.find(REMOTE, view.text, f"{what} fetched from the network")
        else:
            self.find(DYNAMIC, view.text, f"{what} known only at run time", (view,))

    def script(self, code: str, cwd: Cwd, stdin: Stdin | None, view: View) -> Cwd:
        """Analyse shell code found inside the command (``bash -c '...'``, ``eval``)."""
        if self.depth >= MAX_DEPTH:
            self.find(UNPARSABLE, view.text, "nests shell code too deeply to analyse")
            return None
        source = encode(code)
        root = parse(source)
        if root.has_error:
            self.find(UNPARSABLE, view.text, "runs shell code that cannot be parsed")
            return None
        return Walker(self.a, source, self.depth + 1).stmt(root, cwd, stdin)

    def stdin_program(self, view: View, stdin: Stdin | None, cwd: Cwd, shell: bool) -> None:
        """``view`` reads its program from standard input."""
        if stdin is None:
            return
        if stdin.fetch:
            self.find(REMOTE, stdin.source or view.text, "runs code fetched from the network")
        elif shell and stdin.script is not None:
            self.script(stdin.script, cwd, None, view)
        elif shell and stdin.unknown:
            self.find(DYNAMIC, view.text, "runs shell code produced at run time", (view,))

    # -- simple commands ----------------------------------------------------------------

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
        view = View(words, text if text is not None else self.span(words), parent, offset)
        if not view.text and parent is not None:
            view.text = parent.text
        self.a.views.append(view)
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
        if "/" not in head.text and head.text in self.a.functions:
            return None if self.a.functions[head.text] else cwd
        special = self.specials.get(name)
        if special is not None:
            return special(self, view, name, args, texts, cwd, stdin)
        if name in tools.WRAPPERS:
            return self.wrapper(view, name, args, texts, cwd, stdin)
        if name in tools.PRIVILEGED:
            self.privileged(view, name, args, texts, cwd, stdin)
        elif name in tools.SHELLS:
            self.shell(view, args, texts, cwd, stdin)
        elif name in tools.INTERPRETERS:
            self.interpreter(view, name, args, texts, cwd, stdin)
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
        if view.fetcher:
            self.record_downloads(name, args, texts, cwd)
        if name == "tee" and stdin is not None and stdin.fetch:
            for loc in tools.write_locations(name, texts):
                self.a.downloads.update(self.paths(args[loc.index], 0, cwd) or [])
        if tools.installs_packages(name, texts):
            self.find(PACKAGE, view.text, "installs packages", (view,))
        if tools.administers(name, texts):
            self.find(ADMIN, view.text, "administers the system", (view,))
        if name in tools.CONTAINER_TOOLS:
            if tools.container_host_access(texts):
                self.find(PRIVILEGE, view.text, "gives a container access to the host", (view,))
            for loc in tools.container_mounts(texts):
                self.check_write(view, args[loc.index], loc.offset, cwd, None, "mounts", loc.stop)
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
            self.check_write(view, word, loc.offset, cwd, None, "changes", loc.stop, loc.removes)

    def record_downloads(
        self, name: str, args: list[Word], texts: list[str | None], cwd: Cwd
    ) -> None:
        named, urls = tools.downloads(name, texts)
        for loc in named:
            self.a.downloads.update(self.paths(args[loc.index], loc.offset, cwd) or [])
        for index in urls:
            url = texts[index]
            if url is not None and cwd is not None:
                saved = tools.url_file_name(url)
                self.a.downloads.update(os.path.normpath(os.path.join(d, saved)) for d in cwd)

    def runs_download(self, view: View, word: Word, cwd: Cwd) -> bool:
        """Record remote-code when ``word`` names a file downloaded earlier in the command."""
        if not self.a.downloads or word.text is None:
            return False
        if not set(self.paths(word, 0, cwd) or []) & self.a.downloads:
            return False
        self.find(REMOTE, view.text, "runs a file downloaded earlier in the command")
        return True

    def wrapper(
        self,
        view: View,
        name: str,
        args: list[Word],
        texts: list[str | None],
        cwd: Cwd,
        stdin: Stdin | None,
    ) -> Cwd:
        view.neutral = True
        spec = tools.WRAPPERS[name]
        parsed = tools.parse_options(texts, spec.spec, permute=False)
        if name == "command" and parsed.has("v", "V"):
            return cwd
        inner_cwd = cwd
        for opt in parsed.values("C", "chdir") if name == "env" else []:
            found = self.paths(args[opt.index], opt.offset, cwd)
            inner_cwd = None if found is None else frozenset(found)
        for opt in parsed.values("o", "output") if name == "time" else []:
            self.check_write(view, args[opt.index], opt.offset, cwd)
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
                self.generated(view, next(word for word in rest if word.text is None))
                return cwd
            joined = " ".join(word.text or "" for word in rest)[code[0].offset :]
            self.script(joined, inner_cwd, stdin, view)
            return cwd
        if start >= len(args):
            return cwd
        inner = list(args[start:])
        if name == "xargs":
            inner = self.xargs_words(parsed, args, inner)
        end = self.run(inner, inner_cwd, stdin, view, start + 1)
        return end if name in ("command", "builtin", "time") else cwd

    def xargs_words(self, parsed: tools.Parsed, args: list[Word], inner: list[Word]) -> list[Word]:
        """The command xargs runs, with the words it reads from input unknown."""
        replace = [opt for opt in parsed.options if opt.name in tools.XARGS_REPLACE]
        if not replace:
            return [*inner, _UNKNOWN]
        opt = replace[0]
        marker = "{}"
        if opt.index >= 0:
            marker = (args[opt.index].text or "{}")[opt.offset :] or "{}"
        return [_UNKNOWN if w.text is None or marker in w.text else w for w in inner]

    def privileged(
        self,
        view: View,
        name: str,
        args: list[Word],
        texts: list[str | None],
        cwd: Cwd,
        stdin: Stdin | None,
    ) -> None:
        self.find(PRIVILEGE, view.text, "runs with elevated privileges", (view,))
        spec = tools.PRIVILEGED[name].spec
        if name in ("su", "runuser"):
            for opt in tools.parse_options(texts, spec).values(*tools.PRIVILEGED_CODE_OPTIONS):
                self.code(view, args[opt.index], opt.offset, cwd)
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
                self.generated(view, unknown)
            else:
                self.script(" ".join(word.text or "" for word in rest), cwd, stdin, view)
            return
        self.run(args[start:], cwd, stdin, view, start + 1)

    def code(self, view: View, word: Word, offset: int, cwd: Cwd) -> Cwd:
        """``word[offset:]`` is shell code run by ``view``."""
        if word.text is None:
            self.generated(view, word)
            return cwd
        return self.script(word.text[offset:], cwd, None, view)

    def shell(
        self, view: View, args: list[Word], texts: list[str | None], cwd: Cwd, stdin: Stdin | None
    ) -> None:
        flags = ["-" + t[1:] if t and t[:1] == "+" and len(t) > 1 else t for t in texts]
        parsed = tools.parse_options(flags, tools.SHELL_OPTIONS, permute=False)
        operand = parsed.operands[0] if parsed.operands else None
        if parsed.has("c"):
            if operand is not None:
                self.code(view, args[operand], 0, cwd)
            return
        if parsed.has("s") or operand is None or texts[operand] in ("-", "/dev/stdin"):
            self.stdin_program(view, stdin, cwd, shell=True)
        elif args[operand].subst:
            self.generated(view, args[operand])
        else:
            self.runs_download(view, args[operand], cwd)

    def interpreter(
        self,
        view: View,
        name: str,
        args: list[Word],
        texts: list[str | None],
        cwd: Cwd,
        stdin: Stdin | None,
    ) -> None:
        spec = tools.INTERPRETERS[name]
        parsed = tools.parse_options(texts, spec.spec, permute=False)
        codes = [opt for opt in parsed.options if opt.name in spec.code and opt.index >= 0]
        for opt in codes:
            if args[opt.index].text is None:
                self.generated(view, args[opt.index])
        modules = [opt for opt in parsed.options if opt.name == spec.module and opt.index >= 0]
        if modules:
            opt = modules[0]
            module = args[opt.index]
            if opt.offset:
                module = Word([Part((module.text or "")[opt.offset :], LIT)], -1, -1)
                if args[opt.index].text is None:
                    module = _UNKNOWN
            self.run([module, *args[opt.index + 1 :]], cwd, stdin, view, opt.index + 1)
            return
        if name == "perl" and any(opt.name == "i" for opt in parsed.options):
            files = tools.parse_options(texts, spec.spec).operands[(0 if codes else 1) :]
            for index in files:
                self.check_write(view, args[index], 0, cwd)
        if codes:
            return
        operand = parsed.operands[0] if parsed.operands else None
        if operand is None or texts[operand] in ("-", "/dev/stdin"):
            self.stdin_program(view, stdin, cwd, shell=False)
        elif args[operand].subst:
            self.generated(view, args[operand])
        else:
            self.runs_download(view, args[operand], cwd)

    # Commands with their own handling: (walker, view, name, args, texts, cwd, stdin) -> cwd.

    def _eval(
        self, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
    ) -> Cwd:
        unknown = next((word for word in args if word.text is None), None)
        if unknown is not None:
            self.generated(view, unknown, "evaluates code")
            return cwd
        return self.script(" ".join(t or "" for t in texts), cwd, None, view) if args else cwd

    def _source(
        self, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd,
        stdin: Stdin | None,
    ) -> Cwd:  # fmt: skip
        if args and args[0].subst:
            self.generated(view, args[0])
        elif args and texts[0] in ("/dev/stdin", "-", "/proc/self/fd/0"):
            self.stdin_program(view, stdin, cwd, shell=True)
        elif args:
            self.runs_download(view, args[0], cwd)
        return cwd

    def _trap(
        self, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
    ) -> Cwd:
        if args and texts[0] not in ("-", "-p", "-l", "--", "-P"):
            self.code(view, args[0], 0, cwd)
        return cwd

    def _cd(
        self, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
    ) -> Cwd:
        operands = [i for i, t in enumerate(texts) if t is None or t == "-" or t[:1] != "-"]
        stack = self.a.dirs
        if name == "popd":
            return stack.pop() if stack and not operands else None
        if name == "pushd" and not operands:
            return None
        word = args[operands[0]] if operands else None
        if word is None:
            target: Cwd = frozenset({self.a.home})
        elif word.text == "-":
            target = self.a.oldpwd
        elif name == "pushd" and (word.text or "+")[:1] in "+-":
            return None
        else:
            found = self.paths(word, 0, cwd)
            target = None if found is None else frozenset(found)
        if name == "pushd":
            stack.append(cwd)
        self.a.oldpwd = cwd
        return target

    def _kill(
        self, view: View, name: str, args: list[Word], texts: list[str | None], cwd: Cwd, _: Any
    ) -> Cwd:
        if any(t in ("-l", "-L", "--list", "--table") for t in texts):
            return cwd
        parsed = tools.parse_options(texts, tools.OptSpec("sn", frozenset({"signal"}), True))
        targets = [args[i] for i in parsed.operands]
        if not all(_job(word) for word in targets):
            self.find(ADMIN, view.text, "signals other processes", (view,))
        return cwd

    specials: ClassVar[dict[str, Callable[..., Cwd]]] = {
        "eval": _eval,
        "source": _source,
        ".": _source,
        "trap": _trap,
        "cd": _cd,
        "pushd": _cd,
        "popd": _cd,
        "kill": _kill,
    }


def _job(word: Word) -> bool:
    """A job of this shell: ``%1`` or ``$!``."""
    if word.text is not None:
        return word.text.startswith("%")
    return len(word.parts) == 1 and word.parts[0].text == "!"


def _braces(text: str, limit: int = 64) -> list[str]:
    """Expand ``a{b,c}d`` into ``abd acd`` (comma lists only; enough for paths)."""
    match = re.search(r"\{([^{}]*,[^{}]*)\}", text)
    if match is None:
        return [text]
    results: list[str] = []
    for choice in match.group(1).split(","):
        results.extend(_braces(text[: match.start()] + choice + text[match.end() :], limit))
        if len(results) >= limit:
            break
    return results[:limit]


def analyse(command: str, workspace: str, start: str | None = None) -> Analysis:
    """Analyse ``command`` run from ``start`` (default: the workspace itself)."""
    analysis = Analysis(workspace)
    if "\x00" in command:
        analysis.error = "contains a NUL byte"
        return analysis
    source = encode(command)
    root = parse(source)
    if root.has_error:
        analysis.error = "is not valid shell syntax"
        return analysis
    Walker(analysis, source).stmt(root, frozenset({start or workspace}))
    return analysis
