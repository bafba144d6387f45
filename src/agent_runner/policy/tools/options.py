"""Option parsing, GNU style, for the command lines AUTO mode reads.

Every question about a tool starts by telling its options from its operands: which words
are option values (``-o FILE``), where the first operand is, whether ``--`` ended the
options. :func:`parse_options` answers that from an :class:`OptSpec` (which options take a
value); :mod:`~agent_runner.policy.tools.tables` holds a spec per tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

Args = Sequence[str | None]
"""A command's words after its name: ``str`` when known before it runs, else ``None``."""


def word_set(text: str) -> frozenset[str]:
    """The words of ``text``, separated by spaces: how the tables list names."""
    return frozenset(text.split())


@dataclass(frozen=True)
class Opt:
    """One option seen on a command line; ``index``/``offset`` locate its value, if any."""

    name: str
    index: int = -1
    offset: int = 0


@dataclass(frozen=True)
class OptSpec:
    """Which options take a value: short ones by letter, long ones by name (no ``--``)."""

    short: str = ""
    long: frozenset[str] = frozenset()
    numeric_flags: bool = False
    """``-10`` is a flag (``nice -10``, ``kill -9``), not a cluster of options."""


NO_VALUES = OptSpec()
"""No option takes a value."""


def opts(short: str = "", long: str = "", *, numeric_flags: bool = False) -> OptSpec:
    return OptSpec(short, word_set(long), numeric_flags)


@dataclass
class Parsed:
    options: list[Opt] = field(default_factory=list)
    operands: list[int] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        return any(opt.name in names for opt in self.options)

    def values(self, *names: str) -> list[Opt]:
        return [opt for opt in self.options if opt.name in names and opt.index >= 0]


def parse_options(args: Args, spec: OptSpec, *, start: int = 0, permute: bool = True) -> Parsed:
    """Split ``args[start:]`` into options and operand indices, GNU style.

    With ``permute`` options may follow operands (``cp a b -v``); without it the first
    operand ends the options (wrappers: ``sudo -u x cmd -v``) and ``operands`` holds only that
    index. A word whose text is unknown is an operand.
    """
    parsed = Parsed()
    index = start
    while index < len(args):
        word = args[index]
        if word is None or word == "-" or not word.startswith("-"):
            parsed.operands.append(index)
            if not permute:
                return parsed
        elif word == "--":
            rest = range(index + 1, len(args) if permute else min(index + 2, len(args)))
            parsed.operands.extend(rest)
            return parsed
        elif word.startswith("--"):
            name, eq, _ = word[2:].partition("=")
            if eq:
                parsed.options.append(Opt(name, index, len(name) + 3))
            elif name in spec.long and index + 1 < len(args):
                index += 1
                parsed.options.append(Opt(name, index))
            else:
                parsed.options.append(Opt(name))
        elif spec.numeric_flags and word[1:].isdigit():
            parsed.options.append(Opt(word[1:]))
        else:
            index = _cluster(args, index, spec, parsed)
        index += 1
    return parsed


def _cluster(args: Args, index: int, spec: OptSpec, parsed: Parsed) -> int:
    """Read ``-abc`` (a value-taking letter takes the rest, or the next word); returns the
    index of the last word used."""
    word = args[index] or ""
    for position, letter in enumerate(word[1:], start=1):
        if letter not in spec.short:
            parsed.options.append(Opt(letter))
            continue
        if position + 1 < len(word):
            parsed.options.append(Opt(letter, index, position + 1))
        elif index + 1 < len(args):
            index += 1
            parsed.options.append(Opt(letter, index))
        else:
            parsed.options.append(Opt(letter))
        break
    return index
