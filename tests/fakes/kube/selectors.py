"""Label and field selectors, parsed and matched the way the apiserver does.

Mirrors k8s.io/apimachinery/pkg/labels (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``,
``!key``, comma meaning AND) and pkg/fields (``=``, ``==``, ``!=`` over the few fields
each resource indexes: ``metadata.name`` and ``metadata.namespace`` everywhere, plus
``status.phase``, ``spec.nodeName`` and friends for pods). A selector the apiserver would
refuse is a 400 here too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.kube.status import bad_request

Object = dict[str, Any]

_SET = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*(?:(in|notin)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op == "in":
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_labels(text: str | None) -> list[Requirement]:
    if not text:
        return []
    requirements = []
    for part in _split_top_level(text):
        equality = _EQ.match(part)
        if equality:
            key, op, value = equality.groups()
            requirements.append(
                Requirement(key, "notin" if op == "!=" else "in", frozenset({value}))
            )
            continue
        set_based = _SET.match(part)
        if not set_based:
            raise bad_request(f"unable to parse requirement: {part.strip()!r}")
        negated, key, op, values = set_based.groups()
        if op:
            if negated:
                raise bad_request(f"unable to parse requirement: {part.strip()!r}")
            items = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, items))
        else:
            requirements.append(Requirement(key, "!" if negated else "exists"))
    return requirements


def labels_match(requirements: list[Requirement], obj: Object) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def _get(obj: Object, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


COMMON_FIELDS = ("metadata.name", "metadata.namespace")
POD_FIELDS = (
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
NAMESPACE_FIELDS = ("status.phase",)


def parse_fields(text: str | None, supported: tuple[str, ...]) -> Callable[[Object], bool]:
    if not text:
        return lambda obj: True
    terms: list[tuple[str, bool, str]] = []
    for part in text.split(","):
        if not part.strip():
            continue
        match = _EQ.match(part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        path, op, value = match.groups()
        if path not in COMMON_FIELDS + supported:
            raise bad_request(f"field label not supported: {path}")
        terms.append((path, op != "!=", value))

    def matches(obj: Object) -> bool:
        return all((_get(obj, path) == value) == equal for path, equal, value in terms)

    return matches
