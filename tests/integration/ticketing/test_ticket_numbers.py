"""Ticket numbers from a sequence per tenant: increasing, and never waiting for a writer."""

import asyncio
from contextlib import suppress

import asyncpg

from helpdesk_runtime.db import create_pool, migrate
from ticketing.bootstrap import build_runtime
from ticketing.config import Settings
from ticketing.numbers import PostgresTicketNumbers


async def test_each_tenant_counts_from_one(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        numbers = PostgresTicketNumbers(conn)
        assert await numbers.reserve("acme") == [1]
        assert await numbers.reserve("acme", 3) == [2, 3, 4]
        assert await numbers.reserve("a-tenant-whose-id-is-far-too-long-for-a-name-" * 2) == [1]
        assert await numbers.reserve("globex", 2) == [1, 2]


async def test_a_batch_reserves_for_all_its_tenants_in_one_go(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        numbers = PostgresTicketNumbers(conn)
        assert await numbers.reserve("acme", 2) == [1, 2]
        assert await numbers.reserve_each({"acme": 3, "globex": 2}) == {
            "acme": [3, 4, 5],
            "globex": [1, 2],
        }


class _RollbackError(Exception):
    pass


async def test_a_writer_holding_its_numbers_does_not_make_others_wait(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as first, pool.acquire() as second:
        await PostgresTicketNumbers(first).reserve("acme")  # the sequence exists from here
        with suppress(_RollbackError):
            async with first.transaction():
                assert await PostgresTicketNumbers(first).reserve("acme", 2) == [2, 3]
                # A counter row would keep this waiting until `first` commits.
                later = await asyncio.wait_for(PostgresTicketNumbers(second).reserve("acme"), 5)
                assert later == [4]
                raise _RollbackError
        # The rolled-back numbers are skipped, never handed out twice.
        assert await PostgresTicketNumbers(second).reserve("acme") == [5]


async def test_two_first_reservations_at_once_share_one_sequence(pool: asyncpg.Pool) -> None:
    async def reserve() -> list[int]:
        async with pool.acquire() as conn, conn.transaction():
            return await PostgresTicketNumbers(conn).reserve("initech", 3)

    first, second = await asyncio.gather(reserve(), reserve())
    assert sorted(first + second) == [1, 2, 3, 4, 5, 6]


async def test_counters_kept_before_the_sequences_carry_on(empty_database_url: str) -> None:
    migrations = build_runtime(Settings()).migrations
    before = [m for m in migrations if m.name < "ticketing/0009"]
    pool = await create_pool(empty_database_url, min_size=1, max_size=2)
    try:
        await migrate(pool, before)
        await pool.execute("INSERT INTO ticket_numbers VALUES ('acme', 1041)")
        await migrate(pool, migrations)
        async with pool.acquire() as conn:
            assert await PostgresTicketNumbers(conn).reserve("acme") == [1042]
    finally:
        await pool.close()
