"""Timer burst: 1,000,000 pending timers, 100,000 of them due within the same minute.

Measures how long one TimerScheduler takes to fire the due ones with a handler that writes
one small row per timer (batched, as a service's handler does), then, in the same run and
on a table of the same size, the raw ceiling: a plain asyncpg loop doing the same
claim-delete and insert batches without the scheduler, so the figure reads as a ratio.
Figures are printed, not asserted. BENCH_TIMERS_PENDING (default 1,000,000),
BENCH_TIMERS_DUE (100,000), BENCH_TIMERS_BATCH (500) and BENCH_TIMERS_ROUNDS (3) change
the sizes.
"""

import json
import os
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from helpdesk_runtime.db import Connection, runtime_migrations
from helpdesk_runtime.timer_scheduler import TimerScheduler
from helpdesk_runtime.timers import DueTimer, overdue_count, pending_count

from support.fixtures import template_with
from support.servers import Servers

PENDING = int(os.environ.get("BENCH_TIMERS_PENDING", "1000000"))
DUE = int(os.environ.get("BENCH_TIMERS_DUE", "100000"))
BATCH = int(os.environ.get("BENCH_TIMERS_BATCH", "500"))
ROUNDS = int(os.environ.get("BENCH_TIMERS_ROUNDS", "3"))
MINUTE = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)  # the due ones fall within this minute
NOW = MINUTE + timedelta(minutes=1)

# Of the ids first+1 … first+PENDING, one in PENDING/DUE is due within MINUTE, the others up
# to 30 days later. A fill writes either the ones due or the others: the due ones are
# written together, as deadlines are (tickets opened in one minute fall due in one minute),
# and every round of the benchmark fires timers laid out alike.


@pytest.fixture(scope="module")
async def template_database(real_servers: Servers, service_role: str) -> AsyncIterator[str]:
    """The runtime's own tables (ticketing, the default, sets no timers)."""
    async for name in template_with(real_servers, service_role, runtime_migrations()):
        yield name


_INSERT = """
    INSERT INTO timers (kind, key, tenant_id, due_at, payload)
    SELECT $1, $1 || ':' || g, 'bench' || (g % 20),
           CASE WHEN $6 THEN $2::timestamptz + (g % 60000) * interval '1 millisecond'
                ELSE $2::timestamptz + interval '1 hour' + (g % 2592000) * interval '1 second' END,
           jsonb_build_object('ticket_id', md5(g::text)::uuid, 'policy', 'first-response')
    FROM generate_series($3::bigint + 1, $3::bigint + $5) AS g
    WHERE (g % $4 = 0) = $6
"""
_EFFECT = """
    INSERT INTO timer_bench_effects (tenant_id, ticket_id, fired_at)
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::timestamptz[])
"""
# What TimerScheduler sends, written out for the raw loop.
_RAW_CLAIM = f"""
    WITH due AS MATERIALIZED (
        SELECT kind, key FROM timers WHERE due_at <= $1 AND kind = ANY($2::text[])
        ORDER BY due_at LIMIT {BATCH} FOR UPDATE SKIP LOCKED
    )
    DELETE FROM timers t USING due WHERE t.kind = due.kind AND t.key = due.key
    RETURNING t.kind, t.key, t.tenant_id, t.due_at, t.payload::text AS payload, t.attempts
"""


async def _fill(
    pool: asyncpg.Pool, admin: Connection, kind: str, first: int, *, due: bool
) -> float:
    """Insert the due timers of `kind` (or the waiting ones) in slices, then settle."""
    started = time.perf_counter()
    every = max(PENDING // DUE, 1)
    async with pool.acquire() as conn:
        for start in range(first, first + PENDING, 250_000):
            size = min(250_000, first + PENDING - start)
            await conn.execute(_INSERT, kind, MINUTE, start, every, size, due)
        # A settled table, as in a live service, and no checkpoint left to slow what follows
        # (CHECKPOINT needs the admin role; the service role only owns its database).
        await conn.execute("VACUUM ANALYZE timers")
    await admin.execute("CHECKPOINT")
    return time.perf_counter() - started


async def _record(conn: Connection, timers: Sequence[DueTimer]) -> None:
    await conn.execute(
        _EFFECT,
        [t.tenant_id for t in timers],
        [t.payload["ticket_id"] for t in timers],
        [NOW] * len(timers),
    )


async def _scheduler_burst(pool: asyncpg.Pool) -> tuple[int, float]:
    lateness: list[float] = []
    timers = TimerScheduler(
        pool,
        {"bench": _record},
        batch_size=BATCH,
        clock=lambda: NOW,
        on_fired=lambda _kind, s: lateness.append(s),
    )
    started = time.perf_counter()
    fired = 0
    while n := await timers.fire_due():
        fired += n
    return fired, time.perf_counter() - started


async def _raw_burst(pool: asyncpg.Pool) -> tuple[int, float]:
    started = time.perf_counter()
    fired = 0
    async with pool.acquire() as conn:
        while True:
            async with conn.transaction():
                rows = await conn.fetch(_RAW_CLAIM, NOW, ["raw"])
                if not rows:
                    break
                payloads = [json.loads(r["payload"]) for r in rows]
                await conn.execute(
                    _EFFECT,
                    [r["tenant_id"] for r in rows],
                    [p["ticket_id"] for p in payloads],
                    [NOW] * len(rows),
                )
            fired += len(rows)
    return fired, time.perf_counter() - started


async def _timed(conn: Connection, query: str, *args: object) -> tuple[int, float]:
    started = time.perf_counter()
    value = await conn.fetchval(query, *args)
    return int(value), 1000 * (time.perf_counter() - started)


def _seconds(runs: list[tuple[int, float]]) -> str:
    return ", ".join(f"{s:.2f}" for _, s in runs)


async def test_a_burst_of_due_timers_is_fired(pool: asyncpg.Pool, real_servers: Servers) -> None:
    admin = await asyncpg.connect(real_servers.database_admin_url)
    try:
        await _burst(pool, admin)
    finally:
        await admin.close()


async def _burst(pool: asyncpg.Pool, admin: Connection) -> None:
    await pool.execute(
        "CREATE TABLE timer_bench_effects"
        " (tenant_id text NOT NULL, ticket_id uuid NOT NULL, fired_at timestamptz NOT NULL)"
    )
    fill_s = await _fill(pool, admin, "waiting", 0, due=False)
    fill_s += await _fill(pool, admin, "bench", 0, due=True)
    async with pool.acquire() as conn:
        started = time.perf_counter()
        estimate = await pending_count(conn)
        estimate_ms = 1000 * (time.perf_counter() - started)
        exact, exact_ms = await _timed(conn, "SELECT count(*) FROM timers")
        overdue, overdue_ms = await _timed(
            conn, "SELECT count(*) FROM timers WHERE due_at <= $1", NOW
        )
        assert overdue == await overdue_count(conn, NOW)

    # Rounds on the same table each time (the waiting timers plus as many due again), taking
    # turns at going first; the best round of each is compared. Commits wait for the disk,
    # so single rounds vary by tens of percent on a small machine.
    scheduler_runs: list[tuple[int, float]] = []
    raw_runs: list[tuple[int, float]] = []
    for round_ in range(ROUNDS):
        for kind in ("bench", "raw") if round_ % 2 == 0 else ("raw", "bench"):
            if scheduler_runs or raw_runs:  # the first fill made the first round's due ones
                first = (len(scheduler_runs) + len(raw_runs)) * PENDING
                await _fill(pool, admin, kind, first, due=True)
            if kind == "bench":
                scheduler_runs.append(await _scheduler_burst(pool))
            else:
                raw_runs.append(await _raw_burst(pool))

    assert {n for n, _ in scheduler_runs + raw_runs} == {overdue}
    assert await pool.fetchval("SELECT count(*) FROM timer_bench_effects") == 2 * ROUNDS * overdue
    scheduler_s = min(s for _, s in scheduler_runs)
    raw_s = min(s for _, s in raw_runs)
    print(
        f"\nTimer burst: {exact:,} pending, {overdue:,} due within one minute,"
        f" batches of {BATCH} (filled in {fill_s:.1f} s):"
        f"\n  TimerScheduler.fire_due: {overdue / scheduler_s:,.0f} timers/s (best of"
        f" {_seconds(scheduler_runs)} s for {overdue:,})"
        f"\n  raw asyncpg loop:        {overdue / raw_s:,.0f} timers/s (best of"
        f" {_seconds(raw_runs)} s); the scheduler reaches {raw_s / scheduler_s:.0%} of it"
        f"\n  pending_count (estimate) {estimate:,} in {estimate_ms:.1f} ms;"
        f" exact count(*) {exact_ms:.0f} ms; overdue count {overdue_ms:.0f} ms"
    )
