"""Shell words as AUTO mode sees them: the text each word has before the command runs, or
that it has none.

A word is a sequence of :class:`Part`: literal text (unescaped), quoted text (with the
quotes' own unescaping: ``'...'``, ``"..."``, ``$'...'``), and dynamic parts whose value is
only known at run time (``$VAR``, ``${VAR:-x}``, ``$(...)``, backticks, ``<(...)``). A word
with a dynamic part has ``text is None``, so everything that reads it can fail closed; the
parts stay available to the path resolution, which knows a few variables (``$HOME``,
``$PWD``...). :class:`Source` reads the words of one parse tree out of its source bytes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from tree_sitter import Node

from agent_runner.policy import tools

LIT, QUOTED, DYN = 0, 1, 2
"""Kinds of :class:`Part`: unquoted literal text, quoted text, known only at run time."""


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


UNKNOWN = Word([Part("", DYN)])
"""A word whose text is only known at run time, written nowhere (what ``xargs`` reads)."""
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


_PLAIN_EXPANSION = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-=][^}]*)?\}$")


class Source:
    """The source bytes of one parse tree, read as text and as words."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def between(self, start: int, end: int) -> str:
        """The text from byte ``start`` to byte ``end``."""
        return self.data[start:end].decode("utf-8", "replace")

    def text(self, node: Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

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
        """The text the words were written as ("" for words not written in this source)."""
        real = [word for word in words if word.start >= 0]
        if not real:
            return ""
        return self.between(real[0].start, max(w.end for w in real))
