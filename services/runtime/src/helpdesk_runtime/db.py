"""The asyncpg pool and a small forward-only migration runner."""

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)

# What `pool.acquire()` yields and what a bare `asyncpg.connect()` returns.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Any fixed number works: it only has to be the same for every replica of every service.
_MIGRATION_LOCK = 7_411_002


@dataclass(frozen=True)
class Migration:
    """One SQL script; `name` is unique across the runtime's and the service's scripts."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(package: str, prefix: str) -> list[Migration]:
    """The `*.sql` files of a package's `migrations` folder, in name order."""
    folder = resources.files(package).joinpath("migrations")
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f"{prefix}/{f.name}", f.read_text(encoding="utf-8")) for f in files]


def runtime_migrations() -> list[Migration]:
    """The event store, outbox and inbox tables every service needs."""
    return load_migrations("helpdesk_runtime", "runtime")


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; JSON columns are sent and received as text, decoded by the callers."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    assert pool is not None
    return pool


async def migrate(pool: asyncpg.Pool, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet applied; replicas starting together take turns."""
    applied_now: list[str] = []
    async with pool.acquire() as conn:
        await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
        try:
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " name text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {
                r["name"]: r["checksum"]
                for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for m in migrations:
                if m.name in done:
                    if done[m.name] != m.checksum:
                        raise RuntimeError(f"migration {m.name} was changed after it was applied")
                    continue
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)",
                        m.name,
                        m.checksum,
                    )
                applied_now.append(m.name)
                log.info("migration applied", migration=m.name)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied_now
