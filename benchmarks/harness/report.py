"""The report: one Markdown table, rows in a fixed order, each against the target the issue
sets for ours or the median measured earlier on this machine."""

from __future__ import annotations

from typing import Any

ROW_ORDER = ("warm", "20 sequential", "cold", "8 concurrent", "memory")
CONTENDER_ORDER = ("host", "docker-py", "llm-sandbox", "SWE-ReX", "epicbox", "ours")

# (row, contender): what the issue asks of ours, as (comparison, milliseconds).
TARGETS: dict[tuple[str, str], tuple[str, float]] = {
    ("warm", "ours"): ("<", 3.0),
    ("20 sequential", "ours"): ("<", 50.0),
    ("cold", "ours, pool_size=2"): ("<", 137.0),
    ("cold", "ours, no pool"): ("<=", 333.0),
    ("8 concurrent", "ours, pool_size=8"): ("<", 536.0),
}
# (row, contender): medians measured earlier on this machine, quoted in the issue.
EARLIER: dict[tuple[str, str], str] = {
    ("warm", "host bash"): "1.2 ms",
    ("warm", "docker-py exec_run"): "44 ms",
    ("cold", "docker-py run+exec+remove"): "333 ms",
    ("cold", "docker-py run+exec+remove, network none"): "239 ms",
    ("warm", "SWE-ReX execute"): "3.3 ms",
    ("20 sequential", "SWE-ReX execute"): "53 ms",
    ("cold", "SWE-ReX"): "945 ms",
    ("cold", "epicbox.run"): "137 ms",
    ("8 concurrent", "epicbox.run"): "536 ms",
    ("warm", "llm-sandbox execute_command"): "45 ms",
    ("cold", "llm-sandbox"): "15.3 s",
}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "–"
    if unit.startswith("MiB"):
        per = unit.removeprefix("MiB")
        return f"{value:.1f} {unit}" if abs(value) >= 1 else f"{value * 1024:.0f} KiB{per}"
    if value >= 10000:
        return f"{value / 1000:.1f} s"
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def verdict(row: dict[str, Any]) -> str:
    key = (row["row"], row["contender"])
    if key in TARGETS:
        comparison, limit = TARGETS[key]
        text = f"target {comparison} {fmt(limit, 'ms')}"
        if row["median"] is None:
            return text
        met = row["median"] < limit if comparison == "<" else row["median"] <= limit
        return f"{text}: {'met' if met else 'MISSED'}"
    if key in EARLIER:
        return f"earlier: {EARLIER[key]}"
    return ""


def sort_key(indexed: tuple[int, dict[str, Any]]) -> tuple[int, int, int]:
    index, row = indexed
    kind = ROW_ORDER.index(row["row"]) if row["row"] in ROW_ORDER else len(ROW_ORDER)
    contender = next(
        (i for i, prefix in enumerate(CONTENDER_ORDER) if row["contender"].startswith(prefix)),
        len(CONTENDER_ORDER),
    )
    return kind, contender, index


def render(report: dict[str, Any]) -> str:
    meta = report["meta"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(meta["versions"].items()))
    lines = [
        f"### Sandbox latency, {meta['date']}",
        "",
        f"{meta['host']}: {meta['cpus']} CPUs, Docker {meta['docker']}, Python "
        f"{meta['python']}; image `{meta['image']}` ({meta['image_id']}, "
        f"{meta['image_size']}); {versions}. One run, {meta['duration_s']:.0f} s in total.",
        "",
        "| Row | Contender | Median | p90 | N | Target / earlier | Notes |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    for _, row in sorted(enumerate(report["rows"]), key=sort_key):
        unit = row["unit"] if row["unit"] == "ms" else f"{row['unit']}/session"
        cells = [
            row["row"],
            row["contender"],
            fmt(row["median"], unit),
            fmt(row["p90"], unit),
            str(row["n"] or "–"),
            verdict(row),
            row["note"].replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for name, error in report["skipped"].items():
        lines.append(f"| – | {name} | – | – | – | | skipped: {error.replace('|', '/')} |")
    return "\n".join(lines)
