"""Per-tenant ticket numbers."""

from abc import ABC, abstractmethod

from helpdesk_runtime.db import Connection


class TicketNumbers(ABC):
    """Hands out consecutive ticket numbers per tenant."""

    @abstractmethod
    async def reserve(self, tenant_id: str, count: int = 1) -> int:
        """Reserve `count` numbers; returns the first. A rolled-back reservation leaves a gap."""


class PostgresTicketNumbers(TicketNumbers):
    """Counter rows updated in the caller's transaction."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    async def reserve(self, tenant_id: str, count: int = 1) -> int:
        last: int = await self._conn.fetchval(
            """
            INSERT INTO ticket_numbers (tenant_id, last_number) VALUES ($1, $2)
            ON CONFLICT (tenant_id)
            DO UPDATE SET last_number = ticket_numbers.last_number + EXCLUDED.last_number
            RETURNING last_number
            """,
            tenant_id,
            count,
        )
        return last - count + 1


class InMemoryTicketNumbers(TicketNumbers):
    def __init__(self) -> None:
        self.last: dict[str, int] = {}

    async def reserve(self, tenant_id: str, count: int = 1) -> int:
        self.last[tenant_id] = self.last.get(tenant_id, 0) + count
        return self.last[tenant_id] - count + 1
