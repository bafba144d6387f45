"""The three patch formats a PATCH request may carry, applied to a JSON object.

- ``application/merge-patch+json``: RFC 7386 (maps merge, ``null`` deletes, lists replace).
- ``application/strategic-merge-patch+json``: for labels and annotations the same as a
  merge patch; lists of objects that all carry a ``name`` (containers, env, volumes,
  volumeMounts) merge by that key, as their ``patchMergeKey`` says in k8s.io/api. The
  ``$patch``/``$retainKeys`` directives are not emulated. Custom resources refuse it
  with 415, as the apiserver does.
- ``application/json-patch+json``: RFC 6902 with ``add``, ``remove``, ``replace``,
  ``move``, ``copy`` and ``test``. A failed ``test`` is a 422 (the apiserver wraps the
  json-patch error with ``NewGenericServerResponse(422, ...)``); a patch that is not a
  JSON array is a 400.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.kube.status import ApiError, Cause, bad_request

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def strategic(target: Any, patch: Any) -> Any:
    if isinstance(patch, list) and isinstance(target, list) and _keyed(patch) and _keyed(target):
        result = copy.deepcopy(target)
        for item in patch:
            for index, existing in enumerate(result):
                if existing["name"] == item["name"]:
                    result[index] = strategic(existing, item)
                    break
            else:
                result.append(copy.deepcopy(item))
        return result
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = strategic(result.get(key), value)
    return result


def _keyed(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _unprocessable(message: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
        {"causes": [Cause("UnexpectedServerResponse", message).as_dict()]},
    )


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise _unprocessable(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(document: Any, parts: list[str], path: str) -> Any:
    node = document
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise _unprocessable(f"doc is missing path: {path}: missing value")
    return node


def _get(document: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return document
    parent = _parent(document, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise _unprocessable(f"doc is missing path: {path}: missing value")


def _add(document: Any, path: str, value: Any) -> None:
    parts = _pointer(path)
    parent = _parent(document, parts, path)
    last = parts[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise _unprocessable(f"add operation does not apply: index out of bounds: {path}")
    else:
        raise _unprocessable(f"doc is missing path: {path}: missing value")


def _remove(document: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(document, parts, path)
    last = parts[-1]
    if isinstance(parent, dict) and last in parent:
        return parent.pop(last)
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent.pop(int(last))
    raise _unprocessable(f"remove operation does not apply: doc is missing path: {path}")


def json_patch(document: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    document = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation:
            raise bad_request('json patch operation is missing "op"')
        op, path = operation["op"], operation.get("path", "")
        if op == "test":
            if _get(document, path) != operation.get("value"):
                raise _unprocessable(f"testing value {path} failed: test failed")
        elif op == "add":
            _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            _remove(document, path)
        elif op == "replace":
            _get(document, path)
            _remove(document, path)
            _add(document, path, copy.deepcopy(operation.get("value")))
        elif op == "move":
            _add(document, path, _remove(document, operation.get("from", "")))
        elif op == "copy":
            _add(document, path, copy.deepcopy(_get(document, operation.get("from", ""))))
        else:
            raise bad_request(f"Unexpected kind: {op}")
    return document
