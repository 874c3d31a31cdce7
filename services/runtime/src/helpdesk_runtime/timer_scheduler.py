"""Fires due timers (see `timers`): in batches, in due order, by any number of replicas.

Failures: a batch whose handler raises is rolled back and fired again in halves, so only the
timers that still fail on their own are blamed. Each failure adds an attempt and pushes the
timer back (`RetryPolicy`: doubling, capped), so a poisoned timer neither blocks the others
nor spins. From `max_attempts` on it is kept, never dropped (an SLA deadline must not vanish;
a fixed deploy, or `UPDATE timers SET due_at = now(), attempts = 0`, fires it), but tried
only every `poisoned_s` and logged as an error each time. Errors of the scheduler's own
statements (the database is down) are not blamed on timers: they propagate from `fire_due`,
and `run` logs them and backs off.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import asyncpg

from helpdesk_runtime import trace
from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import FailureStreak, bound, get_logger
from helpdesk_runtime.telemetry import SpanKind, Tracer, ended
from helpdesk_runtime.timers import Clock, DueTimer, OnFired, TimerHandler, utc_now
from helpdesk_runtime.trace import TraceContext
from helpdesk_runtime.transient import is_transient

log = get_logger(__name__)
_RETURNED = (
    "t.kind, t.key, t.tenant_id, t.due_at, t.payload::text AS payload, t.attempts, t.traceparent"
)


@dataclass(frozen=True)
class RetryPolicy:
    """How far a failing timer is pushed back: `base_s` doubling up to `max_s`, then, once
    it has failed `max_attempts` times, `poisoned_s`. The defaults give 10 tries over ~17
    minutes (2 s, 4 s … 512 s apart), enough to ride out a dependency's outage or a
    deploy, then one try every 6 hours."""

    base_s: float = 2.0
    max_s: float = 600.0
    max_attempts: int = 10
    poisoned_s: float = 6 * 3600.0

    def delay_s(self, attempts: int) -> float:
        """Seconds until the next try of a timer that has now failed `attempts` times."""
        if attempts >= self.max_attempts:
            return self.poisoned_s
        return float(min(self.base_s * 2 ** max(attempts - 1, 0), self.max_s))


Gate = Callable[[Connection], Awaitable[bool]]
"""Whether a lane may fire now; asked before each claim, outside its transaction."""


@dataclass(frozen=True)
class TimerLane:
    """Timer kinds fired by a scheduler of their own (`ServiceRuntime(timer_lanes=...)`),
    so a flood of one kind never delays another. A `gate` holds the lane back while it says
    no (survey mail while acknowledgements are behind): its timers are not even claimed,
    so a held lane costs one query per poll, not a claim and a reschedule per batch."""

    kinds: frozenset[str]
    gate: Gate | None = field(default=None, compare=False)


class _HandlerError(Exception):
    """A handler raised on these timers; their claim was rolled back."""

    def __init__(self, timers: list[DueTimer], cause: Exception) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.timers = timers
        self.cause = cause


class TimerScheduler:
    """Fires the due timers of the kinds it has handlers for; any number of replicas may run."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        handlers: Mapping[str, TimerHandler],
        *,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        clock: Clock = utc_now,
        retry: RetryPolicy = RetryPolicy(),  # frozen: sharing the default is harmless
        on_fired: OnFired | None = None,
        gate: Gate | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        if not handlers:
            raise ValueError("a timer scheduler needs at least one handler")
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._pool = pool
        self._handlers = dict(handlers)
        self._kinds = sorted(self._handlers)
        self._batch_size = int(batch_size)
        self._poll_interval_s = poll_interval_s
        self._clock = clock
        self._retry = retry
        self._on_fired = on_fired
        self._gate = gate
        self._tracer = tracer or Tracer()
        self.fired: Counter[str] = Counter()  # per kind: committed firings
        self.failed: Counter[str] = Counter()  # per kind: failed attempts pushed back
        self.last_error: str | None = None
        self._stopping = asyncio.Event()
        self.last_pass_at = 0.0  # time.monotonic() of the last pass that reached the database
        # The LIMIT is written into the statement, not passed: with a parameter a generic
        # plan would guess 10% of the table and could prefer a sequential scan and a sort.
        # A materialised CTE of at most `batch_size` rows makes the delete a nested loop
        # over the primary key; the rows it deletes are the ones it holds locked.
        self._claim_due = f"""
            WITH due AS MATERIALIZED (
                SELECT kind, tenant_id, key FROM timers
                WHERE due_at <= $1 AND kind = ANY($2::text[])
                ORDER BY due_at
                LIMIT {self._batch_size}
                FOR UPDATE SKIP LOCKED
            )
            DELETE FROM timers t USING due
            WHERE t.kind = due.kind AND t.tenant_id = due.tenant_id AND t.key = due.key
            RETURNING {_RETURNED}
        """

    async def fire_due(self) -> int:
        """Fire one batch of due timers (none while the lane's gate is shut); returns how
        many fired (their effects committed)."""
        if await self._held():
            return 0
        _, fired = await self._fire_batch()
        return fired

    def stop(self) -> None:
        """Return from `run` after the current batch (its transaction is not cut short)."""
        self._stopping.set()

    async def run(self) -> None:
        """Fire timers until stopped; database errors are logged and backed off, never fatal.

        Full batches follow each other at once; otherwise it sleeps until the earliest
        pending timer (one index probe) or the poll interval, whichever comes first. A timer
        another replica or transaction schedules sooner meanwhile is therefore late by at
        most the poll interval.
        """
        streak = FailureStreak("timer scheduler")
        while not self._stopping.is_set():
            try:
                if await self._held():
                    delay = self._poll_interval_s
                else:
                    claimed, _ = await self._fire_batch()
                    delay = 0.0 if claimed >= self._batch_size else await self._idle_delay(claimed)
                streak.succeeded()
                self.last_error = None
                self.last_pass_at = time.monotonic()
            except Exception as exc:
                streak.failed(exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(0.1 * 2**streak.failures, 10.0)
            with suppress(TimeoutError):  # also yields between full batches
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def _held(self) -> bool:
        if self._gate is None:
            return False
        async with self._pool.acquire() as conn:
            return not await self._gate(conn)

    async def _fire_batch(self) -> tuple[int, int]:
        """(claimed, fired) for one batch."""
        try:
            timers = await self._claim_and_apply(self._claim_due, self._clock(), self._kinds)
        except _HandlerError as failed:
            return len(failed.timers), await self._retry_apart(failed.timers, failed.cause)
        return len(timers), len(timers)

    async def _claim_and_apply(self, claim: str, *args: object) -> list[DueTimer]:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(claim, *args)
            timers = sorted((_due(r) for r in rows), key=lambda t: t.due_at)
            if timers:
                try:
                    await self._apply(conn, timers)
                except Exception as exc:  # rolls back the claim with the effects
                    if is_transient(exc):
                        raise  # the database or broker, not these timers: no attempt counted
                    raise _HandlerError(timers, exc) from exc
        self._count_fired(timers)
        return timers

    async def _apply(self, conn: Connection, timers: list[DueTimer]) -> None:
        by_kind: dict[str, list[DueTimer]] = {}
        for t in timers:
            by_kind.setdefault(t.kind, []).append(t)
        for kind, group in by_kind.items():
            if self._tracer.recording:
                await self._apply_traced(conn, kind, group)
                continue
            # What the handler appends continues the trace of what scheduled the timer; a
            # batch of many starts a trace of its own (a handler may narrow it per timer).
            span = group[0].span() if len(group) == 1 else TraceContext.new()
            with bound(timer_kind=kind, batch_size=len(group)), trace.using(span):
                await self._handlers[kind](conn, group)

    async def _apply_traced(self, conn: Connection, kind: str, group: list[DueTimer]) -> None:
        """Each timer whose trace is recorded fires alone, under its span, so that whatever
        its handler appends or sends belongs to that trace; the others (not sampled) fire
        together, as they would untraced."""
        spans = [
            self._tracer.start(
                f"timer {kind}", t.traceparent, SpanKind.INTERNAL,
                {"helpdesk.timer.kind": kind, "helpdesk.tenant_id": t.tenant_id,
                 "helpdesk.timer.key": t.key, "helpdesk.timer.attempt": t.attempts + 1},
            )
            for t in group
        ]  # fmt: skip
        handler, unsampled = self._handlers[kind], []
        with ended(spans):
            for timer, span in zip(group, spans, strict=True):
                if not span.context.sampled:
                    unsampled.append(timer)
                    continue
                with bound(timer_kind=kind, batch_size=1), trace.using(span.context):
                    await handler(conn, [timer])
            if unsampled:
                with bound(timer_kind=kind, batch_size=len(unsampled)),\
                        trace.using(TraceContext.new(sampled=False)):  # fmt: skip
                    await handler(conn, unsampled)

    async def _retry_apart(self, timers: list[DueTimer], cause: Exception) -> int:
        """Fire timers that failed together again in halves, until each failing one is alone:
        one poisoned timer costs about 2·log2(batch) transactions, and the rest fire now."""
        if len(timers) == 1:
            await self._record_failure(timers[0], cause)
            return 0
        fired = 0
        middle = len(timers) // 2
        for part in (timers[:middle], timers[middle:]):
            try:
                # Only if still as claimed: not rescheduled, cancelled or taken meanwhile.
                fired += len(await self._claim_and_apply(_CLAIM_AGAIN, *_identities(part)))
            except _HandlerError as failed:
                fired += await self._retry_apart(failed.timers, failed.cause)
        return fired

    async def _record_failure(self, timer: DueTimer, cause: Exception) -> None:
        attempts = timer.attempts + 1
        delay = self._retry.delay_s(attempts)
        error = f"{type(cause).__name__}: {cause}"[:2000]
        async with self._pool.acquire() as conn:
            moved = await conn.fetchval(
                _RECORD_FAILURE,
                timer.kind,
                timer.tenant_id,
                timer.key,
                timer.due_at,
                timer.attempts,
                self._clock() + timedelta(seconds=delay),
                error,
            )
        self.failed[timer.kind] += 1
        if not moved:
            return  # rescheduled, cancelled or being fired by another replica meanwhile
        fields = {
            "kind": timer.kind,
            "key": timer.key,
            "tenant_id": timer.tenant_id,
            "attempts": attempts,
            "retry_in_s": delay,
            "error": error,
        }
        if attempts >= self._retry.max_attempts:
            log.error("timer keeps failing; retried rarely", exc_info=cause, **fields)
        else:
            first = cause if attempts == 1 else False  # the traceback once, not at every retry
            log.warning("timer failed; retried later", exc_info=first, **fields)

    def _count_fired(self, timers: list[DueTimer]) -> None:
        now = self._clock()
        for t in timers:
            self.fired[t.kind] += 1
        if self._on_fired is None:
            return
        try:
            for t in timers:
                self._on_fired(t.kind, (now - t.due_at).total_seconds())
        except Exception:  # a metrics bug must not stop timers (these already committed)
            log.exception("on_fired callback failed")

    async def _idle_delay(self, claimed: int) -> float:
        """Until the next timer is due, at most the poll interval (another replica may
        schedule an earlier one meanwhile)."""
        async with self._pool.acquire() as conn:
            next_due = await conn.fetchval(_NEXT_DUE, self._kinds)
        if next_due is None:
            return self._poll_interval_s
        wait: float = (next_due - self._clock()).total_seconds()
        if wait <= 0 and claimed == 0:
            # Due yet not claimable: another replica holds it. Do not spin on it.
            return min(self._poll_interval_s, 0.1)
        return max(0.0, min(wait, self._poll_interval_s))


def _due(row: asyncpg.Record) -> DueTimer:
    return DueTimer(
        kind=row["kind"],
        key=row["key"],
        tenant_id=row["tenant_id"],
        due_at=row["due_at"],
        payload=json.loads(row["payload"]),
        attempts=row["attempts"],
        traceparent=row["traceparent"],
    )


def _identities(timers: Sequence[DueTimer]) -> tuple[list[Any], ...]:
    return (
        [t.kind for t in timers],
        [t.tenant_id for t in timers],
        [t.key for t in timers],
        [t.due_at for t in timers],
        [t.attempts for t in timers],
    )


# Claims timers again only as they were (same due_at and attempts): one moved by `schedule`
# meanwhile is a new intention, and one another replica holds is skipped.
_CLAIM_AGAIN = f"""
    WITH again AS MATERIALIZED (
        SELECT t.kind, t.tenant_id, t.key
        FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::int[])
            AS x(k, n, s, d, a)
        JOIN timers t ON t.kind = x.k AND t.tenant_id = x.n AND t.key = x.s
            AND t.due_at = x.d AND t.attempts = x.a
        FOR UPDATE OF t SKIP LOCKED
    )
    DELETE FROM timers t USING again
    WHERE t.kind = again.kind AND t.tenant_id = again.tenant_id AND t.key = again.key
    RETURNING {_RETURNED}
"""

_RECORD_FAILURE = """
    UPDATE timers t SET attempts = t.attempts + 1, due_at = $6, last_error = $7
    FROM (
        SELECT kind, tenant_id, key FROM timers
        WHERE kind = $1 AND tenant_id = $2 AND key = $3 AND due_at = $4 AND attempts = $5
        FOR UPDATE SKIP LOCKED
    ) failed
    WHERE t.kind = failed.kind AND t.tenant_id = failed.tenant_id AND t.key = failed.key
    RETURNING true
"""

_NEXT_DUE = "SELECT due_at FROM timers WHERE kind = ANY($1::text[]) ORDER BY due_at LIMIT 1"
