"""The outbox: events committed with the state that caused them, published by one relay.

An event-sourced service's event store is its outbox (`Source.EVENTS`). A service that keeps
plain state (notifications' delivery log, say) calls `put` in the transaction that changes
that state, and the relay publishes the `outbox` table (`Source.OUTBOX`) the same way, then
deletes what it published. Writers of either table serialise on a lock of the table's
(event_log.insert_in_commit_order), so `position` order is commit order and tailing by
position never skips an event. The relay publishes a batch, waits for the
broker's acknowledgements, then moves its checkpoint in the same transaction that holds the
checkpoint row locked, so one replica relays at a time and a crash in between only
republishes (consumers are idempotent by event id).

To publish more than one process can, the table is split into shards by a hash of the
partition key (`OUTBOX_RELAY_SHARDS`): each shard has its own checkpoint, held by whichever
replica takes it first on each pass, and keeps every key's order. Shards added later start
from the slowest checkpoint of the old ones: a few events may be published twice, none lost.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from enum import StrEnum

import asyncpg

from helpdesk_contracts import headers_of
from helpdesk_runtime.db import Connection
from helpdesk_runtime.event_log import (
    KEY_HASH,
    WHOLE,
    Envelope,
    Shard,
    insert_in_commit_order,
    read_after,
    wire_json,
)
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.logging import FailureStreak, get_logger
from helpdesk_runtime.metrics import Metrics
from helpdesk_runtime.telemetry import SpanKind, Tracer, ended
from helpdesk_runtime.trace import HEADER, TraceContext

log = get_logger(__name__)

Router = Callable[[str], str]  # event type -> topic


class Source(StrEnum):
    """The table a relay publishes."""

    EVENTS = "events"  # the event store of an event-sourced service
    OUTBOX = "outbox"  # the outbox of a service that keeps plain state


async def put(conn: Connection, envelopes: Sequence[Envelope]) -> None:
    """Publish these events once the caller's transaction commits (and only if it does)."""
    if envelopes:
        await insert_in_commit_order(conn, Source.OUTBOX.value, envelopes)


def to_message(
    row: asyncpg.Record, route: Router, traceparent: str | None = None
) -> OutgoingMessage:
    """A stored event as a Kafka record, with the key the contracts chose at append, and
    the trace context it was stored with (or `traceparent`: its publishing span's)."""
    headers = headers_of(
        row["event_type"],
        row["schema_version"],
        row["tenant_id"],
        row["event_id"],
        row["correlation_id"],
    )
    headers.append(("content-type", b"application/json"))
    # Every published event carries trace context: one stored without (appended by a job
    # or a command line, outside any request or consumed event) starts a trace here.
    traceparent = traceparent or row["traceparent"] or TraceContext.new().header
    headers.append((HEADER, traceparent.encode()))
    return OutgoingMessage(
        topic=route(row["event_type"]),
        key=row["partition_key"].encode(),
        value=wire_json(row),
        headers=headers,
    )


class OutboxRelay:
    """Tails the events or the outbox table and publishes what is new."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: Producer,
        route: Router,
        *,
        source: Source = Source.EVENTS,
        name: str | None = None,
        batch_size: int = 1000,
        poll_interval_s: float = 1.0,
        metrics: Metrics | None = None,
        shard: Shard = WHOLE,
        linger_s: float = 0.005,
        tracer: Tracer | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self._tracer = tracer or Tracer()
        self._pool = pool
        self._producer = producer
        self._route = route
        self._source = source
        # "kafka" names the event store's checkpoint, as it did before outboxes existed.
        self.family = name or ("kafka" if source is Source.EVENTS else "kafka:outbox")
        self._shard = shard
        self._linger_s = linger_s
        self._layout_kept = False
        self.name = self._name = self.layout[shard.index]
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self.published = 0
        self._stopping = asyncio.Event()
        self.last_error: str | None = None
        self.last_pass_at = 0.0

    async def publish_pending(self) -> int:
        """Publish up to one batch; 0 when nothing is new or another replica holds the relay."""
        async with self._pool.acquire() as conn, conn.transaction():
            if not self._layout_kept:
                self._layout_kept = await self._keep_layout(conn)
            checkpoint = await conn.fetchval(
                "SELECT position FROM outbox_checkpoints WHERE relay = $1 FOR UPDATE SKIP LOCKED",
                self._name,
            )
            if checkpoint is None:
                return 0
            rows = await read_after(
                conn, checkpoint, self._batch_size, table=self._source.value, shard=self._shard
            )
            if not rows:
                return 0
            started = time.perf_counter()
            if self._tracer.recording:
                messages = await self._send_traced(rows)
            else:
                messages = [to_message(r, self._route) for r in rows]
                await self._producer.send_many(messages)
            self.metrics.publish_seconds.labels(self._name).observe(time.perf_counter() - started)
            last = rows[-1]["position"]
            await conn.execute(
                "UPDATE outbox_checkpoints SET position = $2, updated_at = now() WHERE relay = $1",
                self._name,
                last,
            )
            if self._source is Source.OUTBOX:  # published: the outbox keeps only what waits
                await conn.execute(
                    "DELETE FROM outbox WHERE position = ANY($1::bigint[])",
                    [r["position"] for r in rows],
                )
        self.published += len(rows)
        self._count(rows, messages)
        return len(rows)

    async def _send_traced(self, rows: list[asyncpg.Record]) -> list[OutgoingMessage]:
        """Publish with a producer span per event, whose context the record carries: the
        consumers' spans are its children, and the wait in the outbox shows between the
        span that stored the event and this one."""
        spans = [
            self._tracer.start(
                f"send {topic}", row["traceparent"], SpanKind.PRODUCER,
                {
                    "messaging.system": "kafka",
                    "messaging.operation.type": "send",
                    "messaging.operation.name": "send",
                    "messaging.destination.name": topic,
                    "messaging.message.id": str(row["event_id"]),
                    "helpdesk.event_type": row["event_type"],
                    "helpdesk.tenant_id": row["tenant_id"],
                },
            )
            for row in rows
            for topic in (self._route(row["event_type"]),)
        ]  # fmt: skip
        messages = [
            to_message(row, self._route, span.context.header)
            for row, span in zip(rows, spans, strict=True)
        ]
        with ended(spans):
            await self._producer.send_many(messages)
        return messages

    async def _keep_layout(self, conn: Connection) -> bool:
        """Make this shard's checkpoint, and retire those of a former shard count; True once
        every shard of this relay has its checkpoint (nothing left to do)."""
        family = "(relay = $1 OR starts_with(relay, $1 || '#'))"
        # A new shard starts where the slowest checkpoint of the former shard count stood
        # (never from a sibling's: it has moved past events of this shard).
        await conn.execute(
            "INSERT INTO outbox_checkpoints (relay, position)"
            f" SELECT $2, coalesce(min(position), 0) FROM outbox_checkpoints"
            f" WHERE {family} AND NOT relay = ANY($3) ON CONFLICT DO NOTHING",
            self.family,
            self._name,
            self.layout,
        )
        complete: bool = await conn.fetchval(
            "SELECT count(*) = cardinality($1::text[]) FROM outbox_checkpoints"
            " WHERE relay = ANY($1::text[])",
            self.layout,
        )
        if complete and self._shard.index == 0:  # one shard retires the former ones
            await conn.execute(
                f"DELETE FROM outbox_checkpoints WHERE {family} AND NOT relay = ANY($2)",
                self.family,
                self.layout,
            )
        return complete

    @property
    def layout(self) -> list[str]:
        """The checkpoints of every shard of this relay."""
        count = self._shard.count
        if count == 1:
            return [self.family]
        return [f"{self.family}#{i + 1}/{count}" for i in range(count)]

    def _count(self, rows: list[asyncpg.Record], messages: list[OutgoingMessage]) -> None:
        produced = Counter((m.topic, r["event_type"]) for r, m in zip(rows, messages, strict=True))
        for (topic, event_type), n in produced.items():
            self.metrics.produced.labels(topic, event_type).inc(n)
        now = datetime.now(UTC)
        delay = self.metrics.publish_delay.labels(self._name)
        for row in rows:
            delay.observe(max((now - row["recorded_at"]).total_seconds(), 0.0))

    async def backlog(self) -> int:
        """Stored events not yet published by this relay's shards (counted up to a million
        per shard when sharded; a difference of positions when not)."""
        table = self._source.value
        async with self._pool.acquire() as conn:
            if self._shard.whole:
                waiting: int = await conn.fetchval(
                    f"SELECT coalesce(max(e.position), 0) - coalesce((SELECT position"
                    f" FROM outbox_checkpoints WHERE relay = $1), 0) FROM {table} e",
                    self.family,
                )
            else:
                waiting = await conn.fetchval(
                    f"""
                    SELECT coalesce(sum(y.n), 0)
                    FROM unnest($1::text[]) WITH ORDINALITY AS l(relay, i)
                    JOIN outbox_checkpoints c USING (relay),
                    LATERAL (SELECT count(*) AS n FROM (
                        SELECT 1 FROM {table} e WHERE e.position > c.position
                        AND {KEY_HASH} % $2 = l.i - 1
                        LIMIT 1000000) AS x) AS y
                    """,
                    self.layout,
                    self._shard.count,
                )
        return max(waiting, 0)

    def stop(self) -> None:
        """Return from `run` after the current pass."""
        self._stopping.set()

    async def run(self, feed: AppendFeed) -> None:
        """Relay until stopped: woken by the feed of appends, polling as a fallback."""
        streak = FailureStreak("outbox relay")
        while not self._stopping.is_set():
            seen = feed.generation
            try:
                published = await self.publish_pending()
                streak.succeeded()
                self.last_error = None
                self.last_pass_at = time.monotonic()
            except Exception as exc:  # broker or database down: back off, never die
                streak.failed(exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                # Back off, but wake as soon as the feed listens again (the database is back).
                await feed.wait(min(0.1 * 2**streak.failures, 5.0), after=seen)
                continue
            if published < self._batch_size:  # else more is waiting
                await feed.wait(self._poll_interval_s, after=seen)
                # Woken by one append (a command over HTTP): the appends of the next few
                # milliseconds join this pass, one transaction and one send for them all.
                await asyncio.sleep(self._linger_s)
