from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from helpdesk_runtime.eventstore import EventStore, InMemoryEventStore

from support.eventstore_contract import EventStoreContract, InTransaction


class TestInMemoryEventStore(EventStoreContract):
    @pytest.fixture
    def in_transaction(self) -> InTransaction:
        store = InMemoryEventStore()

        @asynccontextmanager
        async def transaction() -> AsyncIterator[EventStore]:
            yield store

        return transaction
