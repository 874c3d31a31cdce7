"""A service that declares timer handlers gets the timers table and a job that fires them,
and its metrics show what fired and how late."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from helpdesk_runtime import timers
from helpdesk_runtime.db import Component
from helpdesk_runtime.service import ServiceRuntime
from helpdesk_runtime.timer_scheduler import TimerLane
from helpdesk_runtime.timers import DueTimer

from support.runtime import service_settings


async def test_the_runtime_fires_due_timers_as_a_job_and_counts_them(
    database_url: str, kafka_bootstrap: str
) -> None:
    fired: list[DueTimer] = []
    done = asyncio.Event()

    async def remind(conn: Any, due: Any) -> None:
        await conn.execute("SELECT 1")  # runs in the claiming transaction
        fired.extend(due)
        if len(fired) >= 2:
            done.set()

    settings = service_settings(database_url, kafka_bootstrap, timer_poll_interval_s=0.05)
    runtime = ServiceRuntime(settings, timers={"remind": remind})
    assert Component.TIMERS in runtime.components
    async with runtime.lifespan():
        await runtime.connected()
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn, conn.transaction():
            await timers.schedule(conn, "remind", "a", now - timedelta(seconds=30), {}, "acme")
            await timers.schedule(conn, "remind", "b", now, {"n": 2}, "acme")
            await timers.schedule(conn, "remind", "later", now + timedelta(days=1), {}, "acme")
        await asyncio.wait_for(done.wait(), 10)
        assert {t.key for t in fired} == {"a", "b"}
        sample = runtime.metrics.registry.get_sample_value
        kind = {"kind": "remind"}
        async with asyncio.timeout(10):  # counted once the firing transaction commits
            while sample("helpdesk_timers_fired_total", kind) != 2:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        assert sample("helpdesk_timer_lateness_seconds_count", kind) == 2
        assert (sample("helpdesk_timer_lateness_seconds_sum", kind) or 0) >= 30  # "a": 30 s late
        await runtime.metrics.refresh()
        assert sample("helpdesk_timers_pending", {}) == 1  # "later" waits
        assert (await runtime.readiness())["job:timers"] == "ok"
    check = await asyncpg.connect(database_url)
    try:
        assert await check.fetchval("SELECT key FROM timers") == "later"
    finally:
        await check.close()


async def test_a_lane_fires_while_another_lanes_handler_is_stuck(
    database_url: str, kafka_bootstrap: str
) -> None:
    """Timer lanes: a kind in a lane of its own has a scheduler of its own, so a slow burst
    of one kind (survey mail) never holds up another (acknowledgements)."""
    stuck, urgent_fired = asyncio.Event(), asyncio.Event()
    release = asyncio.Event()

    async def bulk(_conn: Any, _due: Any) -> None:
        stuck.set()
        await release.wait()  # a provider that does not answer

    async def urgent(_conn: Any, _due: Any) -> None:
        urgent_fired.set()

    settings = service_settings(database_url, kafka_bootstrap, timer_poll_interval_s=0.05)
    runtime = ServiceRuntime(settings, timers={"bulk": bulk, "urgent": urgent},
                             timer_lanes=[{"urgent"}, {"bulk"}])  # fmt: skip
    async with runtime.lifespan():
        await runtime.connected()
        assert len(runtime.timer_schedulers) == 2
        now = datetime.now(UTC)
        async with runtime.pool.acquire() as conn, conn.transaction():
            await timers.schedule(conn, "bulk", "campaign", now - timedelta(seconds=5), {}, "acme")
        await asyncio.wait_for(stuck.wait(), 10)
        async with runtime.pool.acquire() as conn, conn.transaction():
            await timers.schedule(conn, "urgent", "ack", now, {}, "acme")
        await asyncio.wait_for(urgent_fired.wait(), 10)  # while bulk is still stuck
        assert not release.is_set()
        checks = await runtime.readiness()
        assert checks["job:timers:urgent"] == checks["job:timers:bulk"] == "ok"
        release.set()


def test_a_lane_must_name_kinds_with_handlers() -> None:
    async def handler(_conn: Any, _due: Any) -> None:
        return None

    settings = service_settings("postgresql://unused/db", "127.0.0.1:1")
    with pytest.raises(ValueError, match="no handler: \\['surveys'\\]"):
        ServiceRuntime(settings, timers={"acks": handler}, timer_lanes=[{"surveys"}])


async def test_a_gated_lane_fires_only_while_its_gate_is_open(
    database_url: str, kafka_bootstrap: str
) -> None:
    """A lane's gate holds its timers unclaimed (survey mail while acknowledgements are
    behind); the lane fires as soon as the gate opens."""
    fired, open_now, held = asyncio.Event(), asyncio.Event(), asyncio.Event()
    asked = 0

    async def gate(_conn: Any) -> bool:
        nonlocal asked
        asked += 1
        if asked >= 5:  # asked again and again, and said no
            held.set()
        return open_now.is_set()

    async def bulk(_conn: Any, _due: Any) -> None:
        fired.set()

    settings = service_settings(database_url, kafka_bootstrap, timer_poll_interval_s=0.05)
    runtime = ServiceRuntime(settings, timers={"bulk": bulk},
                             timer_lanes=[TimerLane(frozenset({"bulk"}), gate=gate)])  # fmt: skip
    async with runtime.lifespan():
        await runtime.connected()
        async with runtime.pool.acquire() as conn, conn.transaction():
            await timers.schedule(conn, "bulk", "campaign", datetime.now(UTC), {}, "acme")
        await asyncio.wait_for(held.wait(), 10)
        assert not fired.is_set()
        async with runtime.pool.acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM timers WHERE kind = 'bulk'") == 1
        open_now.set()
        await asyncio.wait_for(fired.wait(), 10)
