"""The rows of the `events` and `outbox` tables, which one relay publishes: written in commit
order, read after a position, and turned back into the envelope's wire JSON."""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import EventEnvelope, kafka_key, parse_envelope
from helpdesk_runtime import bulk
from helpdesk_runtime.db import Connection
from helpdesk_runtime.trace import traceparent_for

Envelope = EventEnvelope[Any]


async def insert_in_commit_order(
    conn: Connection,
    table: str,
    envelopes: Sequence[Envelope],
    stored: Sequence[tuple[str, str | None]] | None = None,
) -> None:
    """Insert envelopes into `events` or `outbox` so that positions become visible in order.

    Serialises writers so that `position` order equals commit order: without it a bigserial
    taken by a transaction that commits later becomes visible after the relay has read past
    it, and that event would never be published. The lock (a transaction-level advisory
    lock of the table's, which every writer takes here) is held only from here to commit;
    readers are not blocked. The relay and live streams are notified at commit.

    A few events (a command over HTTP) go in one statement that also takes the lock and
    notifies: round trips are their cost. A batch goes by COPY: asyncpg checks every element
    of an array parameter against collections.abc (two Python-level isinstance calls each),
    which cost more than encoding it, while COPY rows are encoded straight away. Either way
    rows keep their order, and so do the positions they take.

    `stored` gives each event's payload as it is to be stored (personal fields sealed) and
    its data subject (helpdesk_runtime.personal_data); without it payloads are stored as
    they are.
    """
    assert table in ("events", "outbox")
    if stored is None:
        stored = [(e.payload.model_dump_json(), None) for e in envelopes]
    # Only the event log names data subjects (an outbox of plain state has no such column).
    subjects = table == "events"
    columns = (*_COLUMNS, "subject_id") if subjects else _COLUMNS
    rows = [_row(e, *s)[: len(columns)] for e, s in zip(envelopes, stored, strict=True)]
    lock = f"pg_advisory_xact_lock(hashtextextended('helpdesk_runtime:{table}', 0))"
    if len(rows) < COPY_FROM:
        await conn.execute(
            f"""
            WITH locked AS MATERIALIZED (SELECT {lock}),
            inserted AS (
                INSERT INTO {table} ({", ".join(columns)})
                SELECT t, s, v, i, et, sv, o, p, c, ca, k, pl::jsonb, tp{", su" if subjects else ""}
                FROM locked, unnest($1::text[], $2::uuid[], $3::int[], $4::uuid[], $5::text[],
                    $6::int[], $7::timestamptz[], $8::text[], $9::uuid[], $10::uuid[],
                    $11::text[], $12::text[], $13::text[]{", $14::text[]" if subjects else ""})
                    AS x(t, s, v, i, et, sv, o, p, c, ca, k, pl, tp{", su" if subjects else ""})
                RETURNING 1)
            SELECT pg_notify('events_appended', '') FROM (SELECT count(*) FROM inserted) AS n
            """,
            *(list(column) for column in zip(*rows, strict=True)),
        )
        return
    await conn.execute(f"SELECT {lock}, pg_notify('events_appended', '')")
    await bulk.insert_many(conn, table, columns, rows)


COPY_FROM = 32
"""Rows from which COPY beats one INSERT ... unnest statement: below, its extra round trips
cost more than asyncpg's per-element checks of array parameters (the ticket list uses it
too)."""
_COLUMNS = (
    "tenant_id", "stream_id", "version", "event_id", "event_type", "schema_version",
    "occurred_at", "producer", "correlation_id", "causation_id", "partition_key", "payload",
    "traceparent",
)  # fmt: skip


def _row(e: Envelope, payload: str, subject: str | None) -> tuple[Any, ...]:
    return (
        e.tenant_id, e.aggregate_id, e.aggregate_version, e.event_id, e.event_type,
        e.schema_version, e.occurred_at, e.producer, e.correlation_id, e.causation_id,
        kafka_key(e).decode(), payload, traceparent_for(e.causation_id), subject,
    )  # fmt: skip


EVENT_COLUMNS = (
    "position, tenant_id, stream_id, version, event_id, event_type, schema_version,"
    " occurred_at, producer, correlation_id, causation_id, partition_key,"
    " payload::text AS payload"
)
"""The columns `wire_json` needs (both tables have them)."""


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
