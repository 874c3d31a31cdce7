"""A service that declares timer handlers gets the timers table and a job that fires them,
and its metrics show what fired and how late."""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from helpdesk_runtime import timers
from helpdesk_runtime.db import Component
from helpdesk_runtime.service import ServiceRuntime
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
