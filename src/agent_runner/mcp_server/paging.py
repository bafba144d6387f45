"""A reply's page of a process's output: both streams within one byte budget, one cursor.

The cursor is ``"<stdout offset>.<stderr offset>"``: byte offsets into each stream since it
began (:class:`agent_runner.Process` keeps them valid for ever). A page ends on a UTF-8
character boundary, so valid UTF-8 output joined page by page is the output, byte for byte;
bytes that are not UTF-8 are shown as U+FFFD.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent_runner.errors import InvalidSetting
from agent_runner.process import Process
from agent_runner.results import Stream

MIN_PAGE_BYTES = 16
"""The smallest budget that always holds a character of each stream."""


@dataclass(frozen=True)
class Cursor:
    stdout: int = 0
    stderr: int = 0

    def __str__(self) -> str:
        return f"{self.stdout}.{self.stderr}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        out, dot, err = text.partition(".")
        if not (dot and out.isdigit() and err.isdigit()):
            raise InvalidSetting(f"cursor {text!r}: expected the cursor a previous reply gave")
        return cls(int(out), int(err))

    def at(self, stream: Stream) -> int:
        return self.stdout if stream is Stream.STDOUT else self.stderr


@dataclass(frozen=True)
class OutputPage:
    stdout: str
    stderr: str
    next: Cursor
    truncated: bool
    """Output beyond ``next`` exists already."""
    dropped: int


def char_boundary(data: bytes) -> int:
    """The length of ``data`` without a UTF-8 sequence cut off at its end."""
    for back in range(1, min(4, len(data)) + 1):
        byte = data[-back]
        if byte < 0x80:
            return len(data)
        if byte >= 0xC0:
            needed = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            return len(data) if back >= needed else len(data) - back
    return len(data)


def page(process: Process, cursor: Cursor, budget: int) -> OutputPage:
    """Up to ``budget`` bytes of stdout and stderr from ``cursor``.

    When both streams have more than fits, stderr gets a quarter of the budget (or what
    stdout leaves free), stdout the rest.
    """
    budget = max(budget, MIN_PAGE_BYTES)
    left = {s: max(0, process.total(s) - cursor.at(s)) for s in Stream}
    err = min(left[Stream.STDERR], max(budget // 4, budget - left[Stream.STDOUT]))
    shares = {Stream.STDOUT: budget - err, Stream.STDERR: err}
    texts: dict[Stream, str] = {}
    ends: dict[Stream, int] = {}
    dropped = 0
    for stream in Stream:
        start = cursor.at(stream)
        if shares[stream] <= 0:
            texts[stream], ends[stream] = "", start
            continue
        got = process.read(start, shares[stream], stream)
        data = got.data
        ended = not process.running and got.next_cursor >= process.total(stream)
        if not ended:
            data = data[: char_boundary(data)]
        texts[stream] = data.decode("utf-8", "replace")
        ends[stream] = got.next_cursor - (len(got.data) - len(data))
        dropped += got.dropped
    after = Cursor(ends[Stream.STDOUT], ends[Stream.STDERR])
    truncated = any(process.total(s) > after.at(s) for s in Stream)
    return OutputPage(texts[Stream.STDOUT], texts[Stream.STDERR], after, truncated, dropped)


def available(process: Process, cursor: Cursor) -> int:
    """Bytes of output beyond ``cursor`` (kept or not)."""
    return sum(max(0, process.total(s) - cursor.at(s)) for s in Stream)
