"""Watermarks: a record on every partition saying "every event that occurred up to T is
published", so that a consumer can act on the absence of events (an SLA breach) without
being fooled by its own lag or by the relay's.

Why in-band, on each partition: Kafka keeps a partition's order, so a consumer that has
reached a watermark on partition p has read every event of p published before it. The
watermark is sent only after the relay's checkpoints show those events acknowledged by the
broker, so "published before" is also "on the partition before".

How T is chosen. Events are stamped (`occurred_at`) by the writer before their transaction
commits, and `position` is commit order (event_log.insert_in_commit_order). With
`allowance` bounding how long a transaction takes from stamping to commit (plus the clock
skew between writers and the database), an event committed after event E was stamped no
earlier than E's stamp minus `allowance`. So, with F the first event a relay shard has not
published yet, taken for every shard:

    T = min(now, min over the shards of F.occurred_at) - allowance

and every event stamped at or before T is published (a shard with nothing waiting adds
nothing but now). An event stamped earlier than that
and written later is late by definition (an intake message back-dated to when the customer
wrote): consumers must handle it as late, which is what the contract says. T never goes
back: the last one sent is kept in `published_watermarks`.
"""

import asyncio
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime

import asyncpg

from helpdesk_contracts import PLATFORM_TENANT, EventEnvelope, Watermark, kafka_headers
from helpdesk_runtime.event_log import KEY_HASH
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.logging import FailureStreak, get_logger
from helpdesk_runtime.metrics import Metrics

log = get_logger(__name__)


class WatermarkPublisher:
    """Sends a `Watermark` to every partition of `topics` every `interval_s` (one replica at a
    time: the others skip a pass while one holds the lock)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        producer: Producer,
        *,
        table: str,
        relay: str,
        topics: Sequence[str],
        producer_name: str,
        interval_s: float = 1.0,
        allowance_s: float = 5.0,
        metrics: Metrics | None = None,
    ) -> None:
        assert table in ("events", "outbox")
        self._pool = pool
        self._producer = producer
        self._relay = relay
        self._topics = list(topics)
        self._producer_name = producer_name
        self._interval_s = interval_s
        self._allowance_s = allowance_s
        self._metrics = metrics or Metrics()
        self._stopping = asyncio.Event()
        self.last_error: str | None = None
        self.last_up_to: datetime | None = None
        # The first event each shard has not published yet (the former shards' checkpoints
        # too, until they are retired: that only lowers T). Per shard, because a shard's
        # checkpoint moves only past its own events: the lowest checkpoint of all would pin
        # T on events another shard published long ago. now() is the transaction's start,
        # no later than the snapshot the statement reads.
        self._up_to = f"""
            WITH checkpoints AS (
                SELECT relay, position FROM outbox_checkpoints
                WHERE relay = $1 OR starts_with(relay, $1 || '#')
            ), first_waiting AS (
                SELECT (SELECT e.occurred_at FROM {table} e
                        WHERE e.position > c.position
                            AND (strpos(c.relay, '#') = 0
                                 OR {KEY_HASH} % split_part(c.relay, '/', 2)::int
                                    = split_part(split_part(c.relay, '#', 2), '/', 1)::int - 1)
                        ORDER BY e.position LIMIT 1) AS occurred_at
                FROM checkpoints c
                UNION ALL  -- before the relay's first pass, nothing is published
                SELECT (SELECT occurred_at FROM {table} ORDER BY position LIMIT 1)
                WHERE NOT EXISTS (SELECT 1 FROM checkpoints)
            ), candidate AS (
                SELECT least(now(), coalesce((SELECT min(occurred_at) FROM first_waiting),
                                             'infinity'))
                       - make_interval(secs => $2) AS up_to
            )
            INSERT INTO published_watermarks AS w (relay, up_to)
            SELECT $1, up_to FROM candidate
            ON CONFLICT (relay) DO UPDATE
                SET up_to = greatest(w.up_to, excluded.up_to), updated_at = now()
            RETURNING up_to
        """

    async def publish_once(self) -> datetime | None:
        """Send one round of watermarks; None if another replica holds the turn."""
        async with self._pool.acquire() as conn, conn.transaction():
            mine = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))",
                f"helpdesk_runtime:watermarks:{self._relay}",
            )
            if not mine:
                return None
            up_to: datetime = await conn.fetchval(self._up_to, self._relay, self._allowance_s)
            messages = []
            for topic in self._topics:
                partitions = await self._producer.partitions(topic)
                messages += [self._message(topic, p, len(partitions), up_to) for p in partitions]
            # Sent inside the transaction: a failed send leaves the stored mark as it was.
            await self._producer.send_many(messages)
        self.last_up_to = up_to
        self._metrics.watermark_lag.labels(self._relay).set(
            max((datetime.now(UTC) - up_to).total_seconds(), 0.0)
        )
        return up_to

    def _message(
        self, topic: str, partition: int, partitions: int, up_to: datetime
    ) -> OutgoingMessage:
        envelope = EventEnvelope.new(
            Watermark(partition=partition, partitions=partitions, up_to=up_to),
            tenant_id=PLATFORM_TENANT,
            producer=self._producer_name,
        )
        return OutgoingMessage(
            topic, envelope.to_json(), None, kafka_headers(envelope), partition=partition
        )

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Send watermarks until stopped; failures are logged and retried, never fatal."""
        streak = FailureStreak("watermarks")
        while not self._stopping.is_set():
            delay = self._interval_s
            try:
                await self.publish_once()
                streak.succeeded()
                self.last_error = None
            except Exception as exc:  # broker or database down: the next round catches up
                streak.failed(exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                delay = min(self._interval_s * 2**streak.failures, 10.0)
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
