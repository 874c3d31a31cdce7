"""The tenants this deployment serves."""

import time
from collections.abc import Callable, Iterable

import asyncpg

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
    """Which of these tenants are registered and not suspended."""
    rows = await conn.fetch(
        "SELECT tenant_id FROM tenants WHERE tenant_id = ANY($1) AND suspended_at IS NULL",
        list(set(tenant_ids)),
    )
    return {r["tenant_id"] for r in rows}


async def suspend(conn: Connection, tenant_id: str, suspended: bool) -> bool:
    """Suspend or resume a tenant; False when it is not registered."""
    done: str = await conn.execute(
        "UPDATE tenants SET suspended_at = CASE WHEN $2 THEN coalesce(suspended_at, now()) END"
        " WHERE tenant_id = $1",
        tenant_id, suspended,
    )  # fmt: skip
    return done != "UPDATE 0"


async def all_of(conn: Connection) -> list[tuple[str, str]]:
    rows = await conn.fetch("SELECT tenant_id, name FROM tenants ORDER BY tenant_id")
    return [(r["tenant_id"], r["name"]) for r in rows]


class TenantGate:
    """Who may call the API: tenants registered and not suspended. What it found is kept a
    few seconds (a suspension takes effect within `ttl_s`), so a request costs no query."""

    def __init__(self, pool: Callable[[], asyncpg.Pool], ttl_s: float = 5.0) -> None:
        self._pool, self._ttl_s = pool, ttl_s
        self._seen: dict[str, tuple[float, str | None]] = {}

    async def refusal(self, tenant_id: str) -> str | None:
        """Why this tenant's tokens are refused, or None."""
        now = time.monotonic()
        seen = self._seen.get(tenant_id)
        if seen is not None and now - seen[0] < self._ttl_s:
            return seen[1]
        row = await self._pool().fetchrow(
            "SELECT suspended_at FROM tenants WHERE tenant_id = $1", tenant_id
        )
        if row is None:
            why: str | None = f"tenant {tenant_id!r} is not registered with this deployment"
        elif row["suspended_at"] is not None:
            why = f"tenant {tenant_id!r} is suspended"
        else:
            why = None
        if len(self._seen) > 10_000:  # tokens naming ever new tenants: keep it bounded
            self._seen.clear()
        self._seen[tenant_id] = (now, why)
        return why
