"""Which ticket each external conversation belongs to."""

from abc import ABC, abstractmethod
from collections.abc import Iterable
from uuid import UUID

from helpdesk_runtime.db import Connection

ThreadKey = tuple[str, str, str]  # (tenant_id, source, external_thread_id)


class Threads(ABC):
    @abstractmethod
    async def find(self, keys: Iterable[ThreadKey]) -> dict[ThreadKey, UUID]:
        """The current ticket of each known thread."""

    @abstractmethod
    async def point(self, key: ThreadKey, ticket_id: UUID) -> None:
        """Make `ticket_id` the thread's ticket from now on."""


class PostgresThreads(Threads):
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def find(self, keys: Iterable[ThreadKey]) -> dict[ThreadKey, UUID]:
        wanted = list(keys)
        rows = await self._conn.fetch(
            """
            SELECT t.tenant_id, t.source, t.thread_id, t.ticket_id FROM ticket_threads t
            JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(tenant_id, source, thread_id)
              USING (tenant_id, source, thread_id)
            """,
            [k[0] for k in wanted],
            [k[1] for k in wanted],
            [k[2] for k in wanted],
        )
        return {(r["tenant_id"], r["source"], r["thread_id"]): r["ticket_id"] for r in rows}

    async def point(self, key: ThreadKey, ticket_id: UUID) -> None:
        await self._conn.execute(
            "INSERT INTO ticket_threads (tenant_id, source, thread_id, ticket_id)"
            " VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (tenant_id, source, thread_id) DO UPDATE SET ticket_id = $4",
            *key,
            ticket_id,
        )


class InMemoryThreads(Threads):
    def __init__(self) -> None:
        self.tickets: dict[ThreadKey, UUID] = {}

    async def find(self, keys: Iterable[ThreadKey]) -> dict[ThreadKey, UUID]:
        return {k: self.tickets[k] for k in keys if k in self.tickets}

    async def point(self, key: ThreadKey, ticket_id: UUID) -> None:
        self.tickets[key] = ticket_id
