"""The SLA service's two hot paths, against the real Kafka and PostgreSQL.

1. The consumer, measured alone: BENCH_SLA_EVENTS ticket events (default 50,000: tickets
   opened, answered, set pending, reopened and solved, under a business-hours policy)
   waiting on a topic of their own, applied by the SLA runtime in this process with its
   relay off (until every event is in its input log), beside the plain aiokafka + asyncpg
   pipeline doing the same writes (support/plain_sla_pipeline.py) with one and three
   batches in flight; then its relay alone publishes the SLA events it wrote; then as many
   events again are applied by BENCH_REPLICAS (default 2) processes of the service; then,
   in one process, untraced, tracing every trace and tracing one in ten, its spans
   exported over OTLP/HTTP to a collector stand-in in a process of its own: what traces cost.
2. The month-start cluster of deadlines: BENCH_SLA_DUE (default 100,000) running clocks
   due in the same minute among BENCH_SLA_WAITING (default 1,000,000) clocks with timers
   far in the future; one watermark passes the minute, and the time until every breach is
   published is measured.

Run with `make bench`; it prints a table and writes it as JSON under .local/bench/.
Figures are not asserted; that every event was applied and every breach published once is.
"""

import asyncio
import json
import os
import resource
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from pydantic import SecretStr

from helpdesk_contracts import (
    PLATFORM_TENANT,
    Actor,
    ActorKind,
    Channel,
    Event,
    EventEnvelope,
    Priority,
    Requester,
    ResponseSent,
    TicketOpened,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
    Watermark,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.kafka import OutgoingMessage, Producer, TopicSpec, ensure_topics
from helpdesk_runtime.settings import Part
from sla.bootstrap import build_runtime
from sla.config import Settings
from sla.configuration import Kind, save
from sla.store import PARTITIONS, partition_of

from support.bench import record, service_processes, until
from support.fixtures import start_group_at_end, topic_size
from support.plain_pipeline import PlainRun, run_plain
from support.plain_sla_pipeline import SETUP, apply_ticket_events
from support.proc import cpu_s
from support.service import free_port

EVENTS = int(os.environ.get("BENCH_SLA_EVENTS", "50000"))
DUE = int(os.environ.get("BENCH_SLA_DUE", "100000"))
WAITING = int(os.environ.get("BENCH_SLA_WAITING", "1000000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
TENANTS = 20
AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


def _life(ticket: uuid.UUID, number: int, tenant: str, at: datetime) -> list[EventEnvelope[Any]]:
    payloads: list[Event] = [
        TicketOpened(number=number, subject="Invoice wrong", description="Charged twice.",
                     requester=Requester(customer_id=f"c-{number}"), priority=Priority.NORMAL,
                     channel=Channel.EMAIL, type=TicketType.QUESTION, opened_by=AGENT),
        ResponseSent(message_id=uuid.uuid4(), agent_id="a-1", body="Which invoice?",
                     channel=Channel.EMAIL),
        TicketStatusChanged(previous=TicketStatus.OPEN, status=TicketStatus.PENDING,
                            changed_by=AGENT),
        TicketStatusChanged(previous=TicketStatus.PENDING, status=TicketStatus.OPEN,
                            changed_by=AGENT),
        TicketSolved(solved_by=AGENT),
    ]  # fmt: skip
    return [
        EventEnvelope.new(p, tenant_id=tenant, producer="ticketing", aggregate_id=ticket,
                          aggregate_version=v, occurred_at=at + timedelta(minutes=10 * v))
        for v, p in enumerate(payloads, start=1)
    ]  # fmt: skip


async def _publish(producer: Producer, topic: str, n: int) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    events: list[OutgoingMessage] = []
    for t in range(n // 5):
        for e in _life(uuid.uuid4(), t + 1, f"bench{t % TENANTS}", start):
            events.append(OutgoingMessage(topic, e.to_json(), kafka_key(e), kafka_headers(e)))
        if len(events) >= 5000:
            await producer.send_many(events)
            events = []
    await producer.send_many(events)


def _settings(database_url: str, kafka_bootstrap: str, **more: Any) -> Settings:
    return Settings(
        database_url=SecretStr(database_url), kafka_bootstrap_servers=kafka_bootstrap,
        consumer_batch_size=BATCH, log_level="WARNING", log_format="console", **more,
    )  # fmt: skip


async def test_the_consumer_applies_a_spike_of_ticket_events(
    sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    run = uuid.uuid4().hex[:8]
    topic, out, plain_out = f"bench.tickets.{run}", f"bench.sla.{run}", f"bench.plain.{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, PARTITIONS) for t in (topic, out)]
                        + [TopicSpec(plain_out, 12)])  # fmt: skip
    groups = {n: f"plain-sla-{n}-{run}" for n in (1, 3)} | {0: f"sla-{run}"}
    for group in groups.values():
        await start_group_at_end(kafka_bootstrap, topic, group)
    total = EVENTS // 5 * 5
    await _publish(producer, topic, total)

    pool = await create_pool(sla_database_url, min_size=4, max_size=8)
    try:
        plain = {}
        for n in (1, 3):
            plain[n] = await run_plain(
                pool, kafka_bootstrap, topic, plain_out, total, n, groups[n],
                apply=apply_ticket_events, setup=SETUP,
            )  # fmt: skip
        settings = _settings(sla_database_url, kafka_bootstrap, tickets_topic=topic,
                             sla_topic=out, tickets_group_id=groups[0])  # fmt: skip
        await _configure(pool)
        # The consumer alone (its relay off), then the relay alone publishing what it wrote.
        consumer = build_runtime(settings.model_copy(update={"parts": frozenset({Part.CONSUMERS})}))
        await consumer.start()
        try:
            applied = await _drain(pool, total)
        finally:
            await consumer.stop()
        relay = build_runtime(settings.model_copy(update={"parts": frozenset({Part.JOBS})}))
        waiting = await pool.fetchval("SELECT count(*) FROM outbox")
        await relay.start()
        try:
            published = await _published(pool, waiting)
        finally:
            await relay.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        produced = await topic_size(kafka_bootstrap, out)
        replicas = await _drain_in_replicas(sla_database_url, kafka_bootstrap, producer, pool, run)
        traced = await _tracing_costs(sla_database_url, kafka_bootstrap, producer, pool, run)
    finally:
        await pool.close()

    best = max(r.per_second for r in plain.values())
    rows = [
        *((f"plain aiokafka + asyncpg, {n} in flight", r.per_second, r.cpu_us)
          for n, r in plain.items()),
        ("SLA consumer alone, in this process", applied.per_second, applied.cpu_us),
        ("its relay alone, SLA events published", published.per_second, published.cpu_us),
        *([(f"SLA consumer alone, {REPLICAS} replicas", replicas.per_second, replicas.cpu_us)]
          if replicas else []),
        *((f"1 process, {label} ({spans:,} spans)", r.per_second, r.cpu_us)
          for label, r, spans in traced),
    ]  # fmt: skip
    table = "\n".join(f"  {name:<46} {rate:9,.0f}/s {us:6.0f} µs/event" for name, rate, us in rows)
    print(
        f"\nSLA consumer, {total:,} ticket events, batches of {BATCH}, business-hours policy:"
        f"\n{table}\n  SLA consumer alone / best plain: {applied.per_second / best:.2f}\n"
        + (
            f"  {REPLICAS} replicas / best plain: {replicas.per_second / best:.2f}\n"
            if replicas
            else ""
        )
        + f"  SLA events published: {produced:,}; peak RSS of this process: {rss:.0f} MB"
    )
    record("sla-consumer", {
        "events": total, "batch": BATCH, "sla_events_published": produced,
        "rows": [{"path": n, "per_second": round(r), "cpu_us_per_event": round(u)}
                 for n, r, u in rows],
        "ratio_to_best_plain": round(applied.per_second / best, 3), "peak_rss_mb": round(rss),
        "replicas": REPLICAS,
        "replicas_ratio_to_best_plain": round(replicas.per_second / best, 3) if replicas else None,
        "tracing": [{"run": label, "per_second": round(r.per_second),
                     "cpu_us_per_event": round(r.cpu_us), "spans_exported": spans}
                    for label, r, spans in traced],
    })  # fmt: skip


async def _configure(pool: asyncpg.Pool) -> None:
    """Every tenant on a business-hours policy: the calendar arithmetic is on the path."""
    week = [{"start": "09:00", "end": "13:00"}, {"start": "14:00", "end": "18:00"}]
    calendar = {"name": "Office", "timezone": "Europe/Moscow", "holidays": {"country": "RU"},
                "week": dict.fromkeys(("mon", "tue", "wed", "thu", "fri"), week)}  # fmt: skip
    policy = {"name": "Standard", "calendar_id": "office", "targets": {"any": {
        "first_response": {"minutes": 240, "business_hours": True},
        "resolution": {"minutes": 3 * 8 * 60, "business_hours": True}}}}  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        for t in range(TENANTS):
            await save(conn, Kind.CALENDAR, f"bench{t}", "office", calendar, "bench")
            await save(conn, Kind.POLICY, f"bench{t}", "standard", policy, "bench")


async def _drain_in_replicas(
    database_url: str, kafka_bootstrap: str, producer: Producer, pool: asyncpg.Pool, run: str
) -> PlainRun | None:
    """As many events again, on a topic of their own, applied by REPLICAS processes of the
    service (`python -m sla`, consumers only): how the consumer scales out."""
    if not REPLICAS:
        return None
    return await _drain_in_processes(
        database_url, kafka_bootstrap, producer, pool, f"{run}-r", REPLICAS, {}
    )


async def _tracing_costs(
    database_url: str, kafka_bootstrap: str, producer: Producer, pool: asyncpg.Pool, run: str
) -> list[tuple[str, PlainRun, int]]:
    """As many events again, each time on a topic of its own, applied by one process of the
    service: untraced, then recording every trace, then a tenth of them, exporting over
    OTLP/HTTP to a collector stand-in in a process of its own; (label, run, spans exported)."""
    port = free_port()
    sink = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).parents[1] / "support" / "otlp_sink.py"), str(port)
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=endpoint) as client:
            await until(lambda: _answers(client), bool)
            found = []
            for n, (label, ratio) in enumerate((("untraced", None),
                                                ("traced, every trace", "1.0"),
                                                ("traced, 1 trace in 10", "0.1"))):  # fmt: skip
                env = {} if ratio is None else {
                    "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_TRACES_SAMPLER_ARG": ratio,
                }  # fmt: skip
                before = int((await client.get("/count")).text)
                drained = await _drain_in_processes(
                    database_url, kafka_bootstrap, producer, pool, f"{run}-t{n}", 1, env
                )
                # The processes flushed their spans as they stopped.
                found.append((label, drained, int((await client.get("/count")).text) - before))
            return found
    finally:
        sink.terminate()
        await sink.wait()


async def _answers(client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get("/count")).status_code == 200
    except httpx.TransportError:
        return False


async def _drain_in_processes(
    database_url: str, kafka_bootstrap: str, producer: Producer, pool: asyncpg.Pool, run: str,
    count: int, env: dict[str, str],
) -> PlainRun:  # fmt: skip
    """As many events again, on a topic of their own, applied by `count` processes of the
    service (`python -m sla`, consumers only, with `env`); timed from the first batch."""
    topic, group = f"bench.tickets.{run}", f"sla-{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS)])
    await start_group_at_end(kafka_bootstrap, topic, group)
    env = {
        "TICKETS_TOPIC": topic, "SLA_TOPIC": f"bench.sla.{run}", "TICKETS_GROUP_ID": group,
        "PARTS": "consumers", "CONSUMER_BATCH_SIZE": str(BATCH), "LOG_LEVEL": "WARNING",
        "CONSUMER_BATCH_TIMEOUT_MS": "100", **env,
    }  # fmt: skip
    async with service_processes("sla", count, database_url, kafka_bootstrap, env,
                                 f"sla-{run}", group=group) as pids:  # fmt: skip
        before = await _applied(pool)
        total = EVENTS // 5 * 5
        await _publish(producer, topic, total)
        await until(lambda: _applied(pool), lambda n: n > before)
        first = await _applied(pool) - before
        cpu, started = sum(cpu_s(p) for p in pids), time.perf_counter()
        await until(lambda: _applied(pool), lambda n: n - before >= total)
        return PlainRun(
            total - first, time.perf_counter() - started, sum(cpu_s(p) for p in pids) - cpu
        )


async def _drain(pool: asyncpg.Pool, total: int) -> PlainRun:
    """Timed from the first applied batch (joining the group is not the path measured)."""
    await until(lambda: _applied(pool), lambda n: n > 0)
    first = await _applied(pool)
    cpu, started = time.process_time(), time.perf_counter()
    await until(lambda: _applied(pool), lambda n: n >= total)
    return PlainRun(total - first, time.perf_counter() - started, time.process_time() - cpu)


async def _published(pool: asyncpg.Pool, waiting: int) -> PlainRun:
    """Timed from the relay's first pass until the outbox is empty."""
    await until(lambda: pool.fetchval("SELECT count(*) FROM outbox"), lambda n: n < waiting)
    left = await pool.fetchval("SELECT count(*) FROM outbox")
    cpu, started = time.process_time(), time.perf_counter()
    await until(lambda: pool.fetchval("SELECT count(*) FROM outbox"), lambda n: n == 0)
    return PlainRun(left, time.perf_counter() - started, time.process_time() - cpu)


async def _applied(pool: asyncpg.Pool) -> int:
    found: int = await pool.fetchval("SELECT count(*) FROM ticket_events")
    return found


async def test_a_cluster_of_deadlines_is_breached_within_seconds_of_the_watermark(
    sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    run = uuid.uuid4().hex[:8]
    topic, out = f"bench.tickets.{run}", f"bench.sla.{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(t, PARTITIONS) for t in (topic, out)])
    group = f"sla-due-{run}"
    await start_group_at_end(kafka_bootstrap, topic, group)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    seeding = time.perf_counter()
    await _seed(sla_database_url, minute, DUE, WAITING)
    seeded_s = time.perf_counter() - seeding

    settings = _settings(sla_database_url, kafka_bootstrap, tickets_topic=topic,
                         sla_topic=out, tickets_group_id=group)  # fmt: skip
    pool = await create_pool(sla_database_url, min_size=1, max_size=2)
    try:
        runtime = build_runtime(settings)
        await runtime.start()
        try:
            await runtime.connected()
            one = await _breach_cluster(pool, producer, kafka_bootstrap, topic, out, minute)
        finally:
            await runtime.stop()
        breached = await pool.fetchval("SELECT count(*) FROM clocks WHERE breached_at IS NOT NULL")
        assert breached == DUE  # each once, and none of the clocks waiting for later
        many = None
        if REPLICAS > 1:  # as many again, due a minute later, for REPLICAS processes
            later = minute + timedelta(minutes=2)
            await _seed(sla_database_url, later, DUE, 0)
            many = await _in_replicas(sla_database_url, kafka_bootstrap, group, topic, out,
                                      lambda: _breach_cluster(pool, producer, kafka_bootstrap,
                                                              topic, out, later))  # fmt: skip
    finally:
        await pool.close()
    print(f"\ncluster of deadlines: {DUE:,} due in one minute among {WAITING:,} waiting"
          f" (seeded in {seeded_s:.0f} s), from the watermark passing them:\n"
          f"  one process: all marked breached {one[0]:.1f} s, all published {one[1]:.1f} s\n"
          + (f"  {REPLICAS} processes: all marked breached {many[0]:.1f} s, all published"
             f" {many[1]:.1f} s\n" if many else ""))  # fmt: skip
    record("sla-deadlines", {
        "due": DUE, "waiting": WAITING, "marked_s": round(one[0], 2),
        "published_s": round(one[1], 2), "replicas": REPLICAS,
        "replicas_published_s": round(many[1], 2) if many else None,
    })  # fmt: skip


async def _breach_cluster(
    pool: asyncpg.Pool, producer: Producer, kafka_bootstrap: str, topic: str, out: str,
    minute: datetime,
) -> tuple[float, float]:  # fmt: skip
    """Send the watermark that passes `minute` to every partition: (seconds until all its
    clocks are marked breached, until all their breaches are published)."""
    count = "SELECT count(*) FROM clocks WHERE breached_at IS NOT NULL"
    marked, published = await pool.fetchval(count), await topic_size(kafka_bootstrap, out)
    marks = [
        EventEnvelope.new(
            Watermark(partition=p, partitions=PARTITIONS, up_to=minute + timedelta(minutes=1)),
            tenant_id=PLATFORM_TENANT, producer="bench",
        )
        for p in range(PARTITIONS)
    ]  # fmt: skip
    sent = time.perf_counter()
    await producer.send_many([
        OutgoingMessage(topic, m.to_json(), None, kafka_headers(m), partition=m.payload.partition)
        for m in marks
    ])  # fmt: skip
    await until(lambda: pool.fetchval(count), lambda n: n - marked >= DUE)
    marked_s = time.perf_counter() - sent
    await until(lambda: topic_size(kafka_bootstrap, out), lambda n: n - published >= DUE)
    return marked_s, time.perf_counter() - sent


async def _in_replicas(
    database_url: str, kafka_bootstrap: str, group: str, topic: str, out: str,
    measure: Callable[[], Awaitable[tuple[float, float]]],
) -> tuple[float, float]:  # fmt: skip
    """`measure` with REPLICAS processes of the service (consumers and jobs, the relay in
    as many shards) instead of this one."""
    env = {
        "TICKETS_TOPIC": topic, "SLA_TOPIC": out, "TICKETS_GROUP_ID": group,
        "PARTS": "consumers,jobs", "OUTBOX_RELAY_SHARDS": str(REPLICAS), "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    async with service_processes("sla", REPLICAS, database_url, kafka_bootstrap, env, "sla-due",
                                 group=group):  # fmt: skip
        return await measure()


async def _seed(database_url: str, minute: datetime, due_n: int, waiting: int) -> None:
    """`due_n` running clocks due within `minute`, and `waiting` more due next year with
    their timers, written with COPY as if consumed (the path measured starts at the
    watermark)."""
    conn = await asyncpg.connect(database_url)
    try:
        for start in range(0, due_n + waiting, 100_000):
            n = min(100_000, due_n + waiting - start)
            tickets = [uuid.uuid4() for _ in range(n)]
            due = [minute + timedelta(seconds=(start + i) % 60) if start + i < due_n
                   else minute + timedelta(days=365) for i in range(n)]  # fmt: skip
            await conn.copy_records_to_table("sla_tickets", columns=(
                "ticket_id", "tenant_id", "number", "priority", "channel", "type", "tags",
                "status", "opened_at", "version", "cycles"), records=[
                (t, f"bench{i % TENANTS}", start + i + 1, "normal", "email", "question", "[]",
                 "open", d - timedelta(hours=24), 1, json.dumps({"first_response": 1}))
                for i, (t, d) in enumerate(zip(tickets, due, strict=True))])  # fmt: skip
            await conn.copy_records_to_table("clocks", columns=(
                "clock_id", "tenant_id", "ticket_id", "partition", "metric", "cycle", "state",
                "policy_id", "policy_version", "business_hours", "target", "thresholds",
                "pause_on", "started_at", "started_by", "elapsed", "since", "deadline",
                "warned", "pauses"), records=[
                (uuid.uuid4(), f"bench{i % TENANTS}", t, partition_of(t), "first_response", 1,
                 "running", "default", 1, False, timedelta(hours=24), "[0.75, 0.9]",
                 '["on_hold", "pending"]', d - timedelta(hours=24), uuid.uuid4(),
                 timedelta(0), d - timedelta(hours=24), d, "[0.75, 0.9]", "[]")
                for i, (t, d) in enumerate(zip(tickets, due, strict=True))])  # fmt: skip
            await conn.copy_records_to_table("timers", columns=(
                "kind", "key", "tenant_id", "due_at", "payload"), records=[
                ("sla-alarm", str(t), f"bench{i % TENANTS}", d - timedelta(hours=1), "{}")
                for i, (t, d) in enumerate(zip(tickets, due, strict=True)) if start + i >= due_n
            ])  # fmt: skip
        # As in steady state: autovacuum of the rows just loaded would otherwise run during
        # the measurement, on the same two cores.
        await conn.execute("VACUUM (ANALYZE) sla_tickets, clocks, timers")
    finally:
        await conn.close()
