"""The tenants this deployment serves: ticketing keeps the registry, and publishes each
change on ticketing.tenants.v1 for the other services (helpdesk_runtime.tenants)."""

from helpdesk_contracts import PLATFORM_TENANT
from helpdesk_runtime.db import Connection


async def add(conn: Connection, tenant_id: str, name: str) -> None:
    """Register a tenant (or rename it); published by the registry's job."""
    if tenant_id == PLATFORM_TENANT:
        raise ValueError(f"{tenant_id!r} is reserved for the platform's own records")
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name) VALUES ($1, $2)"
        " ON CONFLICT (tenant_id) DO UPDATE SET name = EXCLUDED.name, published = false"
        " WHERE tenants.name <> EXCLUDED.name",
        tenant_id,
        name,
    )


async def suspend(conn: Connection, tenant_id: str, suspended: bool) -> bool:
    """Suspend or resume a tenant; False when it is not registered."""
    done: str = await conn.execute(
        "UPDATE tenants SET suspended_at = CASE WHEN $2 THEN coalesce(suspended_at, now()) END,"
        " published = published AND (suspended_at IS NOT NULL) = $2 WHERE tenant_id = $1",
        tenant_id, suspended,
    )  # fmt: skip
    return done != "UPDATE 0"


async def all_of(conn: Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT tenant_id, name FROM tenants ORDER BY tenant_id")
    return [(r["tenant_id"], r["name"]) for r in rows]
