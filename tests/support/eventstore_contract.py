"""What every EventStore does; subclassed once per implementation (fake and PostgreSQL)."""

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from uuid import uuid4

import pytest

from helpdesk_runtime.eventstore import ConcurrencyError, EventStore

from support.events import note, opened

InTransaction = Callable[[], AbstractAsyncContextManager[EventStore]]


class EventStoreContract:
    @pytest.fixture
    def in_transaction(self) -> InTransaction:
        raise NotImplementedError

    async def test_appends_and_loads_a_stream_in_version_order(
        self, in_transaction: InTransaction
    ) -> None:
        ticket = uuid4()
        first = opened(ticket)
        async with in_transaction() as store:
            await store.append([first, note(ticket, 2)])
        async with in_transaction() as store:
            await store.append([note(ticket, 3)])
            loaded = await store.load("acme", ticket)
        assert [e.aggregate_version for e in loaded] == [1, 2, 3]
        assert loaded[0] == first  # every envelope field survives the round trip

    async def test_appends_several_streams_at_once(self, in_transaction: InTransaction) -> None:
        a, b = uuid4(), uuid4()
        async with in_transaction() as store:
            await store.append([opened(a), opened(b, tenant="globex"), note(a, 2)])
            assert await store.versions([("acme", a), ("globex", b)]) == {
                ("acme", a): 2,
                ("globex", b): 1,
            }

    async def test_a_stream_is_invisible_to_another_tenant(
        self, in_transaction: InTransaction
    ) -> None:
        ticket = uuid4()
        async with in_transaction() as store:
            await store.append([opened(ticket, tenant="acme")])
            assert await store.load("globex", ticket) == []
            assert await store.versions([("globex", ticket)]) == {}

    async def test_a_taken_version_is_a_conflict_and_nothing_is_written(
        self, in_transaction: InTransaction
    ) -> None:
        ticket = uuid4()
        async with in_transaction() as store:
            await store.append([opened(ticket)])
        with pytest.raises(ConcurrencyError):
            async with in_transaction() as store:
                await store.append([opened(ticket), note(ticket, 2)])
        async with in_transaction() as store:
            assert len(await store.load("acme", ticket)) == 1

    async def test_skipping_ahead_of_the_stream_is_a_conflict(
        self, in_transaction: InTransaction
    ) -> None:
        ticket = uuid4()
        async with in_transaction() as store:
            await store.append([opened(ticket)])
        with pytest.raises(ConcurrencyError, match="not at version 2"):
            async with in_transaction() as store:
                await store.append([note(ticket, 3)])  # expected version 2; the stream is at 1
        with pytest.raises(ConcurrencyError, match="not at version 1"):
            async with in_transaction() as store:
                await store.append([note(ticket, 2).model_copy(update={"tenant_id": "globex"})])

    async def test_versions_in_one_append_must_be_consecutive(
        self, in_transaction: InTransaction
    ) -> None:
        ticket = uuid4()
        with pytest.raises(ValueError, match="not consecutive"):
            async with in_transaction() as store:
                await store.append([opened(ticket), note(ticket, 3)])
