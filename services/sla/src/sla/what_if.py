"""What-if: compliance of a past period recomputed under draft policies or calendars, beside
the verdicts that were given, which stay the contractual record. Each event is replayed
under the configuration it met (its revision) with the drafts put in place of the saved
policies and calendars of the same ids.

Non-destructive by construction: it reads the input log and the clocks in a read-only
transaction and replays each ticket in memory (`clocks.replay`); nothing is written, no
event is published. Clock ids are deterministic, so each recomputed clock is compared with
the very clock that was judged.
"""

from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from helpdesk_contracts import SlaMetric
from helpdesk_runtime.db import Connection
from sla import store
from sla.configuration import Catalogue, TenantRules
from sla.domain.calendar import CalendarSpec
from sla.domain.clocks import ClockState, replay
from sla.domain.policies import PolicySpec

CHUNK = 500
MAX_CHANGES = 200


def outcome(state: ClockState, breached: bool) -> str:
    """achieved, breached, open or cancelled: how a clock stands."""
    if breached:
        return "breached"
    if state is ClockState.ACHIEVED:
        return "achieved"
    return "cancelled" if state is ClockState.CANCELLED else "open"


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)

    @property
    def compliance(self) -> float | None:
        judged = self.counts["achieved"] + self.counts["breached"]
        return None if judged == 0 else self.counts["achieved"] / judged


@dataclass(frozen=True)
class Change:
    ticket_id: UUID
    ticket_number: int
    metric: SlaMetric
    cycle: int
    original: str
    what_if: str


@dataclass
class WhatIf:
    tickets: int = 0
    original: dict[SlaMetric, Tally] = field(default_factory=dict)
    what_if: dict[SlaMetric, Tally] = field(default_factory=dict)
    changes: list[Change] = field(default_factory=list)
    changed: int = 0

    def count(self, side: dict[SlaMetric, Tally], metric: SlaMetric, result: str) -> None:
        side.setdefault(metric, Tally()).counts[result] += 1


async def what_if(
    conn: Connection, catalogue: Catalogue, tenant_id: str, start: datetime, end: datetime, *,
    policies: dict[str, PolicySpec], calendars: dict[str, CalendarSpec], removed: Iterable[str],
) -> WhatIf:  # fmt: skip
    """Tickets opened in [start, end): their clocks as judged, and as the drafts would judge."""
    report = WhatIf()
    async with conn.transaction(readonly=True):
        cache: dict[int, TenantRules] = {}

        async def rules_at(revision: int) -> TenantRules:
            """The configuration an event met, with the drafts in place: what changed
            since the period is not blamed on the drafts."""
            if revision not in cache:
                met = await catalogue.rules(conn, {tenant_id: revision})
                cache[revision] = met.with_drafts(tenant_id, policies, calendars, removed)
            return cache[revision]

        marks = await store.watermarks(conn)
        lateness = (await store.allowed_lateness(conn, [tenant_id]))[tenant_id]
        ids = [
            r["ticket_id"]
            for r in await conn.fetch(
                "SELECT ticket_id FROM ticket_events WHERE tenant_id = $1"
                " AND event_type = 'TicketOpened' AND occurred_at >= $2 AND occurred_at < $3",
                tenant_id, start, end,
            )
        ]  # fmt: skip
        for at in range(0, len(ids), CHUNK):
            await _compare(conn, rules_at, marks, lateness, ids[at : at + CHUNK], report)
    return report


async def _compare(
    conn: Connection, rules_at: Callable[[int], Awaitable[TenantRules]],
    marks: dict[int, datetime], lateness: timedelta, ids: Sequence[UUID],
    report: WhatIf,
) -> None:  # fmt: skip
    judged: dict[UUID, dict[UUID, Any]] = {}  # ticket -> clock -> row
    for row in await conn.fetch(
        "SELECT ticket_id, clock_id, metric, cycle, state, breached_at FROM clocks"
        " WHERE ticket_id = ANY($1::uuid[])",
        list(ids),
    ):
        judged.setdefault(row["ticket_id"], {})[row["clock_id"]] = row
    async for history in store.histories(conn, ids):
        ticket_id = history[0][0].aggregate_id
        assert ticket_id is not None
        horizon = store.breach_horizon(marks, ticket_id, lateness)
        met = {revision: await rules_at(revision) for revision in {r for _, r in history}}
        ticket = replay([(e, met[r]) for e, r in history], horizon)
        if ticket is None:
            continue
        report.tickets += 1
        was = {cid: (SlaMetric(r["metric"]), r["cycle"], _judged(r))
               for cid, r in judged.get(ticket_id, {}).items()}  # fmt: skip
        now = {c.id: (c.metric, c.cycle, outcome(c.state, c.breached_at is not None))
               for c in ticket.clocks}  # fmt: skip
        for metric, _, result in was.values():
            report.count(report.original, metric, result)
        for metric, _, result in now.values():
            report.count(report.what_if, metric, result)
        for clock_id in was.keys() | now.keys():
            metric, cycle, before = was.get(clock_id) or (*now[clock_id][:2], "not_measured")
            after = now[clock_id][2] if clock_id in now else "not_measured"
            if before == after:
                continue
            report.changed += 1
            if len(report.changes) < MAX_CHANGES:
                report.changes.append(
                    Change(ticket_id, ticket.facts.number, metric, cycle, before, after)
                )


def _judged(row: Any) -> str:
    return outcome(ClockState(row["state"]), row["breached_at"] is not None)
