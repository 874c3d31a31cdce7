"""The asyncpg pool and a small forward-only migration runner."""

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from helpdesk_runtime import tenancy
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


def load_migrations(package: str, prefix: str, folder: str = "migrations") -> list[Migration]:
    """The `*.sql` files of a package's migrations folder, in name order."""
    found = resources.files(package).joinpath(folder)
    files = sorted((f for f in found.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [Migration(f"{prefix}/{f.name}", f.read_text(encoding="utf-8")) for f in files]


class Component(StrEnum):
    """A piece of the runtime that has tables; a service's database holds only those it uses."""

    EVENT_STORE = "event_store"  # events (also the outbox of an event-sourced service)
    INBOX = "inbox"  # consumers' idempotency
    OUTBOX = "outbox"  # the outbox of a service that is not event-sourced
    TIMERS = "timers"
    AUDIT = "audit"  # who changed the tenant's configuration
    WATERMARKS = "watermarks"  # the last watermark published (watermarks.py)
    BLOBS = "blobs"  # files, when kept in the database (blobs.py)
    SUBJECT_KEYS = "subject_keys"  # the data subjects' keys (personal_data.py)
    TENANT_REPLICA = "tenant_replica"  # the tenants, as their owner publishes them (tenants.py)
    REPLICAS = "replicas"  # where replicas of compacted topics have read to (compacted.py)


def runtime_migrations(components: Iterable[Component] = tuple(Component)) -> list[Migration]:
    """The runtime's tables for these components (file names are unique across them),
    after the row-level security functions that every service's tenant tables use."""
    wanted = set(components)
    folders = ["tenancy", *(c.value for c in Component if c in wanted)]
    return [
        migration
        for folder in folders
        for migration in load_migrations("helpdesk_runtime", "runtime", f"migrations/{folder}")
    ]


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool; JSON columns are sent and received as text, decoded by the callers.

    JIT compilation is off: it is for long analytical queries, and PostgreSQL starts it
    from the planner's cost estimate, which a batch statement over a big table easily
    passes. The breach sweep paid 145 ms of compiling for a 200 ms statement each pass.

    Each checkout takes the tenant scope of the code that checks out (tenancy.py)."""
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, reset=_nothing_more_to_reset,
        setup=tenancy.apply_scope, server_settings={"jit": "off"},
    )  # fmt: skip
    assert pool is not None
    return pool


async def _nothing_more_to_reset(_conn: asyncpg.Connection) -> None:
    """A connection's release skips asyncpg's reset query, a round trip per checkout.

    asyncpg always rolls back a transaction left open and drops the listener callbacks; its
    default reset then also sends `SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *;
    RESET ALL`: one round trip more for an HTTP command that makes about ten. Our code leaves
    no session state on a pooled connection for it to undo: no cursor WITH HOLD, the
    migration lock unlocked in a `finally`, the append feed's LISTEN removed with its
    listener, and the one session setting, the tenant scope, set again on every checkout.
    """


async def migrate(pool: asyncpg.Pool, migrations: list[Migration]) -> list[str]:
    """Apply the migrations not yet applied; replicas starting together take turns."""
    with tenancy.all_tenants():  # a migration may move any tenant's rows
        async with pool.acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
            try:
                return await _apply_new(conn, migrations)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)


async def _apply_new(conn: Connection, migrations: list[Migration]) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " name text PRIMARY KEY, checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    done = {
        r["name"]: r["checksum"]
        for r in await conn.fetch("SELECT name, checksum FROM schema_migrations")
    }
    applied_now: list[str] = []
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
    return applied_now


async def rows_by_tenant_key(
    conn: Connection, table: str, key: str, pairs: Iterable[tuple[str, Any]], columns: str,
    key_type: str = "text",
) -> list[asyncpg.Record]:  # fmt: skip
    """`columns` of the rows of `table` (aliased `t`) whose (tenant_id, `key`) is one of
    `pairs`: one statement for a whole batch of a consumer, whatever its tenants. Every
    argument but `pairs` is the caller's own words, never input: they are spliced in."""
    wanted = sorted(set(pairs))
    if not wanted:
        return []
    return list(await conn.fetch(
        f"SELECT {columns} FROM {table} t JOIN unnest($1::text[], $2::{key_type}[]) AS x(n, k)"
        f" ON t.tenant_id = x.n AND t.{key} = x.k",
        [t for t, _ in wanted], [k for _, k in wanted],
    ))  # fmt: skip
