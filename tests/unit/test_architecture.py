"""The shape of the code, checked: no import circles, and backends that know nothing of
each other.

Every import counts, also those inside functions and under ``TYPE_CHECKING``: a circle
that only shows at run time is still two modules that are one idea split wrongly.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = "agent_runner"
SANDBOX_BACKENDS = ("docker", "daytona", "kubernetes")


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in (SRC / PACKAGE).rglob("*.py")}


def imports_of(name: str, path: Path, known: Iterable[str]) -> set[str]:
    """The project modules ``name`` imports (``from pkg import module`` counts as the module)."""
    known = set(known)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
                break
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports_of(name, path, found) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def room(module: str) -> str:
    """The folder-level unit a module belongs to: a backend package, or a top-level one."""
    parts = module.split(".")
    if parts[1:2] == ["backends"] and parts[2:3] and parts[2] in SANDBOX_BACKENDS:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def test_no_module_imports_itself_through_others():
    assert cycles(graph()) == []


def test_no_folder_imports_itself_through_others():
    rooms: dict[str, set[str]] = {}
    for source, targets in graph().items():
        rooms.setdefault(room(source), set()).update(
            room(target) for target in targets if room(target) != room(source)
        )
    assert cycles(rooms) == []


def test_sandbox_backends_know_nothing_of_each_other():
    edges = graph()
    for backend in SANDBOX_BACKENDS:
        package = f"{PACKAGE}.backends.{backend}"
        others = {f"{PACKAGE}.backends.{other}" for other in SANDBOX_BACKENDS if other != backend}
        for module, targets in edges.items():
            if module == package or module.startswith(package + "."):
                assert not {room(t) for t in targets} & others, module


def test_the_check_sees_a_circle(tmp_path):
    """The checker itself: a planted circle is found."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
