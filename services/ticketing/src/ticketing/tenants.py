"""The tenants this deployment serves."""

from collections.abc import Iterable

from helpdesk_contracts import PLATFORM_TENANT
from helpdesk_runtime.db import Connection


async def add(conn: Connection, tenant_id: str, name: str) -> None:
    """Register a tenant (or rename it)."""
    if tenant_id == PLATFORM_TENANT:
        raise ValueError(f"{tenant_id!r} is reserved for the platform's own records")
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name",
        tenant_id,
        name,
    )


async def known(conn: Connection, tenant_ids: Iterable[str]) -> set[str]:
    """Which of these tenants are registered."""
    rows = await conn.fetch(
        "SELECT tenant_id FROM tenants WHERE tenant_id = ANY($1)", list(set(tenant_ids))
    )
    return {r["tenant_id"] for r in rows}


async def all_of(conn: Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT tenant_id, name FROM tenants ORDER BY tenant_id")
    return [(r["tenant_id"], r["name"]) for r in rows]
