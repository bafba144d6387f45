"""Every row of tests/data/auto_corpus.tsv is decided as labelled (one test per row)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest

from agent_runner.config import ExecutionMode
from agent_runner.policy import decide

CORPUS = Path(__file__).resolve().parents[1] / "data" / "auto_corpus.tsv"
WORKSPACE = "/home/tester/project"
HOME = "/home/tester"
RULES = {
    "default",
    "unparsable",
    "dynamic-command",
    "package-install",
    "privilege",
    "remote-code",
    "outside-workspace",
    "system-admin",
}


class Row(NamedTuple):
    line: int
    mode: str
    rule: str
    command: str


def _unescape(text: str) -> str:
    """``\\n`` newline, ``\\t`` tab, ``\\\\`` backslash; any other backslash is literal."""
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def load_corpus() -> list[Row]:
    rows = []
    for number, line in enumerate(CORPUS.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        mode, rule, command = line.split("\t", 2)
        rows.append(Row(number, mode, rule, _unescape(command)))
    return rows


ROWS = load_corpus()


def _id(row: Row) -> str:
    shown = row.command.replace("\n", "⏎").replace("\t", "⇥") or "<empty>"
    if len(shown) > 60:
        shown = shown[:59] + "…"
    return f"{row.rule}: {shown}"


@pytest.fixture(autouse=True)
def fixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", HOME)
    monkeypatch.delenv("TMPDIR", raising=False)


@pytest.mark.parametrize("row", ROWS, ids=[_id(row) for row in ROWS])
def test_corpus_row_is_decided_as_labelled(row: Row) -> None:
    decision = decide(row.command, cwd=WORKSPACE)
    assert (decision.mode.value, decision.rule) == (row.mode, row.rule), (
        f"line {row.line}: {row.command!r} -> {decision.reason}"
    )
    assert decision.mode in (ExecutionMode.LOCAL, ExecutionMode.SANDBOX)
    assert decision.reason
    assert "\n" not in decision.reason


def test_corpus_is_large_and_covers_every_rule_on_both_sides() -> None:
    assert len(ROWS) >= 300
    counts = Counter(row.rule for row in ROWS)
    assert set(counts) == RULES
    modes = Counter(row.mode for row in ROWS)
    assert modes["local"] >= 100
    assert modes["sandbox"] >= 100
    assert all(row.mode == "local" for row in ROWS if row.rule == "default")
    assert all(row.mode == "sandbox" for row in ROWS if row.rule != "default")


def test_corpus_has_no_duplicate_commands() -> None:
    seen = Counter(row.command for row in ROWS)
    assert [command for command, count in seen.items() if count > 1] == []
