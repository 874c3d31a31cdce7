"""The subjects' keys on Kafka: an entitled service, with a database of its own, opens what
the owner sealed, until the owner destroys the key (through the real Kafka and PostgreSQL)."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from helpdesk_contracts import TicketOpened, parse_envelope
from helpdesk_contracts.pii import ERASED, SUBJECT_KEYS_TOPIC, is_sealed
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.event_log import EVENT_COLUMNS, wire_json
from helpdesk_runtime.eventstore import PostgresEventStore
from helpdesk_runtime.kafka import Producer, TopicSpec, ensure_topics
from helpdesk_runtime.key_distribution import SubjectKeyPublisher, SubjectKeyReplica
from helpdesk_runtime.personal_data import open_published

from support.chaos import eventually
from support.events import opened
from support.fixtures import copy_of, topic_size
from support.privacy import DEV_KEYS
from support.servers import Servers


@pytest.fixture
async def replica_pool(
    real_servers: Servers, service_role: str, template_database: str
) -> AsyncIterator[asyncpg.Pool]:
    """The entitled service's own database."""
    async for url in copy_of(real_servers, service_role, template_database, "helpdesk_replica"):
        pool = await create_pool(url, min_size=1, max_size=4)
        yield pool
        await pool.close()


async def _policy(bootstrap: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, SUBJECT_KEYS_TOPIC, {"cleanup.policy": None})]
        )
        [(_e, _m, _t, _n, entries)] = response.resources
        return next(str(e[1]) for e in entries if e[0] == "cleanup.policy")
    finally:
        await admin.close()


async def test_a_replica_opens_what_the_owner_sealed_until_the_key_is_destroyed(
    pool: asyncpg.Pool, replica_pool: asyncpg.Pool, kafka_bootstrap: str, producer: Producer
) -> None:
    await ensure_topics(kafka_bootstrap, [TopicSpec(SUBJECT_KEYS_TOPIC, 6, compacted=True)])
    assert await _policy(kafka_bootstrap) == "compact"
    ticket, tenant = uuid.uuid4(), f"t{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():  # the owner seals, making a key
        await PostgresEventStore(conn, keys=DEV_KEYS).append([opened(ticket, tenant)])
        row = await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE stream_id = $1",
                                  ticket)  # fmt: skip
    assert row is not None
    published = wire_json(row)  # what the relay publishes
    publisher = SubjectKeyPublisher(pool, producer)
    assert await publisher.publish_pending() >= 1
    assert await publisher.publish_pending() == 0  # each key once

    replica = SubjectKeyReplica(replica_pool, DEV_KEYS, kafka_bootstrap)
    running = asyncio.create_task(replica.run())
    try:
        await asyncio.wait_for(replica.caught_up.wait(), 120)

        async def subject() -> str:
            async with replica_pool.acquire() as conn:
                envelope = await open_published(conn, published, DEV_KEYS)
            assert isinstance(envelope.payload, TicketOpened)
            return envelope.payload.subject

        assert await subject() == "Invoice shows the wrong amount"  # caught up: it is there
        sealed = parse_envelope(published).payload  # a reader without the keys
        assert isinstance(sealed, TicketOpened)
        assert is_sealed(sealed.subject)

        async with pool.acquire() as conn, conn.transaction():
            assert await DEV_KEYS.destroy(conn, tenant, ["c-1"]) == 1
        assert await publisher.publish_pending() >= 1  # the tombstone

        async def erased() -> bool:
            return await subject() == ERASED

        await eventually(erased, timeout_s=60)
        async with replica_pool.acquire() as conn:
            noted = await conn.fetchval(
                "SELECT count(*) FROM destroyed_subject_keys WHERE tenant_id = $1", tenant
            )
        assert noted == 1  # known destroyed: a missing key that is not here is yet to come
    finally:
        replica.stop()
        await asyncio.wait_for(running, 30)
    # Where it read to is kept with what it read: a restart goes on from there.
    async with replica_pool.acquire() as conn:
        held = await conn.fetchval(
            "SELECT sum(next_offset) FROM replica_positions WHERE topic = $1", SUBJECT_KEYS_TOPIC
        )
    assert held == await topic_size(kafka_bootstrap, SUBJECT_KEYS_TOPIC)
    again = SubjectKeyReplica(replica_pool, DEV_KEYS, kafka_bootstrap)
    seen: list[int] = []
    original = again.apply

    async def counting(conn: Any, records: Any) -> None:
        seen.append(len(records))
        await original(conn, records)

    again.apply = counting  # type: ignore[method-assign]
    restarted = asyncio.create_task(again.run())
    try:
        await asyncio.wait_for(again.caught_up.wait(), 60)
        assert sum(seen) == 0  # nothing read twice
    finally:
        again.stop()
        await asyncio.wait_for(restarted, 30)
