"""The runner's memory: RSS of the benchmark process and its children (such as docker CLI
clients a library keeps running) per open session; the sandboxes' own memory is not counted."""

from __future__ import annotations

from pathlib import Path

from harness.results import Measurement

MIB = 1024 * 1024


def process_tree_rss(pid: int) -> tuple[int, int]:
    """(RSS of ``pid``, RSS of ``pid`` and all its descendants), in bytes."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))

    def rss(p: int) -> int:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    own = rss(pid)
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss(p)
        stack.extend(parents.get(p, []))
    return own, total


def memory_measurement(before: tuple[int, int], after: tuple[int, int], n: int) -> Measurement:
    own = (after[0] - before[0]) / n / MIB
    tree = (after[1] - before[1]) / n / MIB
    note = f"process alone {own:.2f} MiB/session" if abs(tree - own) > 0.05 else ""
    return Measurement([tree], note=note, n=n, unit="MiB")
