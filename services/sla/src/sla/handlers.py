"""The SLA service's two entry points into its domain: a batch of ticket events, and the
alarms its durable timers fire. Both load what they touch in a few statements, apply the
pure clock rules, and write the clocks, the next alarms and the SLA events (through the
outbox) in the caller's one transaction.
"""

import asyncio
import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import suppress
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import EVENT_TYPES, TOPICS, EventEnvelope, TicketOpened, Watermark
from helpdesk_runtime import outbox, timers
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.timers import DueTimer, Timer
from sla import store
from sla.configuration import Catalogue, TenantRules
from sla.domain.clocks import (
    Emitted,
    TicketClocks,
    alarm,
    apply,
    breached,
    next_alarm,
    open_ticket,
    reapply,
    replay,
)

log = get_logger(__name__)

TICKETS_TOPIC = "ticketing.tickets.v2"
SLA_TOPIC = "sla.events.v1"
ALARM = "sla-alarm"
"""The timer kind: one timer per ticket, at its clocks' next warning or deadline."""
ACCEPTS = frozenset(e.event_type for e in TOPICS[TICKETS_TOPIC].event_types)
PRODUCER = "sla"
BREACH_CHUNK = 500
"""Clocks breached per partition in one transaction of the sweep: a burst of deadlines is
worked through in bounded memory, and published while the sweep goes on."""

assert all(name in EVENT_TYPES for name in ACCEPTS)


class SlaHandlers:
    """Wired once, in bootstrap, with the catalogue of parsed configuration and the clock."""

    def __init__(self, catalogue: Catalogue, clock: Callable[[], datetime]) -> None:
        self._catalogue = catalogue
        self._clock = clock
        self.watermarks_moved = asyncio.Event()

    async def _rules(self, conn: Connection, tickets: Iterable[TicketClocks],
                     tenants: Iterable[str]) -> TenantRules:  # fmt: skip
        tickets = list(tickets)
        refs = [(t.tenant_id, c.policy) for t in tickets for c in t.clocks]
        return await self._catalogue.rules(conn, {*tenants, *(t.tenant_id for t in tickets)}, refs)

    async def ticket_events(
        self, conn: Connection, received: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        """Apply a batch of ticket events (in partition order, so each ticket's in order),
        then declare the breaches that the batch's watermarks now allow."""
        marks: dict[int, tuple[int, datetime]] = {}
        batch = []
        for envelope in received:
            if not isinstance(envelope.payload, Watermark):
                batch.append(envelope)
                continue
            mark = envelope.payload
            if mark.partitions != store.PARTITIONS:
                log.error("ticket topic has another partition count than the contract; its"
                          " watermarks cannot be used and breaches wait",
                          partitions=mark.partitions, expected=store.PARTITIONS)  # fmt: skip
                continue
            seen = marks.get(mark.partition)
            if seen is None or mark.up_to > seen[1]:
                marks[mark.partition] = (mark.partitions, mark.up_to)
        rejected = await self._apply(conn, batch) if batch else []
        if marks:
            await store.advance_watermarks(conn, marks)
            self.watermarks_moved.set()  # the sweep looks again (after this commits)
        return rejected

    async def _apply(
        self, conn: Connection, batch: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        tickets = await store.load(conn, (e.aggregate_id for e in batch if e.aggregate_id))
        rules = await self._rules(conn, tickets.values(), (e.tenant_id for e in batch))
        touched: dict[UUID, TicketClocks] = {}
        published: list[EventEnvelope[Any]] = []
        rejected: list[Rejection] = []
        for envelope in batch:
            ticket_id = envelope.aggregate_id
            assert ticket_id is not None  # ticket events require it (contracts)
            ticket = tickets.get(ticket_id)
            if ticket is not None and ticket.tenant_id != envelope.tenant_id:
                rejected.append(
                    Rejection(envelope.event_id, "the ticket belongs to another tenant")
                )
                continue
            if isinstance(envelope.payload, TicketOpened):
                if ticket is not None:
                    continue  # opened twice (a replay): the first one counts
                ticket, emitted = open_ticket(envelope, rules)
                tickets[ticket_id] = ticket
            elif ticket is None:
                # Opened before this service consumed the topic (or retention lost it): there
                # is no clock to move. Kept in the input log all the same.
                log.info("event of an unknown ticket; no clocks", ticket_id=str(ticket_id),
                         event_type=envelope.event_type)  # fmt: skip
                continue
            else:
                emitted = apply(ticket, envelope, rules)
            touched[ticket_id] = ticket
            published += _envelopes(ticket.tenant_id, emitted, envelope.correlation_id)
        # The input log keeps what was applied (or known and skipped), never what was refused:
        # a rebuild must fold exactly what the live path did.
        refused = {r.event_id for r in rejected}
        logged = [e for e in batch if e.event_id not in refused]
        await store.log_events(conn, logged, rules.revisions)
        await self._write(conn, touched.values(), rules, published)
        return rejected

    async def sweep(self, conn: Connection) -> int:
        """Breach one chunk of the running clocks whose deadline their partition's watermark
        has passed: no event that could have stopped them in time is still on its way.
        How many; the caller commits each chunk, so the relay publishes while it goes on."""
        due = await store.breach_due(conn, limit=BREACH_CHUNK)
        published = [e for c in due for e in _envelopes(c.tenant_id, [breached(c)], None)]
        await outbox.put(conn, published)
        return len(due)

    async def sweep_breaches(self, pool: asyncpg.Pool, idle_s: float) -> None:
        """The breach sweep as a job: woken when this process reads a watermark, else every
        `idle_s` (another replica's consumer may have read it); replicas share the work."""
        while True:
            async with pool.acquire() as conn, conn.transaction():
                swept = await self.sweep(conn)
            if not swept:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self.watermarks_moved.wait(), idle_s)
                    # Set inside the consumer's transaction: let it commit first.
                    await asyncio.sleep(0.02)
                self.watermarks_moved.clear()

    async def alarms(self, conn: Connection, due: Sequence[DueTimer]) -> None:
        """The wall clock reached a warning of these tickets' clocks."""
        await self._alarm(conn, [UUID(t.key) for t in due])

    async def _alarm(self, conn: Connection, ticket_ids: Sequence[UUID]) -> None:
        tickets = await store.load(conn, ticket_ids)
        rules = await self._rules(conn, tickets.values(), ())
        marks = await store.watermarks(conn)
        lateness = await store.allowed_lateness(conn, (t.tenant_id for t in tickets.values()))
        now = self._clock()
        published: list[EventEnvelope[Any]] = []
        for ticket in tickets.values():
            horizon = store.breach_horizon(
                marks, ticket.facts.ticket_id, lateness[ticket.tenant_id]
            )
            emitted = alarm(ticket, rules, now, horizon)
            published += _envelopes(ticket.tenant_id, emitted, None)
        await self._write(conn, tickets.values(), rules, published)

    async def reapply(self, conn: Connection, tenant_id: str, policy_id: str) -> tuple[int, int]:
        """Re-target the open clocks of a policy's older versions by its current version;
        (tickets, SLA events published)."""
        rows = await conn.fetch(
            "SELECT DISTINCT ticket_id FROM clocks WHERE tenant_id = $1 AND policy_id = $2"
            " AND state IN ('running', 'paused')",
            tenant_id, policy_id,
        )  # fmt: skip
        ids = [r["ticket_id"] for r in rows]
        marks, published = await store.watermarks(conn), 0
        lateness = (await store.allowed_lateness(conn, [tenant_id]))[tenant_id]
        now = self._clock()
        for at in range(0, len(ids), BREACH_CHUNK):
            tickets = await store.load(conn, ids[at : at + BREACH_CHUNK])
            rules = await self._rules(conn, tickets.values(), ())
            events: list[EventEnvelope[Any]] = []
            for ticket in tickets.values():
                # Applied as of what the watermark vouches for, not the wall clock: events
                # stamped before now may still be on their way, and must come after it.
                when = min(now, store.breach_horizon(marks, ticket.facts.ticket_id, lateness))
                events += _envelopes(ticket.tenant_id, reapply(ticket, rules, when), None)
            await self._write(conn, tickets.values(), rules, events)
            published += len(events)
        return len(ids), published

    async def rebuild(self, conn: Connection, chunk: int = 500) -> int:
        """Drop the clocks and fold them again from the input log, each event under the
        configuration revision it was first applied with; how many tickets. Publishes
        nothing (every SLA event was published when it happened). Blocks the consumer and
        the alarms meanwhile: they wait on the tables' locks."""
        await conn.execute(
            "LOCK TABLE ticket_events, sla_tickets, clocks, watermarks IN EXCLUSIVE MODE"
        )
        # Which warnings were sent is a record of the wall clock, not of the events: kept.
        rows = await conn.fetch("SELECT clock_id, warned::text AS warned FROM clocks")
        sent: dict[UUID, str] = {r["clock_id"]: r["warned"] for r in rows}
        await conn.execute("TRUNCATE sla_tickets, clocks")
        await conn.execute("DELETE FROM timers WHERE kind = $1", ALARM)
        marks = await store.watermarks(conn)
        late = await store.allowed_lateness(
            conn,
            [r["tenant_id"] for r in await conn.fetch("SELECT tenant_id FROM tenant_settings")],
        )
        late = defaultdict(timedelta, late)
        cached: dict[tuple[str, int], TenantRules] = {}
        done: list[TicketClocks] = []
        count = 0
        async for history in store.histories(conn):
            for key in {(e.tenant_id, r) for e, r in history} - cached.keys():
                cached[key] = await self._catalogue.rules(conn, {key[0]: key[1]})
            first = history[0][0]
            assert first.aggregate_id is not None
            horizon = store.breach_horizon(marks, first.aggregate_id, late[first.tenant_id])
            ticket = replay([(e, cached[(e.tenant_id, r)]) for e, r in history], horizon)
            if ticket is not None:
                for clock in ticket.clocks:
                    if clock.id in sent:
                        clock.warned = tuple(json.loads(sent[clock.id]))
                done.append(ticket)
            if len(done) >= chunk:
                count += await self._rebuilt(conn, done)
        return count + await self._rebuilt(conn, done)

    async def _rebuilt(self, conn: Connection, tickets: list[TicketClocks]) -> int:
        if not tickets:
            return 0
        rules = await self._rules(conn, tickets, ())
        await self._write(conn, tickets, rules, [])
        count = len(tickets)
        tickets.clear()
        return count

    async def _write(
        self, conn: Connection, tickets: Iterable[TicketClocks], rules: TenantRules,
        published: list[EventEnvelope[Any]],
    ) -> None:  # fmt: skip
        tickets = list(tickets)
        await store.save(conn, tickets)
        alarms: list[Timer] = []
        silent: dict[str, list[str]] = {}
        for ticket in tickets:
            due = [
                at
                for c in ticket.clocks
                if (at := next_alarm(c, rules.calendar(ticket.tenant_id, c.policy))) is not None
            ]
            key = str(ticket.facts.ticket_id)
            if due:
                alarms.append(Timer(ALARM, key, ticket.tenant_id, min(due), {}))
            else:
                silent.setdefault(ticket.tenant_id, []).append(key)
        await timers.schedule_many(conn, alarms)
        for tenant_id, keys in silent.items():
            await timers.cancel_many(conn, ALARM, tenant_id, keys)
        await outbox.put(conn, published)


def _envelopes(
    tenant_id: str, emitted: Sequence[Emitted], correlation_id: UUID | None
) -> list[EventEnvelope[Any]]:
    return [
        EventEnvelope.new(
            e.payload,
            tenant_id=tenant_id,
            producer=PRODUCER,
            occurred_at=e.occurred_at,
            causation_id=e.caused_by,
            correlation_id=correlation_id,
        )
        for e in emitted
    ]
