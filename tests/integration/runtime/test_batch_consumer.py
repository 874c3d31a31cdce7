"""Idempotent batch consumption and dead letters through the real broker and database."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from helpdesk_contracts import EventEnvelope, InternalNoteAdded, TicketOpened
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime

from support.events import note, opened, submitted
from support.fixtures import consume
from support.runtime import service_settings

FAILING_BODY = "this note breaks the handler"


async def record_effects(
    conn: Connection, batch: Sequence[EventEnvelope[Any]]
) -> Sequence[Rejection]:
    """A projection that counts each event it applies, and fails on one poison body."""
    for e in batch:
        if isinstance(e.payload, InternalNoteAdded) and e.payload.body == FAILING_BODY:
            raise ValueError("cannot apply this note")
    refused = [
        e
        for e in batch
        if isinstance(e.payload, InternalNoteAdded) and e.payload.body == "refuse me"
    ]
    await conn.executemany(
        "INSERT INTO effects (event_id, tenant_id) VALUES ($1, $2)",
        [(e.event_id, e.tenant_id) for e in batch if e not in refused],
    )
    return [Rejection(e.event_id, "this note is refused") for e in refused]


@pytest.fixture
async def running(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, new_topic: Any
) -> AsyncIterator[tuple[ServiceRuntime, str]]:
    await pool.execute(
        "CREATE TABLE effects (event_id uuid NOT NULL, tenant_id text NOT NULL,"
        " applied_at timestamptz DEFAULT now())"
    )
    topic = await new_topic(3)
    runtime = ServiceRuntime(
        service_settings(database_url, kafka_bootstrap),
        consumers=[
            ConsumerSpec(
                topic=topic,
                group_id=f"tests-{uuid4().hex[:8]}",
                handler=record_effects,
                accepts=frozenset({TicketOpened.event_type, InternalNoteAdded.event_type}),
            )
        ],
    )
    await runtime.start()
    yield runtime, topic
    await runtime.stop()


async def _send(producer: Producer, topic: str, *values: bytes, key: bytes = b"k") -> None:
    await producer.send_many([OutgoingMessage(topic, v, key=key) for v in values])


async def _wait_for_effects(pool: asyncpg.Pool, count: int) -> list[asyncpg.Record]:
    async with asyncio.timeout(30):
        while True:
            rows = await pool.fetch("SELECT event_id FROM effects")
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.05)


async def test_a_redelivered_event_is_applied_once(
    running: tuple[ServiceRuntime, str], pool: asyncpg.Pool, producer: Producer
) -> None:
    _, topic = running
    ticket = uuid4()
    first, second = opened(ticket), note(ticket, 2)
    await _send(producer, topic, first.to_json(), first.to_json())  # a duplicate in one batch
    await _wait_for_effects(pool, 1)
    await _send(producer, topic, first.to_json(), second.to_json())  # redelivered later
    rows = await _wait_for_effects(pool, 2)
    await asyncio.sleep(0.5)  # give a wrongly applied duplicate time to show up
    rows = await pool.fetch("SELECT event_id FROM effects ORDER BY applied_at")
    assert [r["event_id"] for r in rows] == [first.event_id, second.event_id]
    inbox = await pool.fetchval("SELECT count(*) FROM inbox WHERE event_id = $1", first.event_id)
    assert inbox == 1


async def test_a_poison_message_is_dead_lettered_and_the_next_one_applied(
    running: tuple[ServiceRuntime, str],
    pool: asyncpg.Pool,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    runtime, topic = running
    good = opened(uuid4())
    await _send(producer, topic, b"\x00not json at all", good.to_json(), key=b"poison")
    rows = await _wait_for_effects(pool, 1)
    assert [r["event_id"] for r in rows] == [good.event_id]

    letters = await consume(kafka_bootstrap, f"{topic}.dlq", until=1)
    assert len(letters) == 1
    letter = letters[0]
    headers = dict(letter.headers)
    assert letter.value == b"\x00not json at all"  # the original, unchanged
    assert letter.key == b"poison"
    assert headers["dlq-error-type"] == b"invalid"
    assert b"JSON" in headers["dlq-reason"] or b"json" in headers["dlq-reason"]
    assert headers["dlq-source-topic"] == topic.encode()
    assert runtime.consumers[next(iter(runtime.consumers))].name.startswith("tests-")


async def test_one_failing_event_is_isolated_and_the_rest_of_its_batch_applied(
    running: tuple[ServiceRuntime, str],
    pool: asyncpg.Pool,
    producer: Producer,
    kafka_bootstrap: str,
) -> None:
    _, topic = running
    ticket = uuid4()
    before, after = opened(ticket), note(ticket, 3)
    failing = EventEnvelope.new(
        InternalNoteAdded(note_id=uuid4(), agent_id="a-1", body=FAILING_BODY),
        tenant_id="acme",
        producer="tests",
        aggregate_id=ticket,
        aggregate_version=2,
    )
    refused = EventEnvelope.new(
        InternalNoteAdded(note_id=uuid4(), agent_id="a-1", body="refuse me"),
        tenant_id="acme",
        producer="tests",
        aggregate_id=ticket,
        aggregate_version=4,
    )
    wrong_type = submitted("ext-1").to_json()  # valid, but not consumed from this topic
    await _send(
        producer, topic, before.to_json(), failing.to_json(), after.to_json(), refused.to_json()
    )
    await _send(producer, topic, wrong_type)
    rows = await _wait_for_effects(pool, 2)
    await asyncio.sleep(0.3)
    rows = await pool.fetch("SELECT event_id FROM effects")
    assert {r["event_id"] for r in rows} == {before.event_id, after.event_id}

    letters = await consume(kafka_bootstrap, f"{topic}.dlq", until=3)
    kinds = sorted(dict(x.headers)["dlq-error-type"].decode() for x in letters)
    assert kinds == ["failed", "rejected", "unexpected_event_type"]
    failed = next(x for x in letters if dict(x.headers)["dlq-error-type"] == b"failed")
    assert b"cannot apply this note" in dict(failed.headers)["dlq-reason"]


async def test_stopping_mid_stream_and_restarting_applies_every_event_once(
    pool: asyncpg.Pool, database_url: str, kafka_bootstrap: str, producer: Producer, new_topic: Any
) -> None:
    await pool.execute("CREATE TABLE effects (event_id uuid NOT NULL, tenant_id text NOT NULL)")
    topic = await new_topic(3)
    group = f"tests-{uuid4().hex[:8]}"

    async def slow_effects(
        conn: Connection, batch: Sequence[EventEnvelope[Any]]
    ) -> Sequence[Rejection]:
        await asyncio.sleep(0.1)  # a batch is in flight when the stop comes
        await conn.executemany(
            "INSERT INTO effects (event_id, tenant_id) VALUES ($1, $2)",
            [(e.event_id, e.tenant_id) for e in batch],
        )
        return []

    def runtime() -> ServiceRuntime:
        settings = service_settings(database_url, kafka_bootstrap, consumer_batch_size=7)
        spec = ConsumerSpec(topic, group, slow_effects, frozenset({TicketOpened.event_type}))
        return ServiceRuntime(settings, consumers=[spec])

    events = [opened(uuid4()) for _ in range(60)]
    await producer.send_many(
        [OutgoingMessage(topic, e.to_json(), key=str(e.aggregate_id).encode()) for e in events]
    )
    first = runtime()
    await first.start()
    await _wait_for_effects(pool, 1)
    await first.stop()
    applied_before_restart = await pool.fetchval("SELECT count(*) FROM effects")
    assert 0 < applied_before_restart < len(events)

    second = runtime()
    await second.start()
    await _wait_for_effects(pool, len(events))
    await asyncio.sleep(0.5)  # room for a doubled batch to show up
    await second.stop()
    rows = await pool.fetch("SELECT event_id, count(*) AS n FROM effects GROUP BY event_id")
    assert {r["event_id"] for r in rows} == {e.event_id for e in events}
    assert all(r["n"] == 1 for r in rows)
