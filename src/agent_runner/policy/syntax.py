"""The tree-sitter-bash parser, and the one workaround it needs.

Everything AUTO mode reads of a command comes from this parse tree; a tree with any
``ERROR`` or ``MISSING`` node is not analysed (the command fails closed). Parsers are not
thread-safe, so each thread gets its own, created on first use.
"""

from __future__ import annotations

import threading

from tree_sitter import Language, Node, Parser

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
