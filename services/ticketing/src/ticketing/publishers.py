"""Outside publishers and the tenants each may open tickets for."""

from collections.abc import Iterable

from helpdesk_runtime.db import Connection


async def allow(conn: Connection, publisher: str, tenant_id: str) -> None:
    await conn.execute(
        "INSERT INTO publisher_tenants (publisher, tenant_id) VALUES ($1, $2)"
        " ON CONFLICT DO NOTHING",
        publisher, tenant_id,
    )  # fmt: skip


async def deny(conn: Connection, publisher: str, tenant_id: str) -> bool:
    done: str = await conn.execute(
        "DELETE FROM publisher_tenants WHERE publisher = $1 AND tenant_id = $2",
        publisher, tenant_id,
    )  # fmt: skip
    return done != "DELETE 0"


async def allowed(conn: Connection, publisher: str, tenant_ids: Iterable[str]) -> set[str]:
    """Which of these tenants the publisher may open tickets for."""
    rows = await conn.fetch(
        "SELECT tenant_id FROM publisher_tenants WHERE publisher = $1 AND tenant_id = ANY($2)",
        publisher, list(set(tenant_ids)),
    )  # fmt: skip
    return {r["tenant_id"] for r in rows}


async def all_of(conn: Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch(
        "SELECT publisher, tenant_id FROM publisher_tenants ORDER BY publisher, tenant_id"
    )
    return [(r["publisher"], r["tenant_id"]) for r in rows]
