"""What a connection scoped to some tenants sees of the others (row-level security)."""

from collections.abc import Sequence

import asyncpg

from helpdesk_runtime import tenancy

# How a table names its tenant, where that is not a tenant_id column.
_TENANT_OF = {"blobs": "split_part(key, '/', 1)"}


async def isolated_tables(conn: asyncpg.Connection) -> list[str]:
    """The tables under a tenant policy."""
    rows = await conn.fetch(
        "SELECT DISTINCT polrelid::regclass::text AS t FROM pg_policy"
        " WHERE polname = 'tenant_isolation' ORDER BY 1"
    )
    return [r["t"] for r in rows]


async def tenant_tables_not_isolated(conn: asyncpg.Connection) -> set[str]:
    """Tables with a tenant column but no tenant policy."""
    rows = await conn.fetch(
        "SELECT DISTINCT c.relname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid"
        " WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
        " AND a.attname = 'tenant_id' AND NOT EXISTS (SELECT 1 FROM pg_policy p"
        " WHERE p.polrelid = c.oid AND p.polname = 'tenant_isolation')"
    )
    return {r["relname"] for r in rows}


async def rows_per_tenant(conn: asyncpg.Connection, table: str) -> dict[str, int]:
    tenant = _TENANT_OF.get(table, "tenant_id")
    rows = await conn.fetch(f"SELECT {tenant} AS tenant, count(*) AS n FROM {table} GROUP BY 1")
    return {r["tenant"]: r["n"] for r in rows}


async def isolation_breaches(
    database_url: str, tenants: Sequence[str]
) -> tuple[list[str], dict[str, dict[str, int]]]:
    """Each table's rows seen by every tenant's scope and by no scope, compared with what
    the table holds; returns what was seen that should not have been, and what it holds."""
    conn = await asyncpg.connect(database_url)
    breaches: list[str] = []
    held: dict[str, dict[str, int]] = {}
    try:
        for table in await isolated_tables(conn):
            with tenancy.all_tenants():
                await tenancy.apply_scope(conn)  # as the pool does at a checkout
            held[table] = everything = await rows_per_tenant(conn, table)
            for tenant in tenants:
                with tenancy.scoped_to([tenant]):
                    await tenancy.apply_scope(conn)
                seen = await rows_per_tenant(conn, table)
                expected = {tenant: everything[tenant]} if tenant in everything else {}
                if seen != expected:
                    breaches.append(f"{table}: scoped to {tenant}, saw {seen}")
            await conn.execute("SELECT set_config($1, '', false)", tenancy.SETTING)
            if unscoped := await rows_per_tenant(conn, table):
                breaches.append(f"{table}: with no scope, saw {unscoped}")
    finally:
        await conn.close()
    return breaches, held
