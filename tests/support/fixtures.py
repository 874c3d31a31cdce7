"""Fixtures for tests that need the real servers (requested only by those tests)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from feedback.bootstrap import build_runtime as build_feedback_runtime
from feedback.config import Settings as FeedbackSettings
from helpdesk_runtime import tenancy
from helpdesk_runtime.db import Migration, create_pool, migrate
from helpdesk_runtime.kafka import Producer, partition_for
from notifications.bootstrap import build_runtime as build_notifications_runtime
from notifications.config import Settings as NotificationsSettings
from sla.bootstrap import build_runtime as build_sla_runtime
from sla.config import Settings as SlaSettings
from ticketing.bootstrap import build_runtime
from ticketing.config import Settings

from support.servers import SaslListener, Servers, servers


@pytest.fixture(scope="session")
def real_servers() -> Iterator[Servers]:
    with servers() as found:
        yield found


# Services connect as a role of their own that is not a superuser, and so do the tests: a
# migration or a query that needs more than owning its database fails here first.
SERVICE_ROLE = "helpdesk_service"
SERVICE_PASSWORD = "helpdesk-service-local"


def service_dsn(admin_url: str, database: str) -> str:
    """A database's DSN for the service role (what a service's DATABASE_URL looks like)."""
    return role_dsn(admin_url, database, SERVICE_ROLE, SERVICE_PASSWORD)


def role_dsn(admin_url: str, database: str, role: str, password: str) -> str:
    """A database's DSN on the admin's server, for another role."""
    url = urlsplit(admin_url)
    netloc = f"{role}:{password}@{url.hostname}:{url.port}"
    return urlunsplit((url.scheme, netloc, f"/{database}", url.query, ""))


@pytest.fixture(scope="session")
async def service_role(real_servers: Servers) -> str:
    admin = await asyncpg.connect(real_servers.database_admin_url)
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", SERVICE_ROLE)
        if not exists:
            await admin.execute(
                f"CREATE ROLE {SERVICE_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE"
                f" PASSWORD '{SERVICE_PASSWORD}'"
            )
    finally:
        await admin.close()
    return SERVICE_ROLE


async def open_to_test_tools(admin: asyncpg.Connection, database: str) -> None:
    """The test's own connections to `database` see every tenant's rows (a database default).

    A service's pool sets its scope on every checkout, which overrides this default: the
    code under test sees what production code would (helpdesk_runtime.tenancy)."""
    await admin.execute(f"ALTER DATABASE \"{database}\" SET {tenancy.SETTING} = '{tenancy.ALL}'")


async def template_with(
    servers: Servers, role: str, migrations: list[Migration]
) -> AsyncIterator[str]:
    """A database owned by the service role with `migrations` applied (as that role)."""
    name = f"helpdesk_template_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" OWNER {role}')
    pool = await create_pool(service_dsn(servers.database_admin_url, name), min_size=1, max_size=2)
    await migrate(pool, migrations)
    await pool.close()
    yield name
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture(scope="session")
async def template_database(real_servers: Servers, service_role: str) -> AsyncIterator[str]:
    """The ticketing service's schema, copied for each test (fast and isolated).

    tests/integration/runtime overrides it with the runtime's own tables alone."""
    migrations = build_runtime(Settings()).migrations  # exactly what the service migrates
    async for name in template_with(real_servers, service_role, migrations):
        yield name


async def copy_of(
    servers: Servers, role: str, template: str, prefix: str = "helpdesk_test"
) -> AsyncIterator[str]:
    """A fresh database copied from `template`, reached as `role`; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(servers.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" OWNER {role}')
    await open_to_test_tools(admin, name)
    yield service_dsn(servers.database_admin_url, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def database_url(
    real_servers: Servers, service_role: str, template_database: str
) -> AsyncIterator[str]:
    """A fresh database of the test's own, reached as the service role."""
    async for url in copy_of(real_servers, service_role, template_database):
        yield url


@pytest.fixture(scope="session")
async def sla_template_database(real_servers: Servers, service_role: str) -> AsyncIterator[str]:
    """The SLA service's schema, copied for each test that runs it."""
    migrations = build_sla_runtime(SlaSettings()).migrations
    async for name in template_with(real_servers, service_role, migrations):
        yield name


@pytest.fixture
async def sla_database_url(
    real_servers: Servers, service_role: str, sla_template_database: str
) -> AsyncIterator[str]:
    """A fresh SLA database of the test's own, reached as the service role."""
    async for url in copy_of(real_servers, service_role, sla_template_database, "helpdesk_sla"):
        yield url


@pytest.fixture(scope="session")
async def notifications_template_database(
    real_servers: Servers, service_role: str
) -> AsyncIterator[str]:
    """The notifications service's schema, copied for each test that runs it."""
    migrations = build_notifications_runtime(NotificationsSettings()).migrations
    async for name in template_with(real_servers, service_role, migrations):
        yield name


@pytest.fixture
async def notifications_database_url(
    real_servers: Servers, service_role: str, notifications_template_database: str
) -> AsyncIterator[str]:
    """A fresh notifications database of the test's own, reached as the service role."""
    async for url in copy_of(
        real_servers, service_role, notifications_template_database, "helpdesk_notifications"
    ):
        yield url


@pytest.fixture(scope="session")
async def feedback_template_database(
    real_servers: Servers, service_role: str
) -> AsyncIterator[str]:
    """The feedback service's schema, copied for each test that runs it."""
    migrations = build_feedback_runtime(FeedbackSettings()).migrations
    async for name in template_with(real_servers, service_role, migrations):
        yield name


@pytest.fixture
async def feedback_database_url(
    real_servers: Servers, service_role: str, feedback_template_database: str
) -> AsyncIterator[str]:
    """A fresh feedback database of the test's own, reached as the service role."""
    async for url in copy_of(
        real_servers, service_role, feedback_template_database, "helpdesk_feedback"
    ):
        yield url


@pytest.fixture
async def empty_database_url(real_servers: Servers, service_role: str) -> AsyncIterator[str]:
    """A database with nothing in it yet, owned by the service role (as ops create one)."""
    name = f"helpdesk_empty_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(real_servers.database_admin_url)
    await admin.execute(f'CREATE DATABASE "{name}" OWNER {service_role}')
    await open_to_test_tools(admin, name)
    yield service_dsn(real_servers.database_admin_url, name)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await create_pool(database_url, min_size=1, max_size=10)
    yield p
    await p.close()


@pytest.fixture
def kafka_sasl(real_servers: Servers) -> SaslListener:
    """The broker's SASL (SCRAM-SHA-512) listener and its user."""
    if real_servers.kafka_sasl is None:
        pytest.skip("this Kafka (testcontainers') has no SASL listener; infra.sh's has")
    return real_servers.kafka_sasl


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


async def find_keyed(
    bootstrap: str, topic: str, key: bytes, *, until: int = 1, timeout_s: float = 60.0,
    tenant: str | None = None,
) -> list[Any]:  # fmt: skip
    """Records of `topic` with this key (and of this tenant: earlier runs on a shared
    broker reuse keys), once `until` of them arrived: reads only the key's partition (a
    busy topic's other partitions are not scanned)."""

    def wanted(record: Any) -> bool:
        return record.key == key and (tenant is None or _tenant_of(record) == tenant)

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()  # subscribing fetches the topic's metadata
    found: list[Any] = []
    try:
        async with asyncio.timeout(timeout_s):
            partitions = consumer.partitions_for_topic(topic) or set()
            consumer.unsubscribe()
            tp = TopicPartition(topic, partition_for(key, len(partitions)))
            consumer.assign([tp])
            await consumer.seek_to_beginning(tp)
            while len(found) < until:
                batch = await consumer.getmany(tp, timeout_ms=300)
                found += [r for r in batch.get(tp, []) if wanted(r)]
            batch = await consumer.getmany(tp, timeout_ms=300)  # duplicates would show too
            found += [r for r in batch.get(tp, []) if wanted(r)]
    except TimeoutError:
        pass
    finally:
        await consumer.stop()
    return found


def _tenant_of(record: Any) -> str | None:
    try:
        tenant: str | None = json.loads(record.value).get("tenant_id")
    except ValueError:
        return None
    return tenant


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


async def group_settled(bootstrap: str, group: str, members: int) -> None:
    """Until every replica is a member of the group with its partitions (no rebalance due)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        while True:
            [described] = await admin.describe_consumer_groups([group])
            _error, _group, state, _protocol_type, _protocol, found = described.groups[0][:6]
            if state == "Stable" and len(found) == members:
                return
            await asyncio.sleep(0.1)
    finally:
        await admin.close()
