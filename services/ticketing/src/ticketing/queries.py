"""Read-side queries over the ticket list (every query is scoped to one tenant)."""

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_runtime.db import Connection
from ticketing.projection import COLUMNS

# Every column but `search` (large, read by none), with the SLA columns the SLA events keep.
LISTED = f"{COLUMNS}, sla_deadline, sla_breached"

MAX_PAGE = 100
# A search walks at most this many of the newest tickets (in the sort's order) before it
# collects its matches through the GIN indexes instead; see `_matching`.
WALK = 2_000


class Sort(StrEnum):
    UPDATED = "updated_at"
    OPENED = "opened_at"
    PRIORITY = "priority_rank"
    NUMBER = "number"
    SLA_DEADLINE = "sla_deadline"
    """The next SLA deadline: ascending is "breaching soonest first"."""


# The sorts a (tenant_id, key) index reads in order, which a walk can follow.
_WALKABLE = (Sort.UPDATED, Sort.NUMBER, Sort.SLA_DEADLINE)


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
    sla_breached: bool | None = None
    sla_due_before: datetime | None = None


@dataclass
class _Where:
    clauses: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)

    def add(self, clause: str, *values: Any) -> None:
        refs = [f"${len(self.args) + i + 1}" for i in range(len(values))]
        self.clauses.append(clause.format(*refs))
        self.args.extend(values)


def _filter(w: _Where, f: TicketFilter) -> None:
    if f.statuses:  # one parameter each: a generic plan then knows how many there are
        # (and searches the indexes for each); one status is an equality, read in order.
        w.add(f"status IN ({', '.join('{}' for _ in f.statuses)})", *f.statuses)
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
    if f.sla_breached is not None:
        w.add("sla_breached = {}", f.sla_breached)
    if f.sla_due_before:
        w.add("sla_deadline < {}", f.sla_due_before)
    for column, low, high in (
        ("opened_at", f.opened_from, f.opened_to),
        ("updated_at", f.updated_from, f.updated_to),
    ):
        if low:
            w.add(f"{column} >= {{}}", low)
        if high:
            w.add(f"{column} < {{}}", high)


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
        if sort in (Sort.UPDATED, Sort.OPENED, Sort.SLA_DEADLINE):
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
    w = _Where()
    w.add("tenant_id = {}", tenant_id)
    if cursor:
        value, after = _decode(cursor, sort)
        w.add(f"({sort.value}, ticket_id) {'<' if descending else '>'} ({{}}, {{}})", value, after)
    scope = len(w.clauses)
    _filter(w, f)
    order = "DESC" if descending else "ASC"
    key = f"{sort.value} {order}, ticket_id {order}"
    limit = max(1, min(limit, MAX_PAGE))
    if f.text or f.tags:
        rows = await _matching(conn, w, scope, sort, key, limit + 1)
    else:
        rows = await conn.fetch(
            f"SELECT {LISTED} FROM ticket_list WHERE {' AND '.join(w.clauses)}"
            f" ORDER BY {key} LIMIT {limit + 1}",
            *w.args,
        )
    page = [dict(r) for r in rows[:limit]]
    more = len(rows) > limit
    next_cursor = _encode(sort, page[-1][sort.value], page[-1]["ticket_id"]) if more else None
    return page, next_cursor


async def _matching(
    conn: Connection, w: _Where, scope: int, sort: Sort, key: str, n: int
) -> list[asyncpg.Record]:
    """The first `n` tickets of a search by words or tags, in two steps of bounded work.

    Walking an index in the sort's order and testing each ticket finds a page at once when
    matches are common, but reads the whole tenant when they are rare; collecting the
    matches through the GIN index is quick when they are rare, but fetches and sorts tens
    of thousands when common. Which one the planner picks rests on estimates that a
    prepared statement's generic plan does not even have (a common word then took 120 ms
    on a 300,000-ticket tenant). So: walk the first WALK tickets in the sort's order (after
    the cursor); only when they hold less than a page are the matches rare enough to
    collect them all, with the plan fixed by the CTE (the GIN indexes lead with tenant_id).

    The worst case is a filter that matches a little less than a page in the walk: WALK
    tickets read, then about n / WALK of the tenant's tickets collected (~4,000 of 300,000,
    10-15 ms with the pages in memory); tests/benchmarks/test_list_at_scale.py measures it.
    """
    within = " AND ".join(w.clauses[:scope])
    matches = " AND ".join(w.clauses[scope:])
    if sort in _WALKABLE:
        rows = await conn.fetch(
            f"SELECT {LISTED} FROM (SELECT * FROM ticket_list WHERE {within}"
            f" ORDER BY {key} LIMIT {WALK}) AS newest WHERE {matches} ORDER BY {key} LIMIT {n}",
            *w.args,
        )
        if len(rows) == n:
            return rows
    return await conn.fetch(
        f"WITH matching AS MATERIALIZED (SELECT ticket_id, {sort.value} FROM ticket_list"
        f" WHERE {within} AND {matches}) SELECT {LISTED} FROM ticket_list"
        f" WHERE tenant_id = $1 AND ticket_id IN"
        f" (SELECT ticket_id FROM matching ORDER BY {key} LIMIT {n}) ORDER BY {key}",
        *w.args,
    )


async def counts_by_status(conn: Connection, tenant_id: str) -> dict[str, int]:
    rows = await conn.fetch(
        "SELECT status, count(*) AS n FROM ticket_list WHERE tenant_id = $1 GROUP BY status",
        tenant_id,
    )
    return {r["status"]: r["n"] for r in rows}
