"""A service that is not event-sourced publishes through the outbox table: an event leaves
only if the transaction that wrote it commits, once, and the table keeps only what waits."""

from typing import Any

import asyncpg

from helpdesk_contracts import parse_envelope
from helpdesk_runtime import outbox
from helpdesk_runtime.kafka import Producer
from helpdesk_runtime.outbox import OutboxRelay, Source
from helpdesk_runtime.trace import TraceContext

from support.events import submitted
from support.fixtures import consume


async def test_an_event_is_published_once_only_when_its_state_change_commits(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, new_topic: Any
) -> None:
    topic = await new_topic(3)
    async with pool.acquire() as conn:
        await conn.execute("CREATE TABLE deliveries (id text PRIMARY KEY)")
    kept, rolled_back = submitted("kept"), submitted("rolled-back")

    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO deliveries VALUES ('d1')")
        await outbox.put(conn, [kept])
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO deliveries VALUES ('d2')")
            await outbox.put(conn, [rolled_back])
            raise RuntimeError("the state change fails")
    except RuntimeError:
        pass

    relay = OutboxRelay(pool, producer, lambda _: topic, source=Source.OUTBOX)
    assert await relay.backlog() == 1
    assert await relay.publish_pending() == 1
    assert await relay.publish_pending() == 0
    restarted = OutboxRelay(pool, producer, lambda _: topic, source=Source.OUTBOX)
    assert await restarted.publish_pending() == 0  # the checkpoint and the table agree
    assert await relay.backlog() == 0
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 0  # published, then gone

    records = await consume(kafka_bootstrap, topic, until=2, timeout_s=3)
    assert [parse_envelope(r.value) for r in records] == [kept]
    assert records[0].key == b"kept"  # the contracts' key: the external id
    assert parse_envelope(records[0].value).aggregate_id is None
    # Written outside any request or consumed event: the relay starts a trace for it.
    assert TraceContext.parse(dict(records[0].headers)["traceparent"]) is not None
