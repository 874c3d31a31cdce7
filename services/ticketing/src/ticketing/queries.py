"""Read-side queries over the ticket list (every query is scoped to one tenant)."""

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from helpdesk_runtime.db import Connection

MAX_PAGE = 100


class Sort(StrEnum):
    UPDATED = "updated_at"
    OPENED = "opened_at"
    PRIORITY = "priority_rank"
    NUMBER = "number"


class CursorError(ValueError):
    """The cursor was not made by this API (or by this sort)."""


@dataclass(frozen=True)
class TicketFilter:
    """What an agent's list asks for; empty fields do not filter."""

    statuses: tuple[str, ...] = ()
    priorities: tuple[str, ...] = ()
    assignee_id: str | None = None
    group_id: str | None = None
    requester_id: str | None = None
    tags: tuple[str, ...] = ()  # all of them
    text: str | None = None
    opened_from: datetime | None = None
    opened_to: datetime | None = None
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    unassigned: bool = False


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, clause: str, *values: Any) -> None:
        refs = [f"${len(self.args) + i + 1}" for i in range(len(values))]
        self.clauses.append(clause.format(*refs))
        self.args.extend(values)


def _where(tenant_id: str, f: TicketFilter) -> _Where:
    w = _Where()
    w.add("tenant_id = {}", tenant_id)
    if f.statuses:
        w.add("status = ANY({})", list(f.statuses))
    if f.priorities:
        w.add("priority = ANY({})", list(f.priorities))
    if f.assignee_id:
        w.add("assignee_id = {}", f.assignee_id)
    if f.unassigned:
        w.add("assignee_id IS NULL")
    if f.group_id:
        w.add("group_id = {}", f.group_id)
    if f.requester_id:
        w.add("requester_id = {}", f.requester_id)
    if f.tags:
        w.add("tags @> {}::text[]", [t.strip().lower() for t in f.tags])
    if f.text:
        w.add("search @@ websearch_to_tsquery('simple', {})", f.text)
    for column, low, high in (
        ("opened_at", f.opened_from, f.opened_to),
        ("updated_at", f.updated_from, f.updated_to),
    ):
        if low:
            w.add(f"{column} >= {{}}", low)
        if high:
            w.add(f"{column} < {{}}", high)
    return w


def _encode(sort: Sort, value: Any, ticket_id: UUID) -> str:
    raw = json.dumps([sort.value, value.isoformat() if isinstance(value, datetime) else value,
                      str(ticket_id)])  # fmt: skip
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: Sort) -> tuple[Any, UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, value, ticket_id = json.loads(base64.urlsafe_b64decode(padded))
        if made_for != sort.value:
            raise CursorError("the cursor belongs to another sort order")
        if sort in (Sort.UPDATED, Sort.OPENED):
            value = datetime.fromisoformat(value)
        elif not isinstance(value, int):
            raise CursorError("malformed cursor")
        return value, UUID(ticket_id)
    except (ValueError, TypeError) as exc:
        raise CursorError(f"invalid cursor: {exc}") from exc


async def list_tickets(
    conn: Connection,
    tenant_id: str,
    f: TicketFilter,
    *,
    sort: Sort = Sort.UPDATED,
    descending: bool = True,
    limit: int = 25,
    cursor: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of tickets and the cursor of the next page (None on the last page)."""
    w = _where(tenant_id, f)
    if cursor:
        value, after = _decode(cursor, sort)
        w.add(f"({sort.value}, ticket_id) {'<' if descending else '>'} ({{}}, {{}})", value, after)
    order = "DESC" if descending else "ASC"
    limit = max(1, min(limit, MAX_PAGE))
    rows = await conn.fetch(
        f"SELECT * FROM ticket_list WHERE {' AND '.join(w.clauses)}"
        f" ORDER BY {sort.value} {order}, ticket_id {order} LIMIT {limit + 1}",
        *w.args,
    )
    page = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = _encode(sort, page[-1][sort.value], page[-1]["ticket_id"]) if more else None
    return page, next_cursor


async def counts_by_status(conn: Connection, tenant_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM ticket_list WHERE tenant_id = $1 GROUP BY status",
        tenant_id,
    )
    return {r["status"]: r["n"] for r in rows}
