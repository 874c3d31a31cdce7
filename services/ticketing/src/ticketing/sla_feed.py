"""The SLA events, folded into each ticket's next SLA deadline in the ticket list.

Ticketing consumes `sla.events.v1` like any other consumer (it never reads the SLA
service's database): a clock runs from `SlaClockStarted` (and `SlaClockResumed`) with its
deadline, stops counting when paused, and ends with its verdict; `SlaBreached` and
`SlaVerdictRevised` say whether it is breached. A ticket's list row carries the earliest
deadline of its running clocks (a breached one is in the past, so it sorts first) and
whether any running clock is breached.
"""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_contracts import (
    TOPICS,
    EventEnvelope,
    SlaAchieved,
    SlaBreached,
    SlaClockCancelled,
    SlaClockPaused,
    SlaClockResumed,
    SlaClockRetargeted,
    SlaClockStarted,
    SlaClockStopped,
    SlaVerdictRevised,
    Verdict,
)
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection

SLA_TOPIC = "sla.events.v1"
ACCEPTS = frozenset(e.event_type for e in TOPICS[SLA_TOPIC].event_types) - {"SlaWarning"}

Row = dict[str, Any]


def fold(row: Row, envelope: EventEnvelope[Any]) -> None:
    """One SLA event applied to its clock's row."""
    match envelope.payload:
        case SlaClockStarted(deadline=deadline) | SlaClockResumed(deadline=deadline):
            row["running"], row["deadline"] = True, deadline
        case SlaClockRetargeted(deadline=deadline):
            row["deadline"] = deadline
            row["running"] = deadline is not None
        case SlaClockPaused():
            row["running"], row["deadline"] = False, None
        case SlaBreached():
            row["breached"] = True
        case SlaVerdictRevised(verdict=verdict):
            row["breached"] = verdict is Verdict.BREACHED
            if verdict is Verdict.ACHIEVED:  # revised by the stop that ended it
                row["running"], row["deadline"] = False, None
        case SlaAchieved() | SlaClockStopped() | SlaClockCancelled():
            row["running"], row["deadline"] = False, None


async def apply(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> list[Rejection]:
    """Fold a batch of SLA events into the clocks, then refresh the tickets' list rows."""
    ids = list({e.payload.clock_id for e in batch})
    known = {
        r["clock_id"]: dict(r)
        for r in await conn.fetch("SELECT * FROM sla_clocks WHERE clock_id = ANY($1::uuid[])", ids)
    }
    for envelope in batch:
        p = envelope.payload
        row = known.setdefault(p.clock_id, {
            "clock_id": p.clock_id, "tenant_id": envelope.tenant_id, "ticket_id": p.ticket_id,
            "metric": p.metric.value, "running": False, "deadline": None, "breached": False,
        })  # fmt: skip
        fold(row, envelope)
    await conn.executemany(
        "INSERT INTO sla_clocks (clock_id, tenant_id, ticket_id, metric, running, deadline,"
        " breached) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (clock_id) DO UPDATE SET"
        " running = excluded.running, deadline = excluded.deadline, breached = excluded.breached",
        [tuple(r.values()) for r in known.values()],
    )
    await refresh(conn, {r["ticket_id"] for r in known.values()})
    return []


async def refresh(conn: Connection, ticket_ids: set[UUID] | None = None) -> None:
    """Set the list rows' next deadline and breach flag from the clocks (all when None)."""
    await conn.execute(
        """
        UPDATE ticket_list l SET sla_deadline = coalesce(s.deadline, 'infinity'),
                                 sla_breached = coalesce(s.breached, false)
        FROM (
            SELECT t.tenant_id, t.ticket_id, min(c.deadline) AS deadline,
                   bool_or(c.breached) AS breached
            FROM (SELECT DISTINCT tenant_id, ticket_id FROM sla_clocks
                  WHERE $1::uuid[] IS NULL OR ticket_id = ANY($1::uuid[])) AS t
            LEFT JOIN sla_clocks c ON c.ticket_id = t.ticket_id AND c.running
            GROUP BY t.tenant_id, t.ticket_id
        ) AS s
        WHERE l.tenant_id = s.tenant_id AND l.ticket_id = s.ticket_id
            AND (l.sla_deadline, l.sla_breached)
                IS DISTINCT FROM (coalesce(s.deadline, 'infinity'), coalesce(s.breached, false))
        """,
        None if ticket_ids is None else list(ticket_ids),
    )


NO_DEADLINE = datetime.max
"""How asyncpg reads the list's 'infinity' (no clock running)."""
