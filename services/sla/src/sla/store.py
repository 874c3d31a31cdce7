"""The SLA service's tables: tickets with their clocks, and the input log of ticket events.

A batch loads the tickets it touches with their open clocks in two statements, and writes
back what changed in two more, whatever its size.
"""

import json
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import astuple
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import (
    TOPICS,
    Channel,
    EventEnvelope,
    PolicyRef,
    Priority,
    SlaMetric,
    TicketStatus,
    TicketType,
    parse_envelope,
)
from helpdesk_runtime.bulk import insert_many, upsert_many
from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import partition_for
from sla.domain.clocks import BreachedClock, Clock, ClockState, Pause, TicketClocks
from sla.domain.policies import TicketFacts

PARTITIONS = TOPICS["ticketing.tickets.v2"].partitions
"""Of the topic the ticket events come on. Kafka spreads keys by the partition count, so a
keyed topic's count never changes once in use (it would reorder every ticket's events)."""


def partition_of(ticket_id: UUID) -> int:
    """The partition a ticket's events travel on (their key is the ticket id)."""
    return partition_for(str(ticket_id).encode(), PARTITIONS)


async def log_events(
    conn: Connection, batch: Sequence[EventEnvelope[Any]], revisions: Mapping[str, int]
) -> None:
    """Keep the consumed ticket events as they came (the input log), each with the tenant's
    configuration revision it is applied under. By COPY: no per-row binds."""
    await insert_many(
        conn,
        "ticket_events",
        _LOGGED,
        [
            (e.event_id, e.tenant_id, e.aggregate_id, e.aggregate_version, e.event_type,
             e.occurred_at, revisions.get(e.tenant_id, 0), e.to_json().decode())
            for e in batch
        ],
    )  # fmt: skip


_LOGGED = (
    "event_id", "tenant_id", "ticket_id", "version", "event_type", "occurred_at", "revision",
    "envelope",
)  # fmt: skip


async def histories(
    conn: Connection, ticket_ids: Sequence[UUID] | None = None, tenant_id: str | None = None
) -> AsyncIterator[list[tuple[EventEnvelope[Any], int]]]:
    """Each ticket's logged events, oldest first, with the configuration revision each was
    applied under: one ticket at a time (a cursor; call inside a transaction).

    A ticket is a tenant's: events that another tenant sent with the same ticket id (which
    the live path, seeing only its batch's tenants, took for an unknown ticket) come as a
    history of their own, never folded into the owner's."""
    current: list[tuple[EventEnvelope[Any], int]] = []
    query = (
        "SELECT ticket_id, revision, envelope::text AS envelope FROM ticket_events"
        " WHERE ($1::uuid[] IS NULL OR ticket_id = ANY($1::uuid[]))"
        " AND ($2::text IS NULL OR tenant_id = $2) ORDER BY ticket_id, position"
    )
    async for row in conn.cursor(query, None if ticket_ids is None else list(ticket_ids),
                                 tenant_id, prefetch=1000):  # fmt: skip
        if current and current[0][0].aggregate_id != row["ticket_id"]:
            for history in _per_tenant(current):
                yield history
            current = []
        current.append((parse_envelope(row["envelope"]), row["revision"]))
    for history in _per_tenant(current):
        yield history


def _per_tenant(
    events: list[tuple[EventEnvelope[Any], int]],
) -> list[list[tuple[EventEnvelope[Any], int]]]:
    """One ticket id's events split by tenant, each in its order (almost always one)."""
    split: dict[str, list[tuple[EventEnvelope[Any], int]]] = {}
    for logged in events:
        split.setdefault(logged[0].tenant_id, []).append(logged)
    return list(split.values())


async def load(conn: Connection, ticket_ids: Iterable[UUID]) -> dict[UUID, TicketClocks]:
    """These tickets (those known) with their open clocks, locked until the caller commits.

    Locked because the consumer, the alarms and the breach sweep each read, decide and
    write back: without it one could write over what another committed meanwhile (a breach
    twice). Rows are locked in id order, so two of them never wait on each other in turn;
    the sweep skips what is locked here and takes it on its next pass."""
    ids = sorted(set(ticket_ids))
    rows = await conn.fetch(
        "SELECT * FROM sla_tickets WHERE ticket_id = ANY($1::uuid[]) ORDER BY ticket_id FOR UPDATE",
        ids,
    )
    tickets = {r["ticket_id"]: _ticket(r) for r in rows}
    clocks = await conn.fetch(
        "SELECT * FROM clocks WHERE ticket_id = ANY($1::uuid[])"
        " AND state IN ('running', 'paused') ORDER BY clock_id FOR UPDATE",
        list(tickets),
    )
    for row in sorted(clocks, key=lambda r: (r["started_at"], r["metric"])):
        tickets[row["ticket_id"]].clocks.append(clock_of(row))
    return tickets


async def save(conn: Connection, tickets: Sequence[TicketClocks]) -> None:
    """Write these tickets and all their clocks (open, and ended in this pass)."""
    rows = []
    for t in tickets:
        partition = partition_of(t.facts.ticket_id)
        rows += [_clock_row(t, partition, c) for c in t.clocks]
    await upsert_many(
        conn,
        "sla_tickets",
        _TICKET_COLUMNS,
        [_ticket_row(t) for t in tickets],
        key=["ticket_id"],
        update=_updated(_TICKET_COLUMNS, _TICKET_KEPT),
    )
    await upsert_many(conn, "clocks", _CLOCK_COLUMNS, rows, key=["clock_id"],
                      update=_updated(_CLOCK_COLUMNS, _CLOCK_KEPT))  # fmt: skip


def _updated(columns: Sequence[str], kept: frozenset[str]) -> list[str]:
    return [c for c in columns if c not in kept]


_TICKET_COLUMNS = (
    "ticket_id",
    "tenant_id",
    "number",
    "priority",
    "channel",
    "type",
    "tags",
    "group_id",
    "organisation_id",
    "tier",
    "status",
    "assignee_id",
    "opened_at",
    "version",
    "cycles",
)
"""In `_ticket_row`'s order."""
_TICKET_KEPT = frozenset({"ticket_id", "tenant_id", "number", "opened_at"})
_CLOCK_COLUMNS = (
    "clock_id",
    "tenant_id",
    "ticket_id",
    "metric",
    "cycle",
    "state",
    "policy_id",
    "policy_version",
    "calendar_id",
    "calendar_version",
    "business_hours",
    "target",
    "thresholds",
    "pause_on",
    "started_at",
    "started_by",
    "elapsed",
    "since",
    "deadline",
    "breached_at",
    "warned",
    "ended_at",
    "ended_by",
    "pauses",
    "partition",
    "priority",
    "channel",
    "group_id",
    "assignee_id",
)
"""In `_clock_row`'s order."""
_CLOCK_KEPT = frozenset(
    {"clock_id", "tenant_id", "ticket_id", "metric", "cycle", "started_at", "started_by",
     "partition"}
)  # fmt: skip
"""What names a clock and when and why it started: never updated."""


async def advance_watermarks(conn: Connection, marks: dict[int, tuple[int, datetime]]) -> None:
    """Record the watermarks read ({partition: (partitions, up_to)}); never back."""
    await conn.executemany(
        "INSERT INTO watermarks AS w (partition, partitions, up_to) VALUES ($1, $2, $3)"
        " ON CONFLICT (partition) DO UPDATE SET up_to = greatest(w.up_to, excluded.up_to),"
        " partitions = excluded.partitions, updated_at = now()",
        [(p, n, at) for p, (n, at) in marks.items()],
    )


LATENESS = (
    "coalesce((SELECT s.allowed_lateness FROM tenant_settings s"
    " WHERE s.tenant_id = c.tenant_id), '0')"
)
"""SQL: the allowed lateness of the tenant of the clock `c` (zero unless set)."""
_NEVER = datetime.min.replace(tzinfo=UTC)


def breach_horizon(marks: dict[int, datetime], ticket_id: UUID, lateness: timedelta) -> datetime:
    """Up to when a ticket's clocks may be judged: its partition's watermark, less the
    tenant's allowed lateness (never, before any watermark was read)."""
    mark = marks.get(partition_of(ticket_id))
    return _NEVER if mark is None else mark - lateness


async def watermarks(conn: Connection) -> dict[int, datetime]:
    """The watermark of each partition read so far."""
    rows = await conn.fetch("SELECT partition, up_to FROM watermarks")
    return {r["partition"]: r["up_to"] for r in rows}


async def breach_due(conn: Connection, limit: int) -> list[BreachedClock]:
    """Mark breached, in one statement, running clocks whose deadline (plus the tenant's
    allowed lateness) their partition's watermark has passed: at most `limit` a partition,
    earliest deadlines first, skipping those another replica is marking. A cluster of
    deadlines (a business calendar's opening hour) costs a few statements, not a ticket
    loaded and saved each."""
    # Three statements, each on a primary key or the clocks_due index: one statement
    # joining them made the planner hash every clock and ticket of the table. The first
    # must walk clocks_due in deadline order and stop at the limit; the planner cannot
    # estimate how many clocks a watermark read from a table passes, and otherwise picks a
    # bitmap scan that reads and sorts every due clock of the partition on each pass
    # (29 ms a pass instead of 164 ms, measured with 100,000 due).
    await conn.execute("SET LOCAL enable_bitmapscan = off")
    due = await conn.fetch(
        f"""
        SELECT d.clock_id FROM watermarks w
        JOIN LATERAL (
            SELECT c.clock_id FROM clocks c
            WHERE c.partition = w.partition AND c.state = 'running'
                AND c.breached_at IS NULL AND c.deadline <= w.up_to
                AND c.deadline + {LATENESS} <= w.up_to
            ORDER BY c.deadline LIMIT {int(limit)}
            FOR UPDATE OF c SKIP LOCKED
        ) d ON true
        """
    )
    await conn.execute("RESET enable_bitmapscan")
    if not due:
        return []
    rows = await conn.fetch(
        """
        UPDATE clocks SET breached_at = deadline WHERE clock_id = ANY($1::uuid[])
        RETURNING clock_id, tenant_id, ticket_id, metric, deadline, target, policy_id,
            policy_version, calendar_id, calendar_version, business_hours
        """,
        [r["clock_id"] for r in due],
    )
    tickets = {
        t["ticket_id"]: t
        for t in await conn.fetch(
            "SELECT ticket_id, number, assignee_id, group_id FROM sla_tickets"
            " WHERE ticket_id = ANY($1::uuid[])",
            list({r["ticket_id"] for r in rows}),
        )
    }
    return [
        BreachedClock(
            tenant_id=r["tenant_id"], ticket_id=r["ticket_id"],
            ticket_number=tickets[r["ticket_id"]]["number"],
            clock_id=r["clock_id"], metric=SlaMetric(r["metric"]),
            policy=_policy_ref(r["policy_id"], r["policy_version"], r["calendar_id"],
                               r["calendar_version"], r["business_hours"]),
            target=r["target"], deadline=r["deadline"],
            assignee_id=tickets[r["ticket_id"]]["assignee_id"],
            group_id=tickets[r["ticket_id"]]["group_id"],
        )
        for r in rows
    ]  # fmt: skip


@lru_cache(maxsize=1024)
def _policy_ref(
    policy_id: str, version: int, calendar_id: str | None, calendar_version: int | None,
    business_hours: bool,
) -> PolicyRef:  # fmt: skip
    """Shared by the many clocks of one policy version (it is immutable)."""
    return PolicyRef(policy_id=policy_id, policy_version=version, calendar_id=calendar_id,
                     calendar_version=calendar_version, business_hours=business_hours)  # fmt: skip


async def allowed_lateness(
    conn: Connection, tenant_ids: Iterable[str] | None = None
) -> dict[str, timedelta]:
    """Each tenant's allowed lateness (zero unless set); of every tenant that set one when
    no tenants are named."""
    tenants = None if tenant_ids is None else list(set(tenant_ids))
    rows = await conn.fetch(
        "SELECT tenant_id, allowed_lateness FROM tenant_settings"
        " WHERE $1::text[] IS NULL OR tenant_id = ANY($1::text[])",
        tenants,
    )
    found = {r["tenant_id"]: r["allowed_lateness"] for r in rows}
    return found if tenants is None else {t: found.get(t, timedelta(0)) for t in tenants}


async def set_allowed_lateness(
    conn: Connection, tenant_id: str, lateness: timedelta, saved_by: str
) -> None:
    await conn.execute(
        "INSERT INTO tenant_settings (tenant_id, allowed_lateness, saved_by) VALUES ($1, $2, $3)"
        " ON CONFLICT (tenant_id) DO UPDATE SET allowed_lateness = excluded.allowed_lateness,"
        " saved_by = excluded.saved_by, saved_at = now()",
        tenant_id, lateness, saved_by,
    )  # fmt: skip


async def positions(conn: Connection, ticket_id: UUID) -> dict[UUID, int]:
    """Where each of the ticket's events stands in the input log (provenance)."""
    rows = await conn.fetch(
        "SELECT event_id, position FROM ticket_events WHERE ticket_id = $1", ticket_id
    )
    return {r["event_id"]: r["position"] for r in rows}


async def clocks_of(conn: Connection, tenant_id: str, ticket_id: UUID) -> list[Clock] | None:
    """Every clock of a ticket, oldest first; None if this tenant has no such ticket."""
    known = await conn.fetchval(
        "SELECT true FROM sla_tickets WHERE ticket_id = $1 AND tenant_id = $2", ticket_id, tenant_id
    )
    if not known:
        return None
    rows = await conn.fetch(
        "SELECT * FROM clocks WHERE ticket_id = $1 ORDER BY started_at, metric, cycle", ticket_id
    )
    return [clock_of(r) for r in rows]


def _ticket(row: asyncpg.Record) -> TicketClocks:
    return TicketClocks(
        tenant_id=row["tenant_id"],
        facts=TicketFacts(
            ticket_id=row["ticket_id"],
            number=row["number"],
            priority=Priority(row["priority"]),
            channel=Channel(row["channel"]),
            type=TicketType(row["type"]),
            tags=tuple(json.loads(row["tags"])),
            group_id=row["group_id"],
            organisation_id=row["organisation_id"],
            tier=row["tier"],
        ),
        status=TicketStatus(row["status"]),
        opened_at=row["opened_at"],
        version=row["version"],
        assignee_id=row["assignee_id"],
        cycles={SlaMetric(k): v for k, v in json.loads(row["cycles"]).items()},
    )


def _ticket_row(t: TicketClocks) -> tuple[Any, ...]:
    f = t.facts
    return (
        f.ticket_id, t.tenant_id, f.number, f.priority.value, f.channel.value, f.type.value,
        json.dumps(list(f.tags)), f.group_id, f.organisation_id, f.tier, t.status.value,
        t.assignee_id, t.opened_at, t.version,
        json.dumps({m.value: n for m, n in t.cycles.items()}),
    )  # fmt: skip


def clock_of(row: asyncpg.Record) -> Clock:
    return Clock(
        id=row["clock_id"],
        metric=SlaMetric(row["metric"]),
        cycle=row["cycle"],
        policy=PolicyRef(
            policy_id=row["policy_id"],
            policy_version=row["policy_version"],
            calendar_id=row["calendar_id"],
            calendar_version=row["calendar_version"],
            business_hours=row["business_hours"],
        ),
        target=row["target"],
        thresholds=tuple(json.loads(row["thresholds"])),
        pause_on=frozenset(TicketStatus(s) for s in json.loads(row["pause_on"])),
        started_at=row["started_at"],
        started_by=row["started_by"],
        state=ClockState(row["state"]),
        elapsed=row["elapsed"],
        since=row["since"],
        deadline=row["deadline"],
        breached_at=row["breached_at"],
        warned=tuple(json.loads(row["warned"])),
        ended_at=row["ended_at"],
        ended_by=row["ended_by"],
        pauses=[_pause(p) for p in json.loads(row["pauses"])],
    )


def _clock_row(t: TicketClocks, partition: int, c: Clock) -> tuple[Any, ...]:
    p = c.policy
    return (
        c.id, t.tenant_id, t.facts.ticket_id, c.metric.value, c.cycle, c.state.value,
        p.policy_id, p.policy_version, p.calendar_id, p.calendar_version, p.business_hours,
        c.target, _json_list(c.thresholds), _statuses(c.pause_on), c.started_at, c.started_by,
        c.elapsed, c.since, c.deadline, c.breached_at, _json_list(c.warned), c.ended_at,
        c.ended_by, json.dumps([_pause_json(x) for x in c.pauses]) if c.pauses else "[]",
        partition, *astuple(c.decided_as or t.context()),  # an open clock follows the ticket
    )  # fmt: skip


@cache
def _json_list(values: tuple[float, ...]) -> str:
    """Thresholds and warnings sent: a handful of distinct tuples, each encoded once."""
    return json.dumps(list(values))


@cache
def _statuses(statuses: frozenset[TicketStatus]) -> str:
    return json.dumps(sorted(s.value for s in statuses))


def _pause_json(p: Pause) -> dict[str, Any]:
    return {
        "paused_at": p.paused_at.isoformat(),
        "reason": p.reason,
        "paused_by": str(p.paused_by),
        "resumed_at": p.resumed_at.isoformat() if p.resumed_at else None,
        "resumed_by": str(p.resumed_by) if p.resumed_by else None,
    }


def _pause(data: dict[str, Any]) -> Pause:
    return Pause(
        paused_at=datetime.fromisoformat(data["paused_at"]),
        reason=data["reason"],
        paused_by=UUID(data["paused_by"]),
        resumed_at=datetime.fromisoformat(data["resumed_at"]) if data["resumed_at"] else None,
        resumed_by=UUID(data["resumed_by"]) if data["resumed_by"] else None,
    )
