"""Month-start spike: N ticket submissions waiting on Kafka, drained by the ticketing service.

Publishes N `TicketSubmitted` (BENCH_EVENTS, default 50,000) to ticketing.intake.v1, then
drains them three times, each with a consumer group of its own that starts where the
publishing started: the plain aiokafka + asyncpg pipeline doing the same database work
with one and with three batches in flight (support/plain_pipeline.py), and the ticketing runtime
(intake consumer + outbox relay, in this process) until every ticket is opened and
published as `TicketOpened`. Run with `make bench`; it prints a table (and writes it as JSON
under .local/bench/ for later runs to compare), figures are not asserted.
"""

import asyncio
import json
import os
import resource
import time
import uuid

import asyncpg
from pydantic import SecretStr

from helpdesk_contracts import EventEnvelope, Requester, TicketSubmitted, kafka_headers
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.kafka import OutgoingMessage, Producer, TopicSpec, ensure_topics
from ticketing.bootstrap import INTAKE_TOPIC, build_runtime
from ticketing.config import Settings
from ticketing.tenants import add as register

from support.fixtures import start_group_at_end
from support.plain_pipeline import run_plain
from support.servers import REPO

EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
TENANTS = 20
PLAIN_OUT = "bench.plain.out"
PLAIN = os.environ.get("BENCH_PLAIN", "1") != "0"  # 0: only the service (to profile it)


def _submission(i: int, tenant: str) -> OutgoingMessage:
    envelope = EventEnvelope.new(
        TicketSubmitted(
            source="billing-portal",
            external_id=f"spike-{i}",
            subject="My invoice for this month is wrong",
            description="The amount charged does not match my plan. " * 3,
            requester=Requester(customer_id=f"c-{i % 5000}", email=f"c{i % 5000}@example.com"),
        ),
        tenant_id=tenant,
        producer="billing-portal",
    )
    # With the headers the contracts ask publishers to send (kafka_headers).
    return OutgoingMessage(
        INTAKE_TOPIC, envelope.to_json(), str(i).encode(), kafka_headers(envelope)
    )


async def _publish(producer: Producer, n: int, tenants: list[str]) -> float:
    started = time.perf_counter()
    for first in range(0, n, 5000):
        await producer.send_many(
            [_submission(i, tenants[i % TENANTS]) for i in range(first, min(n, first + 5000))]
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
        consumer_concurrency=int(os.environ.get("BENCH_CONCURRENCY", "1")),
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

    plain_groups = {n: f"plain-{n}-{uuid.uuid4().hex[:6]}" for n in (1, 3)}
    for group in plain_groups.values():
        await start_group_at_end(kafka_bootstrap, INTAKE_TOPIC, group)
    await ensure_topics(kafka_bootstrap, [TopicSpec(PLAIN_OUT, 12)])
    publish_s = await _publish(producer, EVENTS, tenants)

    plain = {}
    pool = await create_pool(database_url, min_size=4, max_size=8)
    try:
        for n, group in plain_groups.items() if PLAIN else ():
            plain[n] = await run_plain(
                pool, kafka_bootstrap, INTAKE_TOPIC, PLAIN_OUT, EVENTS, n, group
            )
    finally:
        await pool.close()

    runtime = build_runtime(settings)
    await runtime.start()
    try:
        # Timed from the first batch applied, like the plain pipeline: joining the group
        # (a rebalance per member) is not the path measured.
        first = 0
        while not first:
            await asyncio.sleep(0.01)
            first = await _opened(runtime.pool)
        cpu_before, started = time.process_time(), time.perf_counter()
        opened_s = published_s = 0.0
        while not published_s:
            await asyncio.sleep(0.05)
            opened = await _opened(runtime.pool)
            if not opened_s and opened >= EVENTS:
                opened_s = time.perf_counter() - started
            relayed = await runtime.pool.fetchval(
                "SELECT (SELECT max(position) FROM outbox_checkpoints)"
                " >= (SELECT max(position) FROM events)"
            )
            if opened_s and relayed:
                published_s = time.perf_counter() - started
        cpu_s = time.process_time() - cpu_before
    finally:
        await runtime.stop()
    measured = EVENTS - first

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best_rate = max((r.per_second for r in plain.values()), default=float("nan"))
    rows = [
        *(
            (f"plain aiokafka + asyncpg, {n} in flight", r.per_second, r.cpu_us)
            for n, r in plain.items()
        ),
        ("ticketing intake (opened)", measured / opened_s, 1e6 * cpu_s / measured),
        ("ticketing intake (published)", measured / published_s, 1e6 * cpu_s / measured),
    ]
    table = "\n".join(f"  {name:<40} {rate:9,.0f}/s {us:6.0f} µs/event" for name, rate, us in rows)
    ratio = (measured / published_s) / best_rate
    print(
        f"\nintake spike, {EVENTS:,} submissions (published at {EVENTS / publish_s:,.0f}/s),"
        f" batches of {BATCH}, {TENANTS} tenants:\n{table}\n"
        f"  ours / best plain: {ratio:.2f}; peak RSS of this process {rss_mb:.0f} MB"
    )
    _record(
        {
            "events": EVENTS, "batch": BATCH,
            "rows": [{"path": n, "per_second": round(r), "cpu_us_per_event": round(u)}
                     for n, r, u in rows],
            "ratio_to_best_plain": round(ratio, 3), "peak_rss_mb": round(rss_mb),
        }
    )  # fmt: skip
    assert opened == EVENTS  # every submission opened exactly one ticket


async def _opened(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'TicketOpened'"
    )
    return count


def _record(figures: dict[str, object]) -> None:
    """Keep the run's figures as JSON, so later runs can be compared with this one."""
    folder = REPO / ".local" / "bench"
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    (folder / f"intake-{stamp}.json").write_text(json.dumps(figures, indent=2))
