"""Durable timers against the real PostgreSQL: due order, moves, failures, replicas, restarts."""

import asyncio
import inspect
import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from helpdesk_runtime import trace
from helpdesk_runtime.db import Connection, create_pool
from helpdesk_runtime.timer_scheduler import RetryPolicy, TimerScheduler
from helpdesk_runtime.timers import (
    DueTimer,
    Timer,
    cancel,
    cancel_many,
    overdue_count,
    pending_count,
    schedule,
    schedule_many,
)
from helpdesk_runtime.trace import TraceContext

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
Handler = Callable[[Connection, Sequence[DueTimer]], Awaitable[None]]


class FakeClock:
    """The scheduler's "now", moved by the test."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
async def effects(pool: asyncpg.Pool) -> None:
    """A table the handlers write in the claiming transaction: one row per application."""
    await pool.execute("CREATE TABLE timer_effects (kind text, key text, tenant_id text)")


async def record(conn: Connection, timers: Sequence[DueTimer]) -> None:
    await conn.execute(
        "INSERT INTO timer_effects SELECT * FROM unnest($1::text[], $2::text[], $3::text[])",
        [t.kind for t in timers],
        [t.key for t in timers],
        [t.tenant_id for t in timers],
    )


async def applied(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch("SELECT key FROM timer_effects ORDER BY key")
    return [r["key"] for r in rows]


async def stored(pool: asyncpg.Pool, key: str) -> asyncpg.Record | None:
    return await pool.fetchrow("SELECT * FROM timers WHERE key = $1", key)


async def put(pool: asyncpg.Pool, key: str, due_at: datetime, **payload: Any) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await schedule(conn, "sla.deadline", key, due_at, payload, "acme")


def scheduler(
    pool: asyncpg.Pool, clock: FakeClock, handler: Handler = record, **kw: Any
) -> TimerScheduler:
    return TimerScheduler(pool, {"sla.deadline": handler}, clock=clock, **kw)


async def wait_for(
    condition: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0
) -> None:
    """Poll a condition (sync or async) until it holds; fail after the timeout."""
    async with asyncio.timeout(timeout_s):
        while True:
            result = condition()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.02)


@pytest.mark.usefixtures("effects")
async def test_fires_when_due_and_not_before(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    seen: list[DueTimer] = []
    lateness: list[tuple[str, float]] = []

    async def handler(conn: Connection, timers: Sequence[DueTimer]) -> None:
        seen.extend(timers)
        await record(conn, timers)

    timers = scheduler(pool, clock, handler, on_fired=lambda k, s: lateness.append((k, s)))
    await put(pool, "t-1", T0 + timedelta(seconds=60), ticket="t-1", policy="p1")

    assert await timers.fire_due() == 0
    clock.advance(59.999)
    assert await timers.fire_due() == 0
    clock.advance(30.001)  # 30 s late
    assert await timers.fire_due() == 1
    assert await timers.fire_due() == 0  # deleted with the effect: never twice

    assert await applied(pool) == ["t-1"]
    assert seen == [
        DueTimer(
            "sla.deadline",
            "t-1",
            "acme",
            T0 + timedelta(seconds=60),
            {"ticket": "t-1", "policy": "p1"},
        )
    ]
    assert lateness == [("sla.deadline", 30.0)]
    assert timers.fired == {"sla.deadline": 1}
    assert await stored(pool, "t-1") is None


@pytest.mark.usefixtures("effects")
async def test_a_timer_is_set_with_the_callers_transaction(pool: asyncpg.Pool) -> None:
    async def change_state_and_fail() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await schedule(conn, "sla.deadline", "t-1", T0, {}, "acme")
            raise RuntimeError("the state change failed")

    with pytest.raises(RuntimeError):
        await change_state_and_fail()
    assert await stored(pool, "t-1") is None
    assert await scheduler(pool, FakeClock(T0 + timedelta(days=1))).fire_due() == 0


@pytest.mark.usefixtures("effects")
async def test_scheduling_again_moves_the_timer(pool: asyncpg.Pool) -> None:
    clock = FakeClock()
    timers = scheduler(pool, clock)
    await put(pool, "sooner", T0 + timedelta(seconds=60), v=1)
    await put(pool, "sooner", T0 + timedelta(seconds=10), v=2)  # moved earlier
    await put(pool, "later", T0 + timedelta(seconds=10))
    await put(pool, "later", T0 + timedelta(seconds=120))  # moved later

    clock.advance(10)
    assert await timers.fire_due() == 1
    assert await applied(pool) == ["sooner"]
    clock.advance(50)
    assert await timers.fire_due() == 0  # neither the old "sooner" nor the old "later"
    clock.advance(60)
    assert await timers.fire_due() == 1
    assert await applied(pool) == ["later", "sooner"]


@pytest.mark.usefixtures("effects")
async def test_cancel_removes_the_timer(pool: asyncpg.Pool) -> None:
    await put(pool, "t-1", T0)
    await put(pool, "t-2", T0)
    await put(pool, "t-3", T0)
    async with pool.acquire() as conn:
        assert not await cancel(conn, "sla.deadline", "globex", "t-1")  # not globex's
        assert await cancel(conn, "sla.deadline", "acme", "t-1")
        assert not await cancel(conn, "sla.deadline", "acme", "t-1")
        assert await cancel_many(conn, "sla.deadline", "globex", ["t-2"]) == 0
        assert await cancel_many(conn, "sla.deadline", "acme", ["t-2", "t-9"]) == 1
    assert await scheduler(pool, FakeClock(T0 + timedelta(days=1))).fire_due() == 1
    assert await applied(pool) == ["t-3"]


async def test_tenants_with_the_same_key_have_timers_of_their_own(pool: asyncpg.Pool) -> None:
    await put(pool, "t-1", T0)
    async with pool.acquire() as conn:
        await schedule_many(
            conn,
            [
                Timer("sla.deadline", "t-1", "globex", T0 + timedelta(days=1), {}),
                Timer("sla.deadline", "t-2", "globex", T0, {}),
            ],
        )
    rows = await pool.fetch("SELECT tenant_id, due_at FROM timers WHERE key = 't-1' ORDER BY 1")
    assert [(r["tenant_id"], r["due_at"]) for r in rows] == [
        ("acme", T0), ("globex", T0 + timedelta(days=1)),
    ]  # fmt: skip


@pytest.mark.usefixtures("effects")
async def test_a_handler_can_set_its_own_timer_again(pool: asyncpg.Pool) -> None:
    """The notification-retry pattern: firing deletes the row, so scheduling the same
    (kind, key) in the handler's transaction sets a fresh timer."""
    clock = FakeClock()

    async def again_in_a_minute(conn: Connection, timers: Sequence[DueTimer]) -> None:
        await record(conn, timers)
        for t in timers:
            tries = t.payload["tries"] + 1
            await schedule(
                conn, t.kind, t.key, t.due_at + timedelta(minutes=1), {"tries": tries}, t.tenant_id
            )

    timers = scheduler(pool, clock, again_in_a_minute)
    await put(pool, "retry-me", T0, tries=0)
    assert await timers.fire_due() == 1
    assert await timers.fire_due() == 0
    clock.advance(60)
    assert await timers.fire_due() == 1
    row = await stored(pool, "retry-me")
    assert row is not None
    assert (row["due_at"], json.loads(row["payload"])) == (T0 + timedelta(minutes=2), {"tries": 2})


async def test_timers_of_kinds_without_a_handler_wait(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await schedule(conn, "quiet_hours.end", "q-1", T0, {}, "acme")
    timers = scheduler(pool, FakeClock(T0 + timedelta(days=1)))
    assert await timers.fire_due() == 0  # another scheduler (or a later deploy) fires it
    assert await stored(pool, "q-1") is not None


@pytest.mark.usefixtures("effects")
async def test_two_schedulers_fire_a_burst_exactly_once(pool: asyncpg.Pool) -> None:
    burst = [
        Timer("sla.deadline", f"t-{i:05}", f"tenant{i % 7}", T0 + timedelta(milliseconds=i), {})
        for i in range(3000)
    ]
    async with pool.acquire() as conn:
        await schedule_many(conn, burst)
    both_hold_a_batch = asyncio.Barrier(2)

    def replica() -> TimerScheduler:
        first = True

        async def handler(conn: Connection, timers: Sequence[DueTimer]) -> None:
            nonlocal first
            await record(conn, timers)
            if first:  # each holds its first claim until the other holds one too
                first = False
                await asyncio.wait_for(both_hold_a_batch.wait(), 10)

        return scheduler(pool, FakeClock(T0 + timedelta(minutes=1)), handler, batch_size=100)

    async def drain(timers: TimerScheduler) -> None:
        while await timers.fire_due():
            pass

    a, b = replica(), replica()
    await asyncio.gather(drain(a), drain(b))
    while await a.fire_due():  # whatever one saw locked by the other at its very end
        pass

    keys = await applied(pool)
    assert len(keys) == 3000
    assert keys == sorted(t.key for t in burst)  # every timer applied, none twice
    assert a.fired["sla.deadline"] > 0
    assert b.fired["sla.deadline"] > 0
    assert a.fired["sla.deadline"] + b.fired["sla.deadline"] == 3000
    assert await pool.fetchval("SELECT count(*) FROM timers") == 0


@pytest.mark.usefixtures("effects")
async def test_a_failing_handler_rolls_back_and_the_timer_fires_again_later(
    pool: asyncpg.Pool,
) -> None:
    clock, calls = FakeClock(), 0

    async def flaky(conn: Connection, timers: Sequence[DueTimer]) -> None:
        nonlocal calls
        calls += 1
        await record(conn, timers)  # rolled back with the claim when it raises
        if calls == 1:
            raise RuntimeError("notification provider answered 503")

    timers = scheduler(pool, clock, flaky, retry=RetryPolicy(base_s=5.0))
    await put(pool, "t-1", T0)

    assert await timers.fire_due() == 0
    assert await applied(pool) == []
    row = await stored(pool, "t-1")
    assert row is not None
    assert row["attempts"] == 1
    assert row["due_at"] == T0 + timedelta(seconds=5)  # pushed back, not spun on
    assert "503" in row["last_error"]
    assert await timers.fire_due() == 0
    assert calls == 1

    clock.advance(5)
    assert await timers.fire_due() == 1
    assert await applied(pool) == ["t-1"]
    assert timers.failed == {"sla.deadline": 1}
    assert timers.fired == {"sla.deadline": 1}


@pytest.mark.usefixtures("effects")
async def test_a_poisoned_timer_does_not_block_the_others(pool: asyncpg.Pool) -> None:
    clock = FakeClock()

    async def handler(conn: Connection, timers: Sequence[DueTimer]) -> None:
        await record(conn, timers)
        if any(t.payload.get("poison") for t in timers):
            raise ValueError("cannot render the template")

    policy = RetryPolicy(base_s=1.0, max_s=3.0, max_attempts=4, poisoned_s=3600.0)
    timers = scheduler(pool, clock, handler, retry=policy)
    await put(pool, "poison", T0, poison=True)
    async with pool.acquire() as conn:
        await schedule_many(
            conn, [Timer("sla.deadline", f"ok-{i:02}", "acme", T0, {}) for i in range(49)]
        )

    assert await timers.fire_due() == 49  # in the same call, by halving the failed batch
    assert len(await applied(pool)) == 49

    delays = []
    for attempts in range(1, 6):
        row = await stored(pool, "poison")
        assert row is not None
        assert row["attempts"] == attempts
        delays.append((row["due_at"] - clock.now).total_seconds())
        assert await timers.fire_due() == 0  # not due yet: nothing is retried early
        await put(pool, f"later-{attempts}", row["due_at"])  # others due alongside still fire
        clock.now = row["due_at"]
        assert await timers.fire_due() == 1
    assert delays == [1.0, 2.0, 3.0, 3600.0, 3600.0]  # doubling, capped; then rarely, kept
    assert await stored(pool, "poison") is not None
    assert "poison" not in await applied(pool)


@pytest.mark.usefixtures("effects")
async def test_timers_survive_a_restart(pool: asyncpg.Pool, database_url: str) -> None:
    clock = FakeClock()
    await put(pool, "t-1", T0 + timedelta(seconds=60))
    await put(pool, "t-2", T0)
    claimed = asyncio.Event()

    async def crashes(conn: Connection, timers: Sequence[DueTimer]) -> None:
        claimed.set()
        await asyncio.Event().wait()  # the process dies while the handler runs

    first = asyncio.create_task(scheduler(pool, clock, crashes).fire_due())
    await asyncio.wait_for(claimed.wait(), 10)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await pool.close()

    restarted = await create_pool(database_url, min_size=1, max_size=2)
    try:
        clock.advance(60)
        timers = scheduler(restarted, clock)
        assert await timers.fire_due() == 2
        assert await applied(restarted) == ["t-1", "t-2"]
    finally:
        await restarted.close()


@pytest.mark.usefixtures("effects")
async def test_run_drains_full_batches_then_sleeps_until_the_next_due(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    async with pool.acquire() as conn:
        await schedule_many(
            conn,
            [
                *(Timer("sla.deadline", f"burst-{i:03}", "acme", now, {}) for i in range(250)),
                Timer("sla.deadline", "soon", "acme", now + timedelta(seconds=0.5), {}),
            ],
        )
    # A poll interval far longer than the test: only reading the next due_at wakes it in time.
    timers = TimerScheduler(pool, {"sla.deadline": record}, batch_size=100, poll_interval_s=60)
    running = asyncio.create_task(timers.run())
    try:
        await wait_for(lambda: _applied_count(pool, 250))
        await wait_for(lambda: _applied_count(pool, 251))
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert timers.fired == {"sla.deadline": 251}


@pytest.mark.usefixtures("effects")
async def test_run_survives_database_errors(pool: asyncpg.Pool) -> None:
    timers = TimerScheduler(pool, {"sla.deadline": record}, poll_interval_s=0.05)
    running = asyncio.create_task(timers.run())
    try:
        await wait_for(lambda: timers.last_pass_at > 0)
        await pool.execute("ALTER TABLE timers RENAME TO timers_away")
        await put_away(pool, "during-outage")
        await wait_for(lambda: timers.last_error is not None)
        assert "timers" in (timers.last_error or "")
        await pool.execute("ALTER TABLE timers_away RENAME TO timers")
        await wait_for(lambda: _applied_count(pool, 1))
        await wait_for(lambda: timers.last_error is None)
        assert not running.done()
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert await applied(pool) == ["during-outage"]


async def put_away(pool: asyncpg.Pool, key: str) -> None:
    """Schedule while the table is renamed (a due timer waits for the outage to end)."""
    await pool.execute(
        "INSERT INTO timers_away (kind, key, tenant_id, due_at, payload)"
        " VALUES ('sla.deadline', $1, 'acme', now(), $2::jsonb)",
        key,
        json.dumps({}),
    )


async def _applied_count(pool: asyncpg.Pool, n: int) -> bool:
    return bool(await pool.fetchval("SELECT count(*) FROM timer_effects") >= n)


async def test_pending_and_overdue_counts(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await schedule_many(
            conn,
            [
                Timer("sla.deadline", f"t-{i}", "acme", T0 + timedelta(hours=i), {})
                for i in range(30)
            ],
        )
        assert await pending_count(conn) == 30  # never analysed: counted exactly
        await conn.execute("ANALYZE timers")
        assert await pending_count(conn) == 30  # the estimate, from the statistics
        assert await overdue_count(conn, T0 + timedelta(hours=9, minutes=30)) == 10


async def test_what_a_timer_causes_continues_the_trace_that_scheduled_it(
    pool: asyncpg.Pool,
) -> None:
    scheduled_in = TraceContext.new()
    with trace.using(scheduled_in):
        await put(pool, "traced", T0)
    seen: list[str | None] = []

    async def handler(conn: Connection, due: Sequence[DueTimer]) -> None:
        seen.append(trace.traceparent_for(None))

    assert await scheduler(pool, FakeClock(T0), handler).fire_due() == 1
    context = TraceContext.parse(seen[0])
    assert context is not None
    assert context.trace_id == scheduled_in.trace_id
    assert context.span_id != scheduled_in.span_id
