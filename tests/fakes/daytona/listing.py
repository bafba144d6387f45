"""Finding sandboxes: by id or name, and the filtered, cursor-paged list.

``GET /sandbox`` follows ``sandbox-typeorm-search.adapter.ts`` (v0.190): labels filter by
containment (every given pair must match), id and name by case-insensitive prefix;
destroyed sandboxes never show, errored ones being deleted only with
``includeErroredDeleted``; newest first with the id as tie-breaker; ``limit`` 1..200
(default 100); one extra row is fetched to know whether ``nextCursor`` (base64 of
``{"sortValue", "id"}`` of the last row) is needed, so the last page has ``null``.
A lookup by id or name never finds a destroyed sandbox (404).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from typing import Any

from tests.fakes.daytona.errors import ApiError
from tests.fakes.daytona.models import Desired, SandboxRecord, State

ERRORED = (State.ERROR, State.BUILD_FAILED)


def find(records: Mapping[str, SandboxRecord], id_or_name: str) -> SandboxRecord:
    """By id first, then by name; destroyed (or errored and being deleted) ones are 404."""

    def visible(record: SandboxRecord | None) -> bool:
        return (
            record is not None
            and record.state is not State.DESTROYED
            and not (record.state in ERRORED and record.desired is Desired.DESTROYED)
        )

    record = records.get(id_or_name)
    if not visible(record):
        record = next((r for r in records.values() if r.name == id_or_name and visible(r)), None)
    if record is None:
        raise ApiError(404, f"Sandbox with ID or name {id_or_name} not found")
    return record


def page(
    records: Iterable[SandboxRecord],
    query: Mapping[str, str],
    states: list[str],
    toolbox_url: str,
) -> dict[str, Any]:
    """One page of ``GET /sandbox`` as ``ListSandboxesResponse``."""
    try:
        limit = int(query.get("limit", "100"))
    except ValueError:
        raise ApiError(400, "limit must be an integer number") from None
    if limit > 200:
        raise ApiError(400, "limit must not be greater than 200")
    if limit < 1:
        raise ApiError(400, "limit must not be less than 1")
    labels: dict[str, str] = {}
    if query.get("labels"):
        try:
            labels = json.loads(query["labels"])
        except ValueError:
            raise ApiError(400, "Invalid labels JSON format") from None
    wanted = {s for s in states if s != State.DESTROYED.value} or {
        s.value for s in State if s is not State.DESTROYED
    }
    deleted_errors = query.get("includeErroredDeleted") == "true"
    id_prefix, name_prefix = query.get("id", "").lower(), query.get("name", "").lower()
    rows = [
        r
        for r in records
        if r.state.value in wanted
        and (r.state not in ERRORED or deleted_errors or r.desired is not Desired.DESTROYED)
        and all(r.labels.get(k) == v for k, v in labels.items())
        and r.id.lower().startswith(id_prefix)
        and r.name.lower().startswith(name_prefix)
    ]
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    if query.get("cursor"):
        try:
            cursor = json.loads(base64.b64decode(query["cursor"]))
            after = (float(cursor["sortValue"]), str(cursor["id"]))
        except (ValueError, KeyError, TypeError):
            raise ApiError(400, f"Invalid cursor provided: {query['cursor']}") from None
        rows = [r for r in rows if (r.created_at, r.id) < after]
    shown = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = shown[-1]
        next_cursor = base64.b64encode(
            json.dumps({"sortValue": last.created_at, "id": last.id}).encode()
        ).decode()
    return {"items": [r.to_list_item(toolbox_url) for r in shown], "nextCursor": next_cursor}
