import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import uuid4

import asyncpg
import pytest

from helpdesk_runtime.eventstore import ConcurrencyError, EventStore, PostgresEventStore

from support.events import note, opened
from support.eventstore_contract import EventStoreContract, InTransaction
from support.privacy import DEV_KEYS


class TestPostgresEventStore(EventStoreContract):
    @pytest.fixture
    def in_transaction(self, pool: asyncpg.Pool) -> InTransaction:
        @asynccontextmanager
        async def transaction() -> AsyncIterator[EventStore]:
            async with pool.acquire() as conn, conn.transaction():
                yield PostgresEventStore(conn)

        return transaction


class TestPostgresEventStoreSealingPersonalData(EventStoreContract):
    """The same contract when the store seals personal data: what it loads is what was
    appended, field for field."""

    @pytest.fixture
    def in_transaction(self, pool: asyncpg.Pool) -> InTransaction:
        @asynccontextmanager
        async def transaction() -> AsyncIterator[EventStore]:
            async with pool.acquire() as conn, conn.transaction():
                yield PostgresEventStore(conn, keys=DEV_KEYS)

        return transaction


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
        versions = [
            e.aggregate_version for e in await PostgresEventStore(conn).load("acme", ticket)
        ]
    assert versions == [1, 2]
