"""The rows of the `events` and `outbox` tables, which one relay publishes: written in commit
order, read after a position, and turned back into the envelope's wire JSON."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import EventEnvelope, kafka_key, parse_envelope
from helpdesk_runtime.db import Connection
from helpdesk_runtime.trace import traceparent_for

Envelope = EventEnvelope[Any]


async def insert_in_commit_order(
    conn: Connection, table: str, envelopes: Sequence[Envelope]
) -> None:
    """Insert envelopes into `events` or `outbox` so that positions become visible in order.

    Serialises writers so that `position` order equals commit order: without it a bigserial
    taken by a transaction that commits later becomes visible after the relay has read past
    it, and that event would never be published. The lock is held only from here to commit;
    reads (ACCESS SHARE) are not blocked. The relay and live streams are woken at commit.
    """
    assert table in ("events", "outbox")
    await conn.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
    # COPY, not INSERT ... unnest: asyncpg checks every element of an array parameter
    # against collections.abc (two Python-level isinstance calls each), which cost more
    # than encoding it; COPY rows are encoded straight away. Rows keep their order, and
    # so do the positions they take.
    await conn.copy_records_to_table(
        table,
        columns=_COPIED,
        records=[
            (
                e.tenant_id, e.aggregate_id, e.aggregate_version, e.event_id, e.event_type,
                e.schema_version, e.occurred_at, e.producer, e.correlation_id, e.causation_id,
                kafka_key(e).decode(), e.payload.model_dump_json(),
                traceparent_for(e.causation_id),
            )
            for e in envelopes
        ],
    )  # fmt: skip
    await conn.execute("SELECT pg_notify('events_appended', '')")


_COPIED = (
    "tenant_id", "stream_id", "version", "event_id", "event_type", "schema_version",
    "occurred_at", "producer", "correlation_id", "causation_id", "partition_key", "payload",
    "traceparent",
)  # fmt: skip

EVENT_COLUMNS = (
    "position, tenant_id, stream_id, version, event_id, event_type, schema_version,"
    " occurred_at, producer, correlation_id, causation_id, partition_key,"
    " payload::text AS payload"
)


async def latest_position(conn: Connection, tenant_id: str) -> int:
    """The position of the tenant's latest event (0 when it has none): "from now on"."""
    latest: int = await conn.fetchval(
        "SELECT coalesce(max(position), 0) FROM events WHERE tenant_id = $1", tenant_id
    )
    return latest


@dataclass(frozen=True)
class Shard:
    """One of `count` parts of a table, by a hash of the partition key: a key's events all
    fall in one part, so each part keeps every key's order."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} of {self.count} does not exist")

    @property
    def whole(self) -> bool:
        return self.count == 1


WHOLE = Shard()
# A row's shard is KEY_HASH % count. hashtext is PostgreSQL's own (the same for every
# replica), and costs no Python.
KEY_HASH = "(hashtext(partition_key) & 2147483647)"


async def read_after(
    conn: Connection,
    position: int,
    limit: int,
    *,
    tenant_id: str | None = None,
    stream_id: UUID | None = None,
    table: str = "events",
    shard: Shard = WHOLE,
) -> list[asyncpg.Record]:
    """Stored events after `position`, in position (= commit) order: what the outbox relay
    publishes (all tenants, maybe one shard), and what a live stream shows (one tenant,
    maybe one stream)."""
    assert table in ("events", "outbox")
    columns = f"{EVENT_COLUMNS}, recorded_at, traceparent"
    if tenant_id is None:
        if shard.whole:
            return await conn.fetch(
                f"SELECT {columns} FROM {table} WHERE position > $1 ORDER BY position LIMIT $2",
                position, limit,
            )  # fmt: skip
        # Walks the position index and skips the other shards' rows: cheap for a few shards.
        return await conn.fetch(
            f"SELECT {columns} FROM {table} WHERE position > $1 AND {KEY_HASH} % $3 = $4"
            " ORDER BY position LIMIT $2",
            position, limit, shard.count, shard.index,
        )  # fmt: skip
    # Its own statement, so that the (tenant_id, position) index serves a quiet tenant
    # among busy ones (a generic plan for "tenant IS NULL OR ..." would scan them all).
    return await conn.fetch(
        f"SELECT {columns} FROM {table} WHERE tenant_id = $3 AND position > $1"
        " AND ($4::uuid IS NULL OR stream_id = $4) ORDER BY position LIMIT $2",
        position, limit, tenant_id, stream_id,
    )  # fmt: skip


def envelope_from_row(row: asyncpg.Record) -> Envelope:
    """Rebuild the typed envelope from a stored row."""
    return parse_envelope(wire_json(row))


def wire_json(row: asyncpg.Record) -> bytes:
    """A stored row as envelope JSON, without re-validating what was valid when appended.

    Assembled as text, not with json.dumps (which cost the outbox relay a fifth of its
    CPU): every field but `producer` was validated at append to need no escaping (ids,
    names matching patterns, numbers, ISO datetimes), and the payload's JSON text is
    spliced in as stored.
    """
    return (
        f'{{"event_id":"{row["event_id"]}","event_type":"{row["event_type"]}",'
        f'"schema_version":{row["schema_version"]},'
        f'"occurred_at":"{row["occurred_at"].isoformat()}","tenant_id":"{row["tenant_id"]}",'
        f'"producer":{json.dumps(row["producer"])},"correlation_id":"{row["correlation_id"]}",'
        f'"causation_id":{_quoted(row["causation_id"])},"aggregate_id":{_quoted(row["stream_id"])},'
        f'"aggregate_version":{_quoted(row["version"], quote="")},"payload":{row["payload"]}}}'
    ).encode()


def _quoted(value: object, quote: str = '"') -> str:
    return "null" if value is None else f"{quote}{value}{quote}"
