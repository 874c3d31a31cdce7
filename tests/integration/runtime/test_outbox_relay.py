"""The relay publishes every committed event once, in order per stream, through real Kafka."""

import asyncio
import json
import random
from collections import defaultdict
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from helpdesk_contracts import parse_envelope
from helpdesk_runtime.event_log import Shard
from helpdesk_runtime.eventstore import PostgresEventStore
from helpdesk_runtime.feed import AppendFeed
from helpdesk_runtime.kafka import Producer
from helpdesk_runtime.outbox import OutboxRelay

from support.events import note, opened
from support.fixtures import consume, topic_size


def _relay(pool: asyncpg.Pool, producer: Producer, topic: str, **kw: Any) -> OutboxRelay:
    return OutboxRelay(pool, producer, lambda _event_type: topic, poll_interval_s=0.05, **kw)


def _by_stream(records: list[Any]) -> dict[UUID, list[int]]:
    versions: dict[UUID, list[int]] = defaultdict(list)
    for r in records:
        envelope = parse_envelope(r.value)
        assert r.key == str(envelope.aggregate_id).encode()  # keyed by the ticket id
        versions[envelope.aggregate_id].append(envelope.aggregate_version)  # type: ignore[index,arg-type]
    return versions


async def test_publishes_each_event_once_with_its_envelope(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(3)
    ticket = uuid4()
    original = opened(ticket)
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([original, note(ticket, 2)])

    relay = _relay(pool, producer, topic)
    assert await relay.publish_pending() == 2
    assert await relay.publish_pending() == 0  # the checkpoint moved: nothing twice

    records = await consume(kafka_bootstrap, topic, until=2)
    assert len(records) == 2
    first = parse_envelope(records[0].value)
    assert first == original
    headers = dict(records[0].headers)
    assert headers["event_type"] == b"TicketOpened"
    assert headers["tenant_id"] == b"acme"
    assert json.loads(records[1].value)["aggregate_version"] == 2


async def test_a_transaction_committing_later_is_not_skipped(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    """T1 appends first but commits last; the relay runs in between and must not pass it."""
    topic = await new_topic(3)
    relay = _relay(pool, producer, topic)
    slow, fast = uuid4(), uuid4()

    t1 = await pool.acquire()
    tx1 = t1.transaction()
    await tx1.start()
    await PostgresEventStore(t1).append([opened(slow)])  # position taken, not committed

    async def append_fast() -> None:
        async with pool.acquire() as conn, conn.transaction():
            await PostgresEventStore(conn).append([opened(fast)])

    t2 = asyncio.create_task(append_fast())
    await asyncio.sleep(0.3)
    assert not t2.done()  # the second appender waits for the first to finish
    assert await relay.publish_pending() == 0  # nothing committed yet

    await tx1.commit()
    await pool.release(t1)
    await t2
    assert await relay.publish_pending() == 2

    records = await consume(kafka_bootstrap, topic, until=2)
    ids = [parse_envelope(r.value).aggregate_id for r in records]
    assert sorted(map(str, ids)) == sorted([str(slow), str(fast)])


async def test_a_rolled_back_append_leaves_a_gap_the_relay_steps_over(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(1)
    kept = uuid4()
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await PostgresEventStore(conn).append([opened(uuid4())])
        await tx.rollback()
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(kept)])
    assert await _relay(pool, producer, topic).publish_pending() == 1
    records = await consume(kafka_bootstrap, topic, until=1)
    assert [parse_envelope(r.value).aggregate_id for r in records] == [kept]


async def test_concurrent_writers_and_two_relays_publish_everything_once_in_order(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(6)
    streams = [uuid4() for _ in range(8)]
    events_per_stream = 15

    async def writer(stream: UUID) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await PostgresEventStore(conn).append([opened(stream)])
        for version in range(2, events_per_stream + 1):
            async with pool.acquire() as conn, conn.transaction():
                await PostgresEventStore(conn).append([note(stream, version)])
            await asyncio.sleep(random.random() / 200)

    # Two relays play two replicas: the checkpoint row lock lets one publish at a time.
    relays = [_relay(pool, producer, topic, batch_size=7) for _ in range(2)]
    feed = AppendFeed(pool)
    feed.start()
    running = [asyncio.create_task(r.run(feed)) for r in relays]
    await asyncio.gather(*(writer(s) for s in streams))

    total = len(streams) * events_per_stream
    async with asyncio.timeout(30):
        while sum(r.published for r in relays) < total:  # noqa: ASYNC110 (polling a counter)
            await asyncio.sleep(0.05)
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    await feed.stop()

    assert await topic_size(kafka_bootstrap, topic) == total  # the log holds no duplicate
    records = await consume(kafka_bootstrap, topic, until=total)
    versions = _by_stream(records)
    assert set(versions) == set(streams)
    for stream in streams:
        assert versions[stream] == list(range(1, events_per_stream + 1))


async def test_shards_share_the_publishing_and_keep_each_streams_order(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(4)
    tickets = [uuid4() for _ in range(20)]
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(t) for t in tickets])
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([note(t, 2) for t in tickets])

    shards = [_relay(pool, producer, topic, shard=Shard(i, 2)) for i in range(2)]
    published = [await s.publish_pending() for s in shards]
    assert sum(published) == 40
    assert all(published)  # each took its part, none all of it
    assert [await s.publish_pending() for s in shards] == [0, 0]
    assert await shards[1].backlog() == 0

    records = await consume(kafka_bootstrap, topic, until=40)
    assert len(records) == 40
    assert _by_stream(records) == {t: [1, 2] for t in tickets}


async def test_splitting_the_relay_carries_on_from_where_it_stood(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(2)
    before, after = [uuid4() for _ in range(5)], [uuid4() for _ in range(5)]
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(t) for t in before])
    assert await _relay(pool, producer, topic).publish_pending() == 5
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn).append([opened(t) for t in after])

    shards = [_relay(pool, producer, topic, shard=Shard(i, 3)) for i in range(3)]
    assert sum([await s.publish_pending() for s in shards]) == 5  # only what was new
    assert await shards[0].publish_pending() == 0  # and now all three exist, "kafka" retires
    checkpoints = await pool.fetch("SELECT relay FROM outbox_checkpoints ORDER BY relay")
    assert [r["relay"] for r in checkpoints] == ["kafka#1/3", "kafka#2/3", "kafka#3/3"]
    assert await shards[0].backlog() == 0
