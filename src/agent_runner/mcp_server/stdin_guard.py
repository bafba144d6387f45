"""AUTO mode judges what is typed into a host shell, as it judges the command that started it.

``bash`` on its own is harmless, so AUTO runs it on the host; ``sudo rm -rf /`` typed into it
afterwards is the same risk as ``bash -c "sudo rm -rf /"``, which AUTO sends to the sandbox.
So when an AUTO session runs a process on the host that reads *code* from its stdin, every
``write_stdin`` to it is judged before it is passed on:

- a **shell** reading commands (``bash``, ``sh -s``, ``zsh -i``, ``cat | bash``, ...): the
  complete lines written are judged by :func:`agent_runner.policy.decide` together with the
  lines accepted before them (so a ``cd /etc`` sent earlier still counts); a line is passed
  on once it is complete, and any input AUTO would send to the sandbox is refused whole;
- a **REPL** of another language (``python3``, ``node``, ``irb``, ``sqlite3``, ...): the
  policy cannot read that language, and it fails closed on what it cannot read, so input is
  refused (start it with ``mode="sandbox"``).

Input to anything else (``cat``, ``sort``, a prompt) is data, not code, and passes.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from agent_runner.errors import AgentRunnerError
from agent_runner.modes import ExecutionMode
from agent_runner.policy import Decision


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


SHELLS = _words("sh bash dash zsh ksh mksh ash yash fish rbash busybox")
REPLS = _words(
    "python python2 python3 pypy pypy3 ipython node nodejs deno bun irb pry ruby perl php "
    "lua luajit ghci R julia erl iex scala"
)
"""Interpreters that read a program from stdin when given no script (or ``-i``)."""
CLIENTS = _words("sqlite3 psql mysql mariadb mongo mongosh redis-cli")
"""Database clients: their operand names a database, and what they read can run commands."""
WRAPPERS = _words("env exec command builtin nohup nice stdbuf timeout rlwrap time")
OPERATORS = frozenset({"|", "||", "&&", ";", "&", "|&", "(", ")", ";;", "\n"})
HISTORY_LIMIT = 64 * 1024
"""Accepted input kept as context for judging the next; past it, input is refused."""

Kind = Literal["shell", "repl"]
Judge = Callable[[str], Decision]


class InputRefused(AgentRunnerError):
    """AUTO mode will not pass this input to a host process."""


def _program(words: list[str]) -> tuple[str, list[str]] | None:
    """The program a simple command runs and its arguments, past assignments and wrappers."""
    index = 0
    while index < len(words):
        word = words[index]
        name = os.path.basename(word)
        if "=" in word and not word.startswith("=") and name == word:
            index += 1
        elif name in WRAPPERS:
            index += 1
            while index < len(words) and words[index].startswith("-"):
                index += 1
            if name in ("timeout", "nice") and index < len(words) and words[index][:1].isdigit():
                index += 1
        else:
            return name, words[index + 1 :]
    return None


def _reads_code(name: str, args: list[str]) -> Kind | None:
    operands = [a for a in args if not a.startswith("-")]
    flags = "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))
    if name in SHELLS:
        if "c" in flags and "s" not in flags:
            return None
        return "shell" if not operands or "s" in flags or "i" in flags else None
    if name in CLIENTS:
        return None if any(flag in flags for flag in "ce") else "repl"
    base = name.rstrip("0123456789.")
    if name in REPLS or base in REPLS:
        if any(flag in flags for flag in "ce") and "i" not in flags:
            return None
        return "repl" if not operands or "i" in flags or operands[0] == "-" else None
    return None


def reads_code(command: str) -> tuple[Kind, str] | None:
    """Whether ``command`` runs a shell or REPL that reads code from its stdin, and which."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace = " \t\r"
        lexer.whitespace_split = True
        tokens = list(lexer)
    except ValueError:
        return None
    simple: list[str] = []
    found: tuple[Kind, str] | None = None
    for token in [*tokens, ";"]:
        if token in OPERATORS or set(token) <= set("|&;()<>\n"):
            program = _program(simple)
            kind = _reads_code(*program) if program is not None else None
            if kind is not None and (found is None or kind == "shell"):
                found = (kind, program[0] if program else "")
            simple = []
        else:
            simple.append(token)
    return found


@dataclass
class StdinGuard:
    """Judges the input written to one host process that reads code."""

    kind: Kind
    program: str
    judge: Judge
    _pending: str = ""
    _history: list[str] = field(default_factory=list)
    _size: int = 0

    def admit(self, data: str, *, final: bool = False) -> str:
        """What of ``data`` may be passed on now; raises :class:`InputRefused`.

        ``final`` (stdin is about to close) judges and releases an unfinished last line.
        """
        if self.kind == "repl":
            if data:
                raise InputRefused(
                    f"refused: {self.program} runs on the host and reads code that AUTO mode "
                    "cannot judge; start it in the sandbox (run_command with mode='sandbox')"
                )
            return ""
        text = self._pending + data
        cut = len(text) if final else text.rfind("\n") + 1
        ready, rest = text[:cut], text[cut:]
        if not ready:
            self._pending = rest
            return ""
        if self._size + len(ready) > HISTORY_LIMIT:
            raise InputRefused(
                f"refused: more than {HISTORY_LIMIT} bytes typed into host {self.program}, too "
                "much for AUTO mode to judge as one script; start it in the sandbox"
            )
        decision = self.judge("".join(self._history) + ready)
        if decision.mode is ExecutionMode.SANDBOX:
            raise InputRefused(
                f"refused: typed into {self.program} on the host, {decision.reason} "
                f"({decision.rule}); AUTO mode would run that in the sandbox, so start the "
                "shell there (run_command with mode='sandbox')"
            )
        self._history.append(ready if ready.endswith("\n") else ready + "\n")
        self._size += len(ready)
        self._pending = rest
        return ready
