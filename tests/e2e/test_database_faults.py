"""A transient database fault never loses an event: intake waits (paused, still in its
consumer group) until the database takes writes again, then opens every ticket once, and
dead-letters nothing it should not."""

import asyncio
import contextlib
from collections.abc import AsyncIterator
from uuid import uuid4

import asyncpg
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from helpdesk_contracts import kafka_key
from helpdesk_runtime.kafka import OutgoingMessage, Producer

from support.events import submitted
from support.faults import set_read_only, terminate_sessions
from support.fixtures import find_on_topic
from support.service import TicketingService, ticketing_service

INTAKE = "ticketing.intake.v1"


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(
        database_url, kafka_bootstrap, consumer_retry_attempts=2, consumer_retry_backoff_s=0.05
    ) as running:
        yield running


async def opened(database_url: str, tenant: str) -> tuple[int, int]:
    """(tickets, TicketOpened events) of the tenant."""
    conn = await asyncpg.connect(database_url)
    try:
        tickets = await conn.fetchval(
            "SELECT count(*) FROM ticket_list WHERE tenant_id = $1", tenant
        )
        events = await conn.fetchval(
            "SELECT count(*) FROM events WHERE tenant_id = $1 AND event_type = 'TicketOpened'",
            tenant,
        )
        return tickets, events
    finally:
        await conn.close()


async def publish(producer: Producer, tenant: str, count: int) -> list[bytes]:
    envelopes = [submitted(f"m-{uuid4().hex[:10]}", tenant=tenant) for _ in range(count)]
    await producer.send_many(
        [OutgoingMessage(INTAKE, e.to_json(), kafka_key(e)) for e in envelopes]
    )
    return [kafka_key(e) for e in envelopes]


async def wait_until_opened(database_url: str, tenant: str, count: int) -> None:
    async with asyncio.timeout(60):
        while (await opened(database_url, tenant))[0] < count:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def no_dead_letters(kafka_bootstrap: str, keys: list[bytes]) -> None:
    wanted = set(keys)
    letters = await find_on_topic(
        kafka_bootstrap, f"{INTAKE}.dlq", lambda r: r.key in wanted, timeout_s=3
    )
    assert letters == [], [dict(r.headers).get("dlq-reason") for r in letters]


async def test_a_read_only_database_pauses_intake_until_it_takes_writes_again(
    service: TicketingService, database_url: str, real_servers: object, kafka_bootstrap: str,
    producer: Producer,
) -> None:  # fmt: skip
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    admin_url: str = real_servers.database_admin_url  # type: ignore[attr-defined]
    database = database_url.rsplit("/", 1)[1]
    # As after a failover: the database refuses writes, and the sessions are cut.
    await set_read_only(admin_url, database, True)
    keys = await publish(producer, tenant, 200)
    async with asyncio.timeout(30):
        while True:
            ready = (await service.client.get("/health/ready")).json()
            if any(v.startswith("paused") for v in ready["checks"].values()):
                break
            await asyncio.sleep(0.1)
    assert ready["checks"]["database"] == "read-only"
    assert await opened(database_url, tenant) == (0, 0)
    await set_read_only(admin_url, database, False)  # new sessions take writes
    await wait_until_opened(database_url, tenant, 200)
    assert await opened(database_url, tenant) == (200, 200)
    await no_dead_letters(kafka_bootstrap, keys)
    async with asyncio.timeout(30):
        while (await service.client.get("/health/ready")).status_code != 200:  # noqa: ASYNC110
            await asyncio.sleep(0.1)


async def test_sessions_cut_again_and_again_lose_and_double_nothing(
    service: TicketingService, database_url: str, real_servers: object, kafka_bootstrap: str,
    producer: Producer,
) -> None:  # fmt: skip
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    admin_url: str = real_servers.database_admin_url  # type: ignore[attr-defined]
    database = database_url.rsplit("/", 1)[1]

    async def keep_cutting() -> None:
        while True:
            await terminate_sessions(admin_url, database)
            await asyncio.sleep(0.2)

    cutter = asyncio.create_task(keep_cutting())
    try:
        keys: list[bytes] = []
        for _ in range(10):  # a steady stream while the sessions keep dying
            keys += await publish(producer, tenant, 30)
            await asyncio.sleep(0.2)
    finally:
        cutter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cutter
    await wait_until_opened(database_url, tenant, 300)
    assert await opened(database_url, tenant) == (300, 300)
    await no_dead_letters(kafka_bootstrap, keys)


async def group_members(kafka_bootstrap: str, group_id: str) -> list[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        (response,) = await admin.describe_consumer_groups([group_id])
        (group,) = response.groups
        return sorted(member[0] for member in group[5])  # (error, id, state, …, members)
    finally:
        await admin.close()


async def test_an_outage_longer_than_the_poll_interval_keeps_the_consumer_in_its_group(
    database_url: str, real_servers: object, kafka_bootstrap: str, producer: Producer
) -> None:
    admin_url: str = real_servers.database_admin_url  # type: ignore[attr-defined]
    database = database_url.rsplit("/", 1)[1]
    async with ticketing_service(
        database_url, kafka_bootstrap, consumer_max_poll_interval_ms=2000,
        consumer_retry_attempts=2, consumer_retry_backoff_s=0.05,
    ) as service:  # fmt: skip
        tenant = f"t{uuid4().hex[:8]}"
        await service.register_tenant(tenant)
        group = service.settings.intake_group_id
        async with asyncio.timeout(30):
            while not (before := await group_members(kafka_bootstrap, group)):  # noqa: ASYNC110
                await asyncio.sleep(0.2)
        await set_read_only(admin_url, database, True)
        await publish(producer, tenant, 20)
        # Paused for three poll intervals: a consumer that stopped polling would be gone.
        async with asyncio.timeout(30):
            while not any(  # noqa: ASYNC110
                v.startswith("paused")
                for v in (await service.client.get("/health/ready")).json()["checks"].values()
            ):
                await asyncio.sleep(0.1)
        await asyncio.sleep(6)  # the outage goes on for three poll intervals
        assert await group_members(kafka_bootstrap, group) == before
        await set_read_only(admin_url, database, False)
        await wait_until_opened(database_url, tenant, 20)
        assert await group_members(kafka_bootstrap, group) == before  # never rejoined
