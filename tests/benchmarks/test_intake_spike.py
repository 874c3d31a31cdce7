"""Month-start spike: N ticket submissions waiting on Kafka, drained by the ticketing service.

Publishes N `TicketSubmitted` (BENCH_EVENTS, default 50,000) to ticketing.intake.v1 and
drains them, each time with a consumer group of its own that starts where the publishing
started:
- the plain aiokafka + asyncpg pipeline doing the same database work, with one and with
  three batches in flight (support/plain_pipeline.py): the ceiling of this machine;
- the ticketing runtime in this process (intake consumer + outbox relay), until every
  ticket is opened and published as `TicketOpened`, its personal data sealed; then N more
  with the event store sealing nothing (switched off by the benchmark), for what the
  encryption costs. BENCH_CUSTOMERS (default 5,000) distinct customers send the N
  submissions: that share of them is first-time customers, each needing a new key;
- then N more, for other tenants, drained by BENCH_REPLICAS (default 2) replicas of the
  service as processes of their own (`python -m ticketing`), the relay split in as many
  shards: how the service scales out.
Each path is timed from its first applied batch (joining the group is not the path
measured), CPU per event is the drain's CPU divided by the events drained. Run with `make
bench`; it prints a table and writes it as JSON under .local/bench/ for later runs to
compare. Figures are not asserted; that every submission opened one ticket is.
"""

import asyncio
import os
import resource
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from helpdesk_contracts import EventEnvelope, Requester, TicketSubmitted, kafka_headers
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.event_log import Shard
from helpdesk_runtime.eventstore import PostgresEventStore
from helpdesk_runtime.kafka import OutgoingMessage, Producer, TopicSpec, ensure_topics
from helpdesk_runtime.outbox import OutboxRelay
from helpdesk_runtime.personal_data import SubjectKeys
from ticketing import unit_of_work
from ticketing.bootstrap import INTAKE_TOPIC, build_runtime
from ticketing.config import Settings
from ticketing.intake import DIRECTORY_SYNC_TOPIC
from ticketing.sla_feed import SLA_TOPIC
from ticketing.tenants import add as register

from support.bench import record
from support.chaos import ServiceProcess
from support.fixtures import group_settled, start_group_at_end
from support.plain_pipeline import run_plain
from support.proc import cpu_s, rss_mb
from support.servers import REPO

EVENTS = int(os.environ.get("BENCH_EVENTS", "50000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
TENANTS = 20
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "5000"))  # a multiple of TENANTS
PLAIN_OUT = "bench.plain.out"
PLAIN = os.environ.get("BENCH_PLAIN", "1") != "0"  # 0: only the service (to profile it)


@dataclass
class Drain:
    path: str
    events: int
    opened_s: float
    published_s: float
    cpu_s: float
    rss_mb: float

    @property
    def rows(self) -> list[tuple[str, float, float]]:
        us = 1e6 * self.cpu_s / self.events
        return [
            (f"{self.path} (opened)", self.events / self.opened_s, us),
            (f"{self.path} (published)", self.events / self.published_s, us),
        ]


def _submission(i: int, tenant: str) -> OutgoingMessage:
    envelope = EventEnvelope.new(
        TicketSubmitted(
            source="billing-portal",
            external_id=f"spike-{i}",
            subject="My invoice for this month is wrong",
            description="The amount charged does not match my plan. " * 3,
            requester=Requester(
                customer_id=f"c-{i % CUSTOMERS}", email=f"c{i % CUSTOMERS}@example.com"
            ),
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
    database_url: str, kafka_bootstrap: str, producer: Producer, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenants = [f"bench{uuid.uuid4().hex[:6]}{t}" for t in range(TENANTS)]
    unsealed = [f"bench{uuid.uuid4().hex[:6]}{t}" for t in range(TENANTS)]  # without sealing
    later = [f"bench{uuid.uuid4().hex[:6]}{t}" for t in range(TENANTS)]  # for the replicas
    settings = Settings(
        database_url=SecretStr(database_url),
        kafka_bootstrap_servers=kafka_bootstrap,
        intake_group_id=f"bench-{uuid.uuid4().hex[:8]}",
        # Its other consumers start at the end too: what tests left on a shared broker is
        # not this benchmark's traffic.
        sla_group_id=f"bench-sla-{uuid.uuid4().hex[:8]}",
        directory_group_id=f"bench-directory-{uuid.uuid4().hex[:8]}",
        consumer_batch_size=BATCH,
        log_level="WARNING",
        log_format="console",
    )
    runtime = build_runtime(settings)
    await runtime.start()  # creates the topics if this broker has none yet
    async with runtime.pool.acquire() as conn:
        for tenant in tenants + unsealed + later:
            await register(conn, tenant, f"Bench {tenant}")
    await runtime.stop()
    await start_group_at_end(kafka_bootstrap, INTAKE_TOPIC, settings.intake_group_id)
    await start_group_at_end(kafka_bootstrap, SLA_TOPIC, settings.sla_group_id)
    await start_group_at_end(kafka_bootstrap, DIRECTORY_SYNC_TOPIC, settings.directory_group_id)

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
        drains = [await _drain_in_process(settings, pool, tenants)]
        with monkeypatch.context() as patched:
            patched.setattr(unit_of_work, "PostgresEventStore", _sealing_nothing)
            group = f"bench-unsealed-{uuid.uuid4().hex[:8]}"
            await start_group_at_end(kafka_bootstrap, INTAKE_TOPIC, group)
            await _publish(producer, EVENTS, unsealed)
            without = settings.model_copy(update={"intake_group_id": group})
            drains.append(await _drain_in_process(without, pool, unsealed, "without sealing"))
        if REPLICAS:
            drains.append(
                await _drain_in_replicas(database_url, producer, kafka_bootstrap, pool, later)
            )
    finally:
        await pool.close()

    best_rate = max((r.per_second for r in plain.values()), default=float("nan"))
    rows = [
        *((f"plain aiokafka + asyncpg, {n} in flight", r.per_second, r.cpu_us)
          for n, r in plain.items()),
        *(row for d in drains for row in d.rows),
    ]  # fmt: skip
    ratios = {d.path: (d.events / d.published_s) / best_rate for d in drains}
    sealed, plain_store = drains[0], drains[1]
    cost = 1 - (sealed.events / sealed.published_s) / (plain_store.events / plain_store.published_s)
    cpu_cost = (sealed.cpu_s / sealed.events) - (plain_store.cpu_s / plain_store.events)
    table = "\n".join(f"  {name:<46} {rate:9,.0f}/s {us:6.0f} µs/event" for name, rate, us in rows)
    print(
        f"\nintake spike, {EVENTS:,} submissions (published at {EVENTS / publish_s:,.0f}/s),"
        f" batches of {BATCH}, {TENANTS} tenants:\n{table}\n"
        + "".join(f"  {p} / best plain: {r:.2f}\n" for p, r in ratios.items())
        + f"  sealing personal data ({CUSTOMERS / EVENTS:.0%} first-time customers, a new key"
        f" each): {cost:.1%} of the throughput, {1e6 * cpu_cost:.0f} µs CPU per event\n"
        + "".join(f"  peak RSS, {d.path}: {d.rss_mb:.0f} MB\n" for d in drains)
    )
    record("intake",
        {
            "events": EVENTS, "batch": BATCH, "replicas": REPLICAS,
            "rows": [{"path": n, "per_second": round(r), "cpu_us_per_event": round(u)}
                     for n, r, u in rows],
            "ratio_to_best_plain": {p: round(r, 3) for p, r in ratios.items()},
            "first_time_customers": round(CUSTOMERS / EVENTS, 3),
            "sealing_cost": {"throughput": round(cost, 3),
                             "cpu_us_per_event": round(1e6 * cpu_cost)},
            "peak_rss_mb": {d.path: round(d.rss_mb) for d in drains},
        }
    )  # fmt: skip


def _sealing_nothing(
    conn: Any, projections: Any = (), keys: SubjectKeys | None = None
) -> PostgresEventStore:
    """The ticketing event store with its keys left out: it stores personal data as is."""
    return PostgresEventStore(conn, projections)


async def _drain_in_process(
    settings: Settings, pool: asyncpg.Pool, tenants: list[str], how: str = "sealed"
) -> Drain:
    # What the drains before left to vacuum is not this drain's work: both in-process drains
    # (sealed, then not) start on a settled database.
    await pool.execute("VACUUM (ANALYZE)")
    runtime = build_runtime(settings)
    await runtime.start()
    try:
        relay = OutboxRelay(pool, runtime.producer, str)  # reads its backlog, publishes nothing
        return await _timed_drain(
            f"ticketing intake, in this process, {how}",
            pool, tenants, relay, time.process_time,
            lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        )  # fmt: skip
    finally:
        await runtime.stop()


async def _drain_in_replicas(
    database_url: str,
    producer: Producer,
    kafka_bootstrap: str,
    pool: asyncpg.Pool,
    tenants: list[str],
) -> Drain:
    """Start the replicas, let their group settle, then publish and drain."""
    group = f"bench-replicas-{uuid.uuid4().hex[:8]}"
    await start_group_at_end(kafka_bootstrap, INTAKE_TOPIC, group)
    quiet = {"SLA_GROUP_ID": f"bench-sla-{group}", "DIRECTORY_GROUP_ID": f"bench-dir-{group}"}
    await start_group_at_end(kafka_bootstrap, SLA_TOPIC, quiet["SLA_GROUP_ID"])
    await start_group_at_end(kafka_bootstrap, DIRECTORY_SYNC_TOPIC, quiet["DIRECTORY_GROUP_ID"])
    logs = REPO / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    env = {
        "INTAKE_GROUP_ID": group, "CONSUMER_BATCH_SIZE": str(BATCH),
        **quiet,
        "OUTBOX_RELAY_SHARDS": str(REPLICAS), "LOG_LEVEL": "WARNING",
        "CONSUMER_BATCH_TIMEOUT_MS": "100", "OUTBOX_POLL_INTERVAL_S": "1.0",
    }  # fmt: skip
    replicas = [
        ServiceProcess(database_url, kafka_bootstrap, logs / f"replica-{i}.log", env=env)
        for i in range(REPLICAS)
    ]
    for replica in replicas:
        replica.start()
    try:
        for replica in replicas:
            await replica.wait_ready()
        await group_settled(kafka_bootstrap, group, REPLICAS)
        await _publish(producer, EVENTS, tenants)
        pids = [r.process.pid for r in replicas if r.process is not None]
        relay = OutboxRelay(pool, producer, str, shard=Shard(0, REPLICAS))  # for its backlog
        return await _timed_drain(
            f"ticketing intake, {REPLICAS} replicas",
            pool, tenants, relay, lambda: sum(cpu_s(pid) for pid in pids),
            lambda: max(rss_mb(pid, "VmHWM") for pid in pids),
        )  # fmt: skip
    finally:
        for replica in replicas:
            replica.stop()


async def _timed_drain(
    path: str,
    pool: asyncpg.Pool,
    tenants: list[str],
    relay: OutboxRelay,
    cpu: Callable[[], float],
    rss_mb: Callable[[], float],
) -> Drain:
    """Wait for the first ticket, then time until every one is opened and published."""
    first = await _eventually(lambda: _opened(pool, tenants))
    cpu_before, started = cpu(), time.perf_counter()
    opened_s = published_s = 0.0
    while not published_s:
        await asyncio.sleep(0.05)
        if not opened_s and await _opened(pool, tenants) >= EVENTS:
            opened_s = time.perf_counter() - started
        if opened_s and await relay.backlog() == 0:
            published_s = time.perf_counter() - started
    drained = Drain(path, EVENTS - first, opened_s, published_s, cpu() - cpu_before, rss_mb())
    assert await _opened(pool, tenants) == EVENTS  # every submission opened one ticket
    return drained


async def _eventually(count: Callable[[], Awaitable[int]]) -> int:
    found = 0
    while not found:
        await asyncio.sleep(0.01)
        found = await count()
    return found


async def _opened(pool: asyncpg.Pool, tenants: list[str]) -> int:
    count: int = await pool.fetchval(
        "SELECT count(*) FROM events WHERE event_type = 'TicketOpened' AND tenant_id = ANY($1)",
        tenants,
    )
    return count
