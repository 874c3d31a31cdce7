"""Watermarks through real Kafka: on every partition, after what they vouch for, never
promising an event the relay has not published yet."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg

from helpdesk_contracts import EventEnvelope, Watermark, parse_envelope
from helpdesk_runtime.event_log import KEY_HASH, Shard
from helpdesk_runtime.eventstore import PostgresEventStore
from helpdesk_runtime.kafka import Producer
from helpdesk_runtime.outbox import OutboxRelay
from helpdesk_runtime.watermarks import WatermarkPublisher

from support.events import opened
from support.fixtures import consume

ALLOWANCE = timedelta(seconds=2)


def _publisher(pool: asyncpg.Pool, producer: Producer, topic: str) -> WatermarkPublisher:
    return WatermarkPublisher(
        pool, producer, table="events", relay="kafka", topics=[topic], producer_name="tests",
        allowance_s=ALLOWANCE.total_seconds(),
    )  # fmt: skip


async def _append(pool: asyncpg.Pool, at: datetime, shard: int | None = None) -> EventEnvelope[Any]:
    """An event stamped `at`, of a ticket whose key falls in `shard` of two, if given."""
    ticket = uuid4()
    while (
        shard is not None
        and await pool.fetchval(
            f"SELECT {KEY_HASH} % 2 FROM (SELECT $1::text AS partition_key) AS k", str(ticket)
        )
        != shard
    ):
        ticket = uuid4()
    event = opened(ticket).model_copy(update={"occurred_at": at})
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([event])
    return event


def _marks(records: list[Any]) -> list[tuple[int, Watermark]]:
    out = []
    for r in records:
        envelope = parse_envelope(r.value)
        if isinstance(envelope.payload, Watermark):
            out.append((r.partition, envelope.payload))
    return out


async def test_a_watermark_on_every_partition_waits_for_what_the_relay_holds_back(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(3)
    relay = OutboxRelay(pool, producer, lambda _event_type: topic)
    marks = _publisher(pool, producer, topic)
    now = datetime.now(UTC)
    await _append(pool, now - timedelta(minutes=10))
    assert await relay.publish_pending() == 1
    held_back = await _append(pool, now - timedelta(minutes=5))  # committed, not published

    up_to = await marks.publish_once()
    assert up_to == held_back.occurred_at - ALLOWANCE  # nothing it vouches for is unpublished
    records = await consume(kafka_bootstrap, topic, until=4)
    assert sorted((p, m.partition, m.partitions, m.up_to) for p, m in _marks(records)) == [
        (p, p, 3, up_to) for p in range(3)
    ]  # fmt: skip

    assert await relay.publish_pending() == 1  # the relay catches up
    before = datetime.now(UTC)
    caught_up = await marks.publish_once()
    assert caught_up is not None
    assert before - ALLOWANCE <= caught_up <= datetime.now(UTC) - ALLOWANCE
    # On each partition the new mark comes after the event published before it.
    records = await consume(kafka_bootstrap, topic, until=8)
    assert len(_marks(records)) == 6


async def test_a_watermark_never_goes_back(
    pool: asyncpg.Pool, producer: Producer, new_topic: Any
) -> None:
    topic = await new_topic(1)
    relay = OutboxRelay(pool, producer, lambda _event_type: topic)
    marks = _publisher(pool, producer, topic)
    first = await marks.publish_once()
    assert first is not None
    # An event back-dated before the last mark (an intake message stamped when the customer
    # wrote) waits in the table: it is late, and the mark does not move back for it.
    await _append(pool, first - timedelta(hours=1))
    assert await marks.publish_once() == first
    assert await relay.publish_pending() == 1
    later = await marks.publish_once()
    assert later is not None
    assert later >= first


async def test_one_replica_sends_a_round_at_a_time(
    pool: asyncpg.Pool, producer: Producer, new_topic: Any
) -> None:
    topic = await new_topic(1)
    one, other = _publisher(pool, producer, topic), _publisher(pool, producer, topic)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                           "helpdesk_runtime:watermarks:kafka")  # fmt: skip
        assert await one.publish_once() is None  # the other replica's turn
    assert await other.publish_once() is not None


async def test_an_idle_shard_does_not_hold_the_watermark_back(
    pool: asyncpg.Pool, producer: Producer, new_topic: Any
) -> None:
    """Shard 1 publishes on while shard 0 has nothing new: shard 0's checkpoint stays where
    it was, and the events after it, all shard 1's and published, must not pin T."""
    topic = await new_topic(2)
    shards = [OutboxRelay(pool, producer, lambda _e: topic, shard=Shard(i, 2)) for i in (0, 1)]
    marks = _publisher(pool, producer, topic)
    old = datetime.now(UTC) - timedelta(hours=1)
    for at in (old, old):
        await _append(pool, at, shard=0)
        await _append(pool, at, shard=1)
    for relay in shards:
        assert await relay.publish_pending() == 2
    await _append(pool, old + timedelta(minutes=1), shard=1)  # only shard 1 has news
    assert await shards[1].publish_pending() == 1
    before = datetime.now(UTC)
    up_to = await marks.publish_once()
    assert up_to is not None
    assert up_to >= before - ALLOWANCE - timedelta(seconds=1)  # not pinned an hour back
