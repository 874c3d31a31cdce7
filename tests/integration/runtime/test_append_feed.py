import asyncio
import time
from uuid import uuid4

import asyncpg

from helpdesk_runtime.eventstore import PostgresEventStore
from helpdesk_runtime.feed import AppendFeed

from support.events import opened


async def _append(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(uuid4())])


async def _woken_by_an_append(pool: asyncpg.Pool, feed: AppendFeed) -> float:
    waiter = asyncio.create_task(feed.wait(5.0))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await _append(pool)
    await waiter
    return time.monotonic() - started


async def test_the_feed_wakes_waiters_and_survives_losing_its_connection(
    pool: asyncpg.Pool,
) -> None:
    feed = AppendFeed(pool)
    feed.start()
    try:
        await asyncio.sleep(0.3)
        assert await _woken_by_an_append(pool, feed) < 2.0  # woken, not timed out after 5 s

        killed = await pool.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE query LIKE 'LISTEN%' AND datname = current_database()"
        )
        assert killed == 1
        await asyncio.sleep(0.5)  # the feed notices and listens again on a new connection
        assert await _woken_by_an_append(pool, feed) < 2.0
    finally:
        await feed.stop()
