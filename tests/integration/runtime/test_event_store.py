import asyncio
from uuid import uuid4

import asyncpg
import pytest

from helpdesk_runtime.eventstore import ConcurrencyError, PostgresEventStore

from support.events import note, opened


async def test_appends_and_loads_a_stream_in_version_order(pool: asyncpg.Pool) -> None:
    ticket = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(ticket), note(ticket, 2), note(ticket, 3)])
    async with pool.acquire() as conn:
        loaded = await PostgresEventStore(conn).load("acme", ticket)
    assert [e.aggregate_version for e in loaded] == [1, 2, 3]
    assert loaded[0].payload.subject == "Invoice shows the wrong amount"


async def test_a_stream_is_invisible_to_another_tenant(pool: asyncpg.Pool) -> None:
    ticket = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(ticket, tenant="acme")])
    async with pool.acquire() as conn:
        store = PostgresEventStore(conn)
        assert await store.load("globex", ticket) == []
        assert await store.versions([("globex", ticket)]) == {}
        assert await store.versions([("acme", ticket)]) == {("acme", ticket): 1}


async def test_two_writers_of_the_same_version_one_wins(pool: asyncpg.Pool) -> None:
    ticket = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(ticket)])

    both_loaded = asyncio.Barrier(2)

    async def writer() -> str:
        async with pool.acquire() as conn:
            try:
                async with conn.transaction():
                    store = PostgresEventStore(conn)
                    version = len(await store.load("acme", ticket))
                    await both_loaded.wait()  # both decided on version 2 from what they read
                    await store.append([note(ticket, version + 1)])
                    return "won"
            except ConcurrencyError:
                return "conflict"

    results = sorted(await asyncio.gather(writer(), writer()))
    assert results == ["conflict", "won"]
    async with pool.acquire() as conn:
        assert [
            e.aggregate_version for e in await PostgresEventStore(conn).load("acme", ticket)
        ] == [1, 2]


async def test_a_failed_append_leaves_nothing_behind(pool: asyncpg.Pool) -> None:
    ticket = uuid4()
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(ticket)])
    async with pool.acquire() as conn:
        with pytest.raises(ConcurrencyError):
            async with conn.transaction():
                # version 2 is new, version 1 is taken: the whole append is refused
                await PostgresEventStore(conn).append([note(ticket, 2), opened(ticket)])
        assert len(await PostgresEventStore(conn).load("acme", ticket)) == 1
