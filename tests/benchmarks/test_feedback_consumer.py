"""The feedback service's consumer of ticket events, measured alone, against the real Kafka
and PostgreSQL.

BENCH_FEEDBACK_EVENTS ticket events (default 50,000: tickets opened, answered, assigned,
solved) wait on a topic of their own; the feedback runtime's consumers (nothing else: no
relay, no timers) fold them in this process, beside the plain aiokafka + asyncpg pipeline
doing the same writes (support/plain_feedback_pipeline.py) with one and three batches in
flight; then as many events again are applied by BENCH_REPLICAS (default 2) processes of the
service. Figures are printed and written as JSON under .local/bench/, not asserted; that
every ticket was folded and got its survey timer is.
"""

import os
import resource
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from pydantic import SecretStr

from feedback.bootstrap import build_runtime
from feedback.config import Settings
from feedback.handlers import INVITE
from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    Event,
    EventEnvelope,
    Priority,
    Requester,
    ResponseSent,
    TicketAssigned,
    TicketOpened,
    TicketSolved,
    TicketType,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.kafka import OutgoingMessage, Producer, TopicSpec, ensure_topics
from helpdesk_runtime.settings import Part

from support.bench import record, service_processes, until
from support.fixtures import start_group_at_end
from support.plain_feedback_pipeline import SETUP, apply_ticket_events
from support.plain_pipeline import PlainRun, run_plain
from support.proc import cpu_s

EVENTS = int(os.environ.get("BENCH_FEEDBACK_EVENTS", "50000"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
PARTITIONS = 24
TENANTS = 20
LIFE = 4
AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


def _life(ticket: uuid.UUID, number: int, tenant: str, at: datetime) -> list[EventEnvelope[Any]]:
    payloads: list[Event] = [
        TicketOpened(number=number, subject="Invoice wrong", description="Charged twice.",
                     requester=Requester(customer_id=f"c-{number % 5000}", language="ru"),
                     priority=Priority.NORMAL, channel=Channel.EMAIL, type=TicketType.QUESTION,
                     opened_by=AGENT),
        TicketAssigned(assignee_id="a-1", group_id="billing", assigned_by=AGENT),
        ResponseSent(message_id=uuid.uuid4(), agent_id="a-1", body="Refunded.",
                     channel=Channel.EMAIL),
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
    for t in range(n // LIFE):
        for e in _life(uuid.uuid4(), t + 1, f"bench{t % TENANTS}", start):
            events.append(OutgoingMessage(topic, e.to_json(), kafka_key(e), kafka_headers(e)))
        if len(events) >= 5000:
            await producer.send_many(events)
            events = []
    await producer.send_many(events)


async def test_the_consumer_folds_a_spike_of_ticket_events(
    feedback_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    run = uuid.uuid4().hex[:8]
    topic, plain_out = f"bench.tickets.{run}", f"bench.plain.{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS), TopicSpec(plain_out, 3)])
    groups = {n: f"plain-feedback-{n}-{run}" for n in (1, 3)} | {0: f"feedback-{run}"}
    for group in groups.values():
        await start_group_at_end(kafka_bootstrap, topic, group)
    total = EVENTS // LIFE * LIFE
    await _publish(producer, topic, total)

    pool = await create_pool(feedback_database_url, min_size=4, max_size=8)
    try:
        plain = {}
        for n in (1, 3):
            plain[n] = await run_plain(
                pool, kafka_bootstrap, topic, plain_out, total, n, groups[n],
                apply=apply_ticket_events, setup=SETUP,
            )  # fmt: skip
        settings = Settings(
            database_url=SecretStr(feedback_database_url), kafka_bootstrap_servers=kafka_bootstrap,
            consumer_batch_size=BATCH, log_level="WARNING", log_format="console",
            tickets_topic=topic, tickets_group_id=groups[0],
            # The other topics it reads: of this run's own (empty), not the shared ones.
            received_topic=f"bench.received.{run}", directory_topic=f"bench.directory.{run}",
            received_group_id=f"feedback-r-{run}", directory_group_id=f"feedback-d-{run}",
            parts=frozenset({Part.CONSUMERS}),
        )  # fmt: skip
        consumer = build_runtime(settings)
        await consumer.start()
        try:
            applied = await _drain(pool, groups[0], total)
        finally:
            await consumer.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        folded = await pool.fetchval("SELECT count(*) FROM tickets WHERE status = 'solved'")
        timers = await pool.fetchval("SELECT count(*) FROM timers WHERE kind = $1", INVITE)
        assert folded == timers == total // LIFE
        replicas = await _drain_in_replicas(feedback_database_url, kafka_bootstrap, producer,
                                            pool, run)  # fmt: skip
    finally:
        await pool.close()

    best = max(r.per_second for r in plain.values())
    rows = [
        *((f"plain aiokafka + asyncpg, {n} in flight", r.per_second, r.cpu_us)
          for n, r in plain.items()),
        ("feedback consumer alone, in this process", applied.per_second, applied.cpu_us),
        *([(f"feedback consumer, {REPLICAS} processes", replicas.per_second, replicas.cpu_us)]
          if replicas else []),
    ]  # fmt: skip
    table = "\n".join(f"  {name:<46} {rate:9,.0f}/s {us:6.0f} µs/event" for name, rate, us in rows)
    print(
        f"\nfeedback consumer, {total:,} ticket events, batches of {BATCH}:\n{table}\n"
        f"  consumer alone / best plain: {applied.per_second / best:.2f}\n"
        + (f"  {REPLICAS} processes / best plain: {replicas.per_second / best:.2f}\n"
           if replicas else "")
        + f"  peak RSS of this process: {rss:.0f} MB"
    )  # fmt: skip
    record("feedback-consumer", {
        "events": total, "batch": BATCH,
        "rows": [{"path": n, "per_second": round(r), "cpu_us_per_event": round(u)}
                 for n, r, u in rows],
        "ratio_to_best_plain": round(applied.per_second / best, 3), "peak_rss_mb": round(rss),
        "replicas": REPLICAS,
        "replicas_ratio_to_best_plain": round(replicas.per_second / best, 3) if replicas else None,
    })  # fmt: skip


async def _applied(pool: asyncpg.Pool, group: str) -> int:
    found: int = await pool.fetchval("SELECT count(*) FROM inbox WHERE consumer = $1", group)
    return found


async def _drain(pool: asyncpg.Pool, group: str, total: int) -> PlainRun:
    """Timed from the first applied batch (joining the group is not the path measured)."""
    await until(lambda: _applied(pool, group), lambda n: n > 0)
    first = await _applied(pool, group)
    cpu, started = time.process_time(), time.perf_counter()
    await until(lambda: _applied(pool, group), lambda n: n >= total)
    return PlainRun(total - first, time.perf_counter() - started, time.process_time() - cpu)


async def _drain_in_replicas(
    database_url: str, kafka_bootstrap: str, producer: Producer, pool: asyncpg.Pool, run: str
) -> PlainRun | None:
    """As many events again, on a topic of their own, folded by REPLICAS processes of the
    service (`python -m feedback`, consumers only): how the consumer scales out."""
    if not REPLICAS:
        return None
    topic, group = f"bench.tickets.r.{run}", f"feedback-replicas-{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS)])
    await start_group_at_end(kafka_bootstrap, topic, group)
    env = {
        "TICKETS_TOPIC": topic, "TICKETS_GROUP_ID": group, "PARTS": "consumers",
        "RECEIVED_GROUP_ID": f"{group}-r", "DIRECTORY_GROUP_ID": f"{group}-d",
        "RECEIVED_TOPIC": f"bench.received.{run}", "DIRECTORY_TOPIC": f"bench.directory.{run}",
        "CONSUMER_BATCH_SIZE": str(BATCH), "LOG_LEVEL": "WARNING",
        "CONSUMER_BATCH_TIMEOUT_MS": "100",
    }  # fmt: skip
    async with service_processes("feedback", REPLICAS, database_url, kafka_bootstrap, env,
                                 "feedback-replica", group=group) as pids:  # fmt: skip
        total = EVENTS // LIFE * LIFE
        await _publish(producer, topic, total)
        await until(lambda: _applied(pool, group), lambda n: n > 0)
        first = await _applied(pool, group)
        cpu, started = sum(cpu_s(p) for p in pids), time.perf_counter()
        await until(lambda: _applied(pool, group), lambda n: n >= total)
        return PlainRun(
            total - first, time.perf_counter() - started, sum(cpu_s(p) for p in pids) - cpu
        )
