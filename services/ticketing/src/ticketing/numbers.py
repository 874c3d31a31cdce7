"""Per-tenant ticket numbers."""

from abc import ABC, abstractmethod
from collections.abc import Mapping

from helpdesk_runtime.db import Connection


class TicketNumbers(ABC):
    """Hands out ticket numbers per tenant: unique and increasing, with gaps allowed."""

    @abstractmethod
    async def reserve(self, tenant_id: str, count: int = 1) -> list[int]:
        """Reserve `count` numbers, in increasing order. A reservation rolled back is skipped,
        and reservations made at the same time may interleave."""

    async def reserve_each(self, counts: Mapping[str, int]) -> dict[str, list[int]]:
        """`reserve` for several tenants at once (a batch of intake)."""
        return {tenant: await self.reserve(tenant, count) for tenant, count in counts.items()}


class PostgresTicketNumbers(TicketNumbers):
    """A sequence per tenant (migration 0008): reserving never waits for another writer."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def reserve(self, tenant_id: str, count: int = 1) -> list[int]:
        rows = await self._conn.fetch(
            "SELECT n FROM next_ticket_numbers($1, $2) AS n ORDER BY n", tenant_id, count
        )
        return [r["n"] for r in rows]

    async def reserve_each(self, counts: Mapping[str, int]) -> dict[str, list[int]]:
        # One statement for every tenant of the batch, not a round trip each.
        reserved: dict[str, list[int]] = {tenant: [] for tenant in counts}
        rows = await self._conn.fetch(
            "SELECT t, n FROM unnest($1::text[], $2::int[]) AS x(t, c),"
            " next_ticket_numbers(t, c) AS n ORDER BY t, n",
            list(counts),
            list(counts.values()),
        )
        for r in rows:
            reserved[r["t"]].append(r["n"])
        return reserved


class InMemoryTicketNumbers(TicketNumbers):
    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    async def reserve(self, tenant_id: str, count: int = 1) -> list[int]:
        first = self.last.get(tenant_id, 0) + 1
        self.last[tenant_id] = first + count - 1
        return list(range(first, first + count))
