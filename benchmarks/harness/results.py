"""Rows and their statistics; a measurement that fails becomes a skipped row, not an abort.

A row is a dict (it travels from workers as JSON): ``row`` (the kind: warm, cold...),
``contender``, ``unit``, ``n``, ``median``, ``p90`` (with at least 5 samples), ``samples``
and ``note``.
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.config import log


@dataclass
class Measurement:
    samples: list[float]
    note: str = ""
    n: int | None = None
    unit: str = "ms"


Measured = list[float] | Measurement


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def make_row(kind: str, contender: str, measured: Measured, note: str = "") -> dict[str, Any]:
    m = measured if isinstance(measured, Measurement) else Measurement(measured)
    samples = m.samples
    return {
        "row": kind,
        "contender": contender,
        "unit": m.unit,
        "n": m.n if m.n is not None else len(samples),
        "median": statistics.median(samples) if samples else None,
        "p90": percentile(samples, 0.9) if len(samples) >= 5 else None,
        "samples": [round(s, 3) for s in samples],
        "note": "; ".join(part for part in (note, m.note) if part),
    }


def skipped_row(kind: str, contender: str, reason: str) -> dict[str, Any]:
    return {
        "row": kind,
        "contender": contender,
        "unit": "ms",
        "n": 0,
        "median": None,
        "p90": None,
        "samples": [],
        "note": f"skipped: {reason}",
    }


def describe(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text[:300]}"


class Results:
    """Collects rows; a measurement that raises becomes a skipped row, not an abort."""

    def __init__(self, sink: Path | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.sink = sink

    def add(self, *rows: dict[str, Any]) -> None:
        """Record rows; a worker also saves them at once, so a timeout loses none."""
        self.rows.extend(rows)
        if self.sink is not None:
            self.sink.write_text(json.dumps({"rows": self.rows, "versions": {}, "error": ""}))

    @contextlib.contextmanager
    def phase(self, kinds: tuple[str, ...], contenders: tuple[str, ...]) -> Iterator[None]:
        """Shared set-up for some rows: if it fails, those rows are skipped, the rest go on."""
        try:
            yield
        except Exception as error:
            done = {(row["row"], row["contender"]) for row in self.rows}
            missing = [(k, c) for k in kinds for c in contenders if (k, c) not in done]
            log(f"set-up for {', '.join(contenders)} failed: {describe(error)}")
            traceback.print_exc(file=sys.stderr)
            self.add(*(skipped_row(k, c, describe(error)) for k, c in missing))

    def _failed(self, kind: str, names: list[str], error: Exception) -> None:
        log(f"{kind} / {', '.join(names)} failed: {describe(error)}")
        traceback.print_exc(file=sys.stderr)
        self.add(*(skipped_row(kind, name, describe(error)) for name in names))

    def attempt_group(
        self, kind: str, notes: dict[str, str], measure: Callable[[], dict[str, Measured]]
    ) -> None:
        """Several contenders measured together (interleaved); ``notes`` names them."""
        log(f"{', '.join(notes)}: {kind}")
        try:
            measured = measure()
        except Exception as error:
            self._failed(kind, list(notes), error)
        else:
            self.add(*(make_row(kind, name, measured[name], note) for name, note in notes.items()))

    def attempt(
        self, kind: str, contender: str, measure: Callable[[], Measured], note: str = ""
    ) -> None:
        self.attempt_group(kind, {contender: note}, lambda: {contender: measure()})

    async def attempt_group_async(
        self,
        kind: str,
        notes: dict[str, str],
        measure: Callable[[], Awaitable[dict[str, Measured]]],
    ) -> None:
        log(f"{', '.join(notes)}: {kind}")
        try:
            measured = await measure()
        except Exception as error:
            self._failed(kind, list(notes), error)
        else:
            self.add(*(make_row(kind, name, measured[name], note) for name, note in notes.items()))

    async def attempt_async(
        self,
        kind: str,
        contender: str,
        measure: Callable[[], Awaitable[Measured]],
        note: str = "",
    ) -> None:
        async def one() -> dict[str, Measured]:
            return {contender: await measure()}

        await self.attempt_group_async(kind, {contender: note}, one)
