"""The tenants a deployment serves, known to every service without reading another's database.

The owner of the registry (ticketing: `python -m ticketing tenants add|suspend|resume`)
keeps a `tenants` table with a `published` flag that each change clears; its
`TenantPublisher` job publishes the registration of every tenant changed, as it stands, on
the compacted `ticketing.tenants.v1`. Every other service consumes that topic from its
beginning into a `tenants` table of its own (Component.TENANT_REPLICA, `replicate`). Each
service's `TenantGate` then refuses the tokens of tenants its table does not know, or knows
suspended. The registry is not a tenant table: it is read before any tenant is trusted.
"""

import time
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from typing import Any

import asyncpg
from faststream.security import BaseSecurity

from helpdesk_contracts import (
    ContractError,
    EventEnvelope,
    TenantChanged,
    kafka_headers,
    kafka_key,
    parse_envelope,
    tenant_stream,
    topic_for,
)
from helpdesk_runtime.compacted import CompactedReplica
from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.polling import PendingPublisher

log = get_logger(__name__)

TENANTS_TOPIC = topic_for(TenantChanged.event_type).name


class TenantRegistry(StrEnum):
    """A service's part in the registry (ServiceRuntime's `tenants`)."""

    OWNER = "owner"  # keeps it and publishes it (ticketing)
    REPLICA = "replica"  # keeps a copy from the topic


async def known(conn: Connection, tenant_ids: Iterable[str]) -> set[str]:
    """Which of these tenants are registered and not suspended."""
    rows = await conn.fetch(
        "SELECT tenant_id FROM tenants WHERE tenant_id = ANY($1) AND suspended_at IS NULL",
        list(set(tenant_ids)),
    )
    return {r["tenant_id"] for r in rows}


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


class TenantPublisher(PendingPublisher):
    """The owner's job: publishes each tenant changed since it was last published, as it
    stands, and marks it published once the broker acknowledged it. A change made while a
    pass holds the row waits for that pass, then clears the flag again: never lost."""

    def __init__(
        self, pool: asyncpg.Pool, producer: Producer, producer_name: str, *,
        batch: int = 500, interval_s: float = 1.0,
    ) -> None:  # fmt: skip
        super().__init__("tenant publisher", interval_s)
        self._pool, self._producer, self._name, self._batch = pool, producer, producer_name, batch

    async def publish_pending(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT tenant_id, name, suspended_at FROM tenants WHERE NOT published"
                " ORDER BY tenant_id LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch,
            )
            if not rows:
                return 0
            await self._producer.send_many([self._message(r) for r in rows])
            await conn.execute(
                "UPDATE tenants SET published = true WHERE tenant_id = ANY($1::text[])",
                [r["tenant_id"] for r in rows],
            )
        return len(rows)

    def _message(self, row: asyncpg.Record) -> OutgoingMessage:
        envelope = EventEnvelope.new(
            TenantChanged(name=row["name"], suspended_at=row["suspended_at"]),
            tenant_id=row["tenant_id"],
            producer=self._name,
            aggregate_id=tenant_stream(row["tenant_id"]),
        )
        return OutgoingMessage(
            TENANTS_TOPIC, envelope.to_json(), kafka_key(envelope), kafka_headers(envelope)
        )


class TenantReplica(CompactedReplica):
    """A service's job: the topic followed into the service's `tenants` table (compacted.py:
    a new or restored database is filled again). Until it has read what the topic held at
    start, readiness says it is catching up."""

    def __init__(
        self, pool: asyncpg.Pool, bootstrap_servers: str, security: BaseSecurity | None = None
    ) -> None:
        super().__init__(TENANTS_TOPIC, bootstrap_servers, pool, security)

    async def apply(self, conn: Connection, records: Sequence[Any]) -> None:
        await replicate(conn, [e for r in records if (e := _read(r))])


def _read(record: Any) -> EventEnvelope[Any] | None:
    try:
        return parse_envelope(record.value or b"")
    except ContractError as exc:  # only ticketing publishes here: a bug, not an attack
        log.error("unreadable tenant record skipped", offset=record.offset, error=str(exc))
        return None


async def replicate(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> None:
    """Keep the latest registration of each tenant. A tenant's records are on one partition,
    read in the order published (again from the beginning at each start), so the last one
    read is its state; their times come from the publishers' clocks and are not compared."""
    latest = {e.tenant_id: e for e in batch if isinstance(e.payload, TenantChanged)}
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name, suspended_at, changed_at)"
        " SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::timestamptz[])"
        " ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name,"
        " suspended_at = excluded.suspended_at, changed_at = excluded.changed_at",
        list(latest),
        [e.payload.name for e in latest.values()],
        [e.payload.suspended_at for e in latest.values()],
        [e.occurred_at for e in latest.values()],
    )
