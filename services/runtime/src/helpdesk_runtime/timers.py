"""Durable timers: rows due at a time, fired in the transaction that applies their effects.

Why rows in the service's own database, not a broker's delay or an in-process timer:
- `schedule` runs in the caller's transaction, so a deadline is set, moved or cancelled
  atomically with the state that needs it, and a rollback leaves no orphan timer;
- a handler runs inside the transaction that deletes the timers it is given, so the claim
  and the effects commit together: a timer fires at least once and is applied once in
  effect (a crash before the commit only makes it fire again);
- replicas claim with `FOR UPDATE SKIP LOCKED` in due order, so they share a burst without
  waiting on each other and without firing a timer twice; a restart loses nothing.

This module sets and cancels timers; `timer_scheduler` fires them.

Payloads are small JSON objects of ids and parameters, never personal data: the rows are not
covered by crypto-shredding, and a big payload slows every claim.
"""

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias
from uuid import UUID

from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.trace import TraceContext, continued, traceparent_for

log = get_logger(__name__)
Clock: TypeAlias = Callable[[], datetime]  # aware UTC datetimes
MAX_PAYLOAD_BYTES = 4096


@dataclass(frozen=True)
class Timer:
    """A timer to schedule: (kind, tenant_id, key) names it, within the service's database."""

    kind: str
    key: str
    tenant_id: str
    due_at: datetime
    payload: Mapping[str, Any]
    # The consumed event that set the timer, when a consumer's batch sets it: the timer
    # continues that event's trace (in a request, the request's trace is continued anyway).
    cause: UUID | None = field(default=None, kw_only=True)


@dataclass(frozen=True)
class DueTimer(Timer):
    """A timer being fired, as scheduled, with its failed firings so far."""

    attempts: int = 0
    traceparent: str | None = None  # of what scheduled it

    def span(self) -> TraceContext:
        """A span continuing the trace that scheduled this timer: a handler that appends
        per timer can use `with trace.using(timer.span()):` to keep each trace apart."""
        return continued(self.traceparent)


TimerHandler: TypeAlias = Callable[[Connection, Sequence[DueTimer]], Awaitable[None]]
OnFired: TypeAlias = Callable[[str, float], None]  # (kind, lateness in seconds)


def utc_now() -> datetime:
    """The default clock."""
    return datetime.now(UTC)


def _encode(timer: Timer) -> tuple[str, str, str, datetime, str]:
    if timer.due_at.tzinfo is None or timer.due_at.utcoffset() is None:
        raise ValueError(f"timer {timer.kind}/{timer.key}: due_at must be timezone-aware")
    payload = json.dumps(dict(timer.payload), separators=(",", ":"))
    if len(payload.encode()) > MAX_PAYLOAD_BYTES:
        raise ValueError(
            f"timer {timer.kind}/{timer.key}: payload over {MAX_PAYLOAD_BYTES} bytes;"
            " keep ids in it and the data in the service's tables"
        )
    return timer.kind, timer.key, timer.tenant_id, timer.due_at, payload


async def schedule(
    conn: Connection,
    kind: str,
    key: str,
    due_at: datetime,
    payload: Mapping[str, Any],
    tenant_id: str,
) -> None:
    """Set the tenant's timer (kind, key) to fire at `due_at`, or move it there, in the
    caller's transaction."""
    await schedule_many(conn, [Timer(kind, key, tenant_id, due_at, payload)])


async def schedule_many(conn: Connection, timers: Sequence[Timer]) -> None:
    """Set or move many timers in one statement (a consumer's batch); the last of a timer
    given twice wins. Moving a timer resets its attempts: it is a new intention."""
    unique = {(t.kind, t.tenant_id, t.key): t for t in timers}
    rows = [_encode(t) for t in unique.values()]
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO timers AS t (kind, key, tenant_id, due_at, payload, traceparent)
        SELECT k, s, n, d, p::jsonb, tp
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                    $6::text[]) AS x(k, s, n, d, p, tp)
        ON CONFLICT (kind, tenant_id, key) DO UPDATE
            SET due_at = excluded.due_at, payload = excluded.payload,
                traceparent = excluded.traceparent, attempts = 0, last_error = NULL
        """,
        *(list(column) for column in zip(*rows, strict=True)),
        [traceparent_for(t.cause) for t in unique.values()],
    )


async def cancel(conn: Connection, kind: str, tenant_id: str, key: str) -> bool:
    """Remove the tenant's timer (kind, key) in the caller's transaction; False if none."""
    status = await conn.execute(
        "DELETE FROM timers WHERE kind = $1 AND tenant_id = $2 AND key = $3", kind, tenant_id, key
    )
    return status == "DELETE 1"


async def cancel_many(conn: Connection, kind: str, tenant_id: str, keys: Sequence[str]) -> int:
    """Remove the tenant's timers of `kind` with these keys; how many there were."""
    status = await conn.execute(
        "DELETE FROM timers WHERE kind = $1 AND tenant_id = $2 AND key = ANY($3::text[])",
        kind, tenant_id, list(keys),
    )  # fmt: skip
    return int(status.split()[-1])


async def pending_count(conn: Connection) -> int:
    """Pending timers, estimated in O(1) from the table's statistics (cheap at every scrape).

    PostgreSQL's own estimate: the tuple density of the last ANALYZE times the table's
    current size, so it follows growth at once and shrinkage once autovacuum runs. Until the
    table was first analysed it counts exactly (it is young, so small).
    """
    estimate = await conn.fetchval(
        """
        SELECT CASE WHEN reltuples < 0 OR relpages = 0 THEN NULL
                    ELSE (reltuples / relpages
                          * (pg_relation_size(oid) / current_setting('block_size')::int))::bigint
               END
        FROM pg_class WHERE oid = 'timers'::regclass
        """
    )
    if estimate is None:
        estimate = await conn.fetchval("SELECT count(*) FROM timers")
    return int(estimate)


async def overdue_count(conn: Connection, now: datetime) -> int:
    """Timers due but not fired yet (exact; an index range scan, as long as the backlog).

    The lateness of fired timers cannot show a scheduler that fires nothing; this can.
    """
    return int(await conn.fetchval("SELECT count(*) FROM timers WHERE due_at <= $1", now))
