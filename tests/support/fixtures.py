"""Fixtures for tests that need the real servers (requested only by those tests)."""

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from helpdesk_runtime.db import create_pool, load_migrations, migrate, runtime_migrations
from helpdesk_runtime.kafka import Producer

from support.servers import Servers, servers


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    with servers() as found:
        yield found


def _dsn(admin_url: str, database: str) -> str:
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{database}"


@pytest.fixture(scope="session")
async def template_database(real_servers: Servers) -> AsyncIterator[str]:
    """A database with every migration applied, copied for each test (fast and isolated)."""
    name = f"helpdesk_template_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(real_servers.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    pool = await create_pool(_dsn(real_servers.database_admin_url, name), min_size=1, max_size=2)
    await migrate(pool, [*runtime_migrations(), *load_migrations("ticketing", "ticketing")])
    await pool.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def database_url(real_servers: Servers, template_database: str) -> AsyncIterator[str]:
    name = f"helpdesk_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(real_servers.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    yield _dsn(real_servers.database_admin_url, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


@pytest.fixture(scope="session")
def kafka_bootstrap(real_servers: Servers) -> str:
    return real_servers.kafka_bootstrap


@pytest.fixture(scope="session")
async def producer(kafka_bootstrap: str) -> AsyncIterator[Producer]:
    p = Producer(kafka_bootstrap, "tests")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture
async def new_topic(kafka_bootstrap: str) -> AsyncIterator[object]:
    """`await new_topic(partitions)` -> a fresh topic name, with its `.dlq`."""
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()

    async def make(partitions: int = 3) -> str:
        name = f"test.{uuid.uuid4().hex[:10]}"
        await admin.create_topics([NewTopic(name, partitions, 1), NewTopic(f"{name}.dlq", 1, 1)])
        return name

    yield make
    # Left in place: deleting them would make the session's producer log metadata errors,
    # and the test broker's data is disposable.
    await admin.close()


async def consume(bootstrap: str, topic: str, *, until: int, timeout_s: float = 30.0) -> list[Any]:
    """Read `topic` from the beginning until `until` records arrived (or the timeout)."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(records) < until:
                batch = await consumer.getmany(timeout_ms=500)
                for recs in batch.values():
                    records.extend(recs)
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return records


async def topic_size(bootstrap: str, topic: str) -> int:
    """How many records the topic holds (sum of its partitions' end offsets)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()  # subscribing fetches the topic's metadata
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum((await consumer.end_offsets(partitions)).values())
    finally:
        await consumer.stop()


async def find_on_topic(
    bootstrap: str, topic: str, predicate: Any, *, until: int = 1, timeout_s: float = 30.0
) -> list[Any]:
    """Records of `topic` (from the beginning) that match, once `until` of them arrived."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(found) < until:
                batch = await consumer.getmany(timeout_ms=300)
                found += [r for recs in batch.values() for r in recs if predicate(r)]
            # drain what is already there, so duplicates would be seen too
            batch = await consumer.getmany(timeout_ms=300)
            found += [r for recs in batch.values() for r in recs if predicate(r)]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


async def start_group_at_end(bootstrap: str, topic: str, group_id: str) -> None:
    """Commit the topic's current end for a new consumer group, so it reads only what
    is published from now on, not what earlier runs left on a shared broker."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        await consumer.commit(dict(await consumer.end_offsets(partitions)))
    finally:
        await consumer.stop()


async def topic_exists(bootstrap: str, topic: str) -> bool:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        return topic in await admin.list_topics()
    finally:
        await admin.close()
