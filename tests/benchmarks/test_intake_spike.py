"""Month-start spike: N ticket submissions waiting on Kafka, drained by the ticketing service.

Publishes N `TicketSubmitted` (BENCH_EVENTS, default 50,000) to ticketing.intake.v1, then
starts the ticketing runtime (intake consumer + outbox relay, in this process) and measures
how long it takes until every ticket is opened in the event store and published as
`TicketOpened`. Run with `make bench`; figures are printed, not asserted.
"""

import asyncio
import os
import resource
import time
import uuid

from pydantic import SecretStr

from helpdesk_contracts import EventEnvelope, Requester, TicketSubmitted
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.bootstrap import INTAKE_TOPIC, build_runtime
from ticketing.config import Settings
from ticketing.tenants import add as register

from support.fixtures import start_group_at_end

EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
TENANTS = 20


def _submission(i: int, tenant: str) -> bytes:
    return EventEnvelope.new(
        TicketSubmitted(
            source="billing-portal",
            external_id=f"spike-{i}",
            subject="My invoice for this month is wrong",
            description="The amount charged does not match my plan. " * 3,
            requester=Requester(customer_id=f"c-{i % 5000}", email=f"c{i % 5000}@example.com"),
        ),
        tenant_id=tenant,
        producer="billing-portal",
    ).to_json()


async def _publish(producer: Producer, n: int, tenants: list[str]) -> float:
    started = time.perf_counter()
    for first in range(0, n, 5000):
        await producer.send_many(
            [
                OutgoingMessage(INTAKE_TOPIC, _submission(i, tenants[i % TENANTS]), str(i).encode())
                for i in range(first, min(n, first + 5000))
            ]
        )
    return time.perf_counter() - started


async def test_a_spike_of_submissions_is_drained(
    database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    tenants = [f"bench{uuid.uuid4().hex[:6]}{t}" for t in range(TENANTS)]
    settings = Settings(
        database_url=SecretStr(database_url),
        kafka_bootstrap_servers=kafka_bootstrap,
        intake_group_id=f"bench-{uuid.uuid4().hex[:8]}",
        consumer_batch_size=BATCH,
        log_level="WARNING",
        log_format="console",
    )
    runtime = build_runtime(settings)
    await runtime.start()  # creates the topics if this broker has none yet
    async with runtime.pool.acquire() as conn:
        for tenant in tenants:
            await register(conn, tenant, f"Bench {tenant}")
    await runtime.stop()
    await start_group_at_end(kafka_bootstrap, INTAKE_TOPIC, settings.intake_group_id)

    publish_s = await _publish(producer, EVENTS, tenants)

    runtime = build_runtime(settings)
    cpu_before = time.process_time()
    started = time.perf_counter()
    await runtime.start()
    opened_s = published_s = 0.0
    try:
        while not published_s:
            await asyncio.sleep(0.2)
            opened = await runtime.pool.fetchval("SELECT count(*) FROM events")
            if not opened_s and opened >= EVENTS:
                opened_s = time.perf_counter() - started
            relayed = await runtime.pool.fetchval("SELECT max(position) FROM outbox_checkpoints")
            if opened_s and relayed == opened:
                published_s = time.perf_counter() - started
    finally:
        await runtime.stop()
    cpu_s = time.process_time() - cpu_before

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\nintake spike, {EVENTS:,} submissions, batches of {BATCH}, {TENANTS} tenants:\n"
        f"  published to Kafka      {publish_s:6.1f} s  {EVENTS / publish_s:8,.0f}/s\n"
        f"  opened (event store)    {opened_s:6.1f} s  {EVENTS / opened_s:8,.0f}/s\n"
        f"  relayed as TicketOpened {published_s:6.1f} s  {EVENTS / published_s:8,.0f}/s\n"
        f"  service CPU {cpu_s:.1f} s ({1e6 * cpu_s / EVENTS:.0f} µs/event),"
        f" peak RSS {rss_mb:.0f} MB"
    )
    assert opened == EVENTS  # every submission opened exactly one ticket
