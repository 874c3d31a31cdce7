"""The notifications service's hot paths, against the real Kafka, PostgreSQL and SMTP.

1. Deciding, the consumer measured alone: BENCH_NOTIFY_EVENTS (default 50,000) ticket events
   (per ticket: opened, assigned, the customer's reply, an agent's reply, solved; one
   delivery each) waiting on a topic of their own, applied by the service's runtime in this
   process with its timers off, until every delivery is recorded; beside a plain aiokafka +
   asyncpg pipeline doing the same writes (inbox, tickets, deliveries, timers) with one and
   three batches in flight; then as many events again decided by BENCH_REPLICAS (default
   2) processes of the service, consumers only: how deciding scales out.
2. The month-start drain: BENCH_NOTIFY_TICKETS (default 100,000) tickets opened and as many
   survey invitations waiting at once, the service as a process of its own, mail to an SMTP
   server in another process (support/smtp_sink.py). Measured: from each TicketOpened to
   the server accepting its acknowledgement (p50, p95, max), and when the last survey went.
   BENCH_SMTP_OUTAGE_S (default 10) seconds into the acknowledgements the server is killed
   and started again after that long; every message must be accepted exactly once. The
   service runs as BENCH_DRAIN_REPLICAS (default 2) processes.

Run with `make bench`; it prints a table and writes it as JSON under .local/bench/.
Figures are not asserted; that nothing is lost or sent twice is.
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import SecretStr

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerReplied,
    Event,
    EventEnvelope,
    Priority,
    Requester,
    ResponseSent,
    SurveyKind,
    SurveyRequested,
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
from helpdesk_runtime.tenants import replicate
from notifications.bootstrap import build_runtime
from notifications.config import Settings

from support.bench import record, service_processes, until
from support.chaos import ServiceProcess, eventually
from support.fixtures import start_group_at_end
from support.plain_pipeline import Outgoing, PlainRun, run_plain
from support.proc import cpu_s
from support.servers import REPO
from support.service import free_port, tenant_record

EVENTS = int(os.environ.get("BENCH_NOTIFY_EVENTS", "50000"))
TICKETS = int(os.environ.get("BENCH_NOTIFY_TICKETS", "100000"))
OUTAGE_S = float(os.environ.get("BENCH_SMTP_OUTAGE_S", "10"))
BATCH = int(os.environ.get("BENCH_BATCH", "500"))
REPLICAS = int(os.environ.get("BENCH_REPLICAS", "2"))
DRAIN_REPLICAS = max(1, int(os.environ.get("BENCH_DRAIN_REPLICAS", "2")))
TENANTS = 20
PARTITIONS = 24
AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


def _ticket(number: int, tenant: str, at: datetime) -> list[EventEnvelope[Any]]:
    ticket = uuid.uuid4()
    payloads: list[Event] = [
        TicketOpened(number=number, subject="Invoice wrong", description="Charged twice.",
                     requester=Requester(customer_id=f"c-{number}",
                                         email=f"c{number}@example.com"),
                     priority=Priority.NORMAL, channel=Channel.EMAIL, type=TicketType.QUESTION,
                     opened_by=AGENT),
        TicketAssigned(assignee_id=f"a-{number % 50 + 2}", assigned_by=AGENT),
        CustomerReplied(message_id=uuid.uuid4(), customer_id=f"c-{number}",
                        body="It is invoice 4417.", channel=Channel.EMAIL),
        ResponseSent(message_id=uuid.uuid4(), agent_id="a-1", body="Refunded.",
                     channel=Channel.EMAIL),
        TicketSolved(solved_by=AGENT),
    ]  # fmt: skip
    return [
        EventEnvelope.new(p, tenant_id=tenant, producer="ticketing", aggregate_id=ticket,
                          aggregate_version=v, occurred_at=at)
        for v, p in enumerate(payloads, start=1)
    ]  # fmt: skip


async def _send(producer: Producer, topic: str, envelopes: list[EventEnvelope[Any]]) -> None:
    for start in range(0, len(envelopes), 5000):
        await producer.send_many([
            OutgoingMessage(topic, e.to_json(), kafka_key(e), kafka_headers(e))
            for e in envelopes[start : start + 5000]
        ])  # fmt: skip


def _settings(database_url: str, kafka_bootstrap: str, **more: Any) -> Settings:
    return Settings(
        database_url=SecretStr(database_url), kafka_bootstrap_servers=kafka_bootstrap,
        consumer_batch_size=BATCH, log_level="WARNING", log_format="console",
        inbound_smtp_port=0, **more,
    )  # fmt: skip


@pytest.mark.timeout(1800)
async def test_the_consumer_decides_a_spike_of_ticket_events(
    notifications_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    run = uuid.uuid4().hex[:8]
    topic, plain_out = f"bench.ntickets.{run}", f"bench.nplain.{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS), TopicSpec(plain_out, 3)])
    groups = {n: f"plain-notify-{n}-{run}" for n in (1, 3)} | {
        -n: f"notify-{n}-{run}" for n in (1, 3)
    }
    for group in groups.values():
        await start_group_at_end(kafka_bootstrap, topic, group)
    tickets = EVENTS // 5
    now = datetime.now(UTC)
    await _send(producer, topic, [
        e for t in range(tickets) for e in _ticket(t + 1, f"bench{t % TENANTS}", now)
    ])  # fmt: skip
    total = tickets * 5
    pool = await create_pool(notifications_database_url, min_size=4, max_size=8)
    try:
        plain = {}
        for n in (1, 3):
            plain[n] = await run_plain(
                pool, kafka_bootstrap, topic, plain_out, total, n, groups[n],
                apply=_plain_decide, setup=_PLAIN_SETUP,
            )  # fmt: skip
        decided = {}
        for n in (1, 3):  # batches in flight (CONSUMER_CONCURRENCY)
            await pool.execute("TRUNCATE deliveries, tickets, timers")
            settings = _settings(
                notifications_database_url, kafka_bootstrap, tickets_topic=topic,
                tickets_group_id=groups[-n], consumer_concurrency=n,
                parts=frozenset({Part.CONSUMERS}),
            )  # fmt: skip
            runtime = build_runtime(settings)
            await runtime.start()
            try:
                decided[n] = await _drain(pool, total)
            finally:
                await runtime.stop()
        await pool.execute("TRUNCATE deliveries, tickets, timers")
        replicas = await _decide_in_replicas(
            notifications_database_url, kafka_bootstrap, producer, pool, run, total
        )
    finally:
        await pool.close()
    best = max(r.per_second for r in plain.values())
    rows = [
        *((f"plain aiokafka + asyncpg, {n} in flight", r.per_second, r.cpu_us)
          for n, r in plain.items()),
        *((f"notifications consumer alone, {n} in flight", r.per_second, r.cpu_us)
          for n, r in decided.items()),
        *([(f"notifications consumer alone, {REPLICAS} replicas", replicas.per_second,
            replicas.cpu_us)] if replicas else []),
    ]  # fmt: skip
    service = max(r.per_second for r in decided.values())
    table = "\n".join(f"  {name:<48} {rate:9,.0f}/s {us:6.0f} µs/event" for name, rate, us in rows)
    print(
        f"\nNotifications, deciding {total:,} ticket events (a delivery each), batches of"
        f" {BATCH}:\n{table}\n  best consumer / best plain: {service / best:.2f}"
        + (f"\n  {REPLICAS} replicas / best plain: {replicas.per_second / best:.2f}"
           if replicas else "")
    )  # fmt: skip
    record("notifications-decide", {
        "events": total, "batch": BATCH,
        "rows": [{"path": n, "per_second": round(r), "cpu_us_per_event": round(u)}
                 for n, r, u in rows],
        "ratio_to_best_plain": round(service / best, 3), "replicas": REPLICAS,
        "replicas_ratio_to_best_plain": round(replicas.per_second / best, 3) if replicas else None,
    })  # fmt: skip


async def _decide_in_replicas(
    database_url: str, kafka_bootstrap: str, producer: Producer, pool: asyncpg.Pool, run: str,
    total: int,
) -> PlainRun | None:  # fmt: skip
    """As many events again, on a topic of their own, decided by REPLICAS processes of the
    service (`python -m notifications`, consumers only)."""
    if not REPLICAS:
        return None
    topic, group = f"bench.ntickets.r.{run}", f"notify-replicas-{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(topic, PARTITIONS)])
    await start_group_at_end(kafka_bootstrap, topic, group)
    env = {
        "TICKETS_TOPIC": topic, "TICKETS_GROUP_ID": group, "PARTS": "consumers",
        "SURVEYS_GROUP_ID": f"{group}-surveys", "SLA_GROUP_ID": f"{group}-sla",
        "FEEDBACK_EVENTS_GROUP_ID": f"{group}-feedback-events",
        # Of this run's own, empty: the shared topic may hold today's alerts of other tests.
        "FEEDBACK_EVENTS_TOPIC": f"{topic}.feedback-events",
        "CONSUMER_BATCH_SIZE": str(BATCH), "LOG_LEVEL": "WARNING", "INBOUND_SMTP_PORT": "0",
        "CONSUMER_BATCH_TIMEOUT_MS": "100",
    }  # fmt: skip
    async with service_processes("notifications", REPLICAS, database_url, kafka_bootstrap,
                                 env, "notifications-decide", group=group,
                                 ready_s=300) as pids:  # fmt: skip
        now = datetime.now(UTC)
        await _send(producer, topic, [
            e for t in range(total // 5) for e in _ticket(t + 1, f"bench{t % TENANTS}", now)
        ])  # fmt: skip
        await until(lambda: _deliveries(pool), lambda n: n > 0)
        first = await _deliveries(pool)
        cpu, started = sum(cpu_s(p) for p in pids), time.perf_counter()
        await until(lambda: _deliveries(pool), lambda n: n >= total)
        return PlainRun(
            total - first, time.perf_counter() - started, sum(cpu_s(p) for p in pids) - cpu
        )


async def _drain(pool: asyncpg.Pool, total: int) -> PlainRun:
    """Timed from the first recorded delivery (joining the group is not the path measured)."""
    await until(lambda: _deliveries(pool), lambda n: n > 0)
    first = await _deliveries(pool)
    cpu, started = time.process_time(), time.perf_counter()
    await until(lambda: _deliveries(pool), lambda n: n >= total)
    return PlainRun(total - first, time.perf_counter() - started, time.process_time() - cpu)


async def _deliveries(pool: asyncpg.Pool) -> int:
    found: int = await pool.fetchval("SELECT count(*) FROM deliveries")
    return found


_PLAIN_SETUP = (
    "CREATE TABLE IF NOT EXISTS plain_deliveries (LIKE deliveries INCLUDING ALL)",
    "CREATE TABLE IF NOT EXISTS plain_tickets (LIKE tickets INCLUDING ALL)",
)


async def _plain_decide(
    pool: asyncpg.Pool, group: str, envelopes: list[dict[str, Any]], suffix: str
) -> Outgoing:
    """The consumer's writes, plainly: inbox rows, the openings, a delivery per event (with
    the event's JSON) and its timer, in one transaction. No pydantic, no rules."""
    tenants = [e["tenant_id"] + suffix for e in envelopes]
    ids = [uuid.UUID(e["event_id"]) for e in envelopes]
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        fresh = {r["event_id"] for r in await conn.fetch(
            "INSERT INTO inbox (consumer, event_id, tenant_id) SELECT $1, i, t"
            " FROM unnest($2::uuid[], $3::text[]) AS x(i, t) ON CONFLICT DO NOTHING"
            " RETURNING event_id", group, ids, tenants)}  # fmt: skip
        todo = [i for i, event_id in enumerate(ids) if event_id in fresh]
        opened = [i for i in todo if envelopes[i]["event_type"] == "TicketOpened"]
        await conn.execute(
            "INSERT INTO plain_tickets (tenant_id, ticket_id, number, requester_id, opening)"
            " SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[],"
            " $5::jsonb[]) ON CONFLICT DO NOTHING",
            [tenants[i] for i in opened], [uuid.UUID(envelopes[i]["aggregate_id"]) for i in opened],
            [envelopes[i]["payload"]["number"] for i in opened],
            [envelopes[i]["payload"]["requester"]["customer_id"] for i in opened],
            [json.dumps(envelopes[i]) for i in opened],
        )  # fmt: skip
        deliveries = [uuid.uuid5(ids[i], "recipient/email") for i in todo]
        await conn.execute(
            "INSERT INTO plain_deliveries (tenant_id, delivery_id, event_id, event_type, event,"
            " ticket_id, recipient, channel, template, lane, transactional, created_at,"
            " scheduled_for) SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[],"
            " $4::text[], $5::jsonb[], $6::uuid[], $7::text[], $8::text[], $9::text[],"
            " $10::text[], $11::boolean[], $12::timestamptz[], $13::timestamptz[])"
            " ON CONFLICT DO NOTHING",
            [tenants[i] for i in todo], deliveries, [ids[i] for i in todo],
            [envelopes[i]["event_type"] for i in todo], [json.dumps(envelopes[i]) for i in todo],
            [uuid.UUID(envelopes[i]["aggregate_id"]) for i in todo], ["customer:c"] * len(todo),
            ["email"] * len(todo), ["t"] * len(todo), ["urgent"] * len(todo),
            [True] * len(todo), [now] * len(todo), [now] * len(todo),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO timers (kind, key, tenant_id, due_at, payload)"
            " SELECT 'plain-deliver', k, t, $3, '{}' FROM unnest($1::text[], $2::text[])"
            " AS x(k, t)", [str(d) for d in deliveries], [tenants[i] for i in todo], now,
        )  # fmt: skip
    return []


@pytest.mark.timeout(3600)
async def test_a_month_start_drain_keeps_acknowledgements_ahead_of_surveys(
    notifications_database_url: str, kafka_bootstrap: str, producer: Producer, tmp_path: Path
) -> None:
    run = uuid.uuid4().hex[:8]
    tickets_topic, surveys_topic = f"bench.dtickets.{run}", f"bench.dsurveys.{run}"
    await ensure_topics(kafka_bootstrap, [TopicSpec(tickets_topic, PARTITIONS),
                                          TopicSpec(surveys_topic, 12)])  # fmt: skip
    group = f"notify-drain-{run}"
    for topic, suffix in ((tickets_topic, "tickets"), (surveys_topic, "surveys")):
        await start_group_at_end(kafka_bootstrap, topic, f"{group}-{suffix}")
    conn = await asyncpg.connect(notifications_database_url)
    try:
        await replicate(conn, [tenant_record(f"bench{t}") for t in range(TENANTS)])
    finally:
        await conn.close()
    sink_port, accepted = free_port(), tmp_path / "accepted.txt"
    sink = _start_sink(sink_port, accepted)
    logs = REPO / ".local" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    services = [ServiceProcess(
        notifications_database_url, kafka_bootstrap, logs / f"notifications-drain-{i}.log",
        module="notifications", env={
            "TICKETS_TOPIC": tickets_topic, "SURVEYS_TOPIC": surveys_topic,
            "SLA_TOPIC": f"bench.dsla.{run}", "TICKETS_GROUP_ID": f"{group}-tickets",
            "SURVEYS_GROUP_ID": f"{group}-surveys", "SLA_GROUP_ID": f"{group}-sla",
            "FEEDBACK_EVENTS_GROUP_ID": f"{group}-feedback-events",
            "FEEDBACK_EVENTS_TOPIC": f"bench.dfeedback.{run}",
            "SMTP_PORT": str(sink_port), "SMTP_CONNECTIONS": "8", "SMTP_TIMEOUT_S": "5",
            "INBOUND_SMTP_PORT": "0", "LOG_LEVEL": "WARNING", "CONSUMER_BATCH_SIZE": str(BATCH),
            "EMAIL_PER_SECOND": "100000", "RETRY_BASE_S": "1", "RETRY_MAX_S": "5",
            "RETRY_ATTEMPTS": "50", "BREAKER_OPEN_S": "2", "TIMER_POLL_INTERVAL_S": "0.2",
        },
    ) for i in range(DRAIN_REPLICAS)]  # fmt: skip
    for service in services:
        service.start()
    try:
        for service in services:
            await service.wait_ready(300)
        pids = [s.process.pid for s in services if s.process is not None]
        now = datetime.now(UTC)
        openings = [_ticket(t + 1, f"bench{t % TENANTS}", now)[0] for t in range(TICKETS)]
        surveys = [_survey(e, now) for e in openings]
        published = time.monotonic()
        await asyncio.gather(_send(producer, tickets_topic, openings),
                             _send(producer, surveys_topic, surveys))  # fmt: skip
        publish_s = time.monotonic() - published
        cpu_before = sum(cpu_s(pid) for pid in pids)

        async def some_acks() -> bool:
            return _lines(accepted) >= TICKETS // 10

        await eventually(some_acks, timeout_s=600)
        sink_cpu = cpu_s(sink.pid)  # the provider's CPU: it shares the machine here
        sink.kill()  # the provider goes away mid-spike
        sink.wait()
        await asyncio.sleep(OUTAGE_S)  # the outage itself: how long the server is away
        sink = _start_sink(sink_port, accepted)

        async def all_accepted() -> bool:
            return _lines(accepted) >= 2 * TICKETS

        await eventually(all_accepted, timeout_s=3600)
        drained_s = time.monotonic() - published
        cpu = sum(cpu_s(pid) for pid in pids) - cpu_before
        sink_cpu += cpu_s(sink.pid)
    finally:
        for service in services:
            service.stop()
        sink.kill()
        sink.wait()

    counts = Counter(line.split()[0] for line in accepted.read_text().splitlines())
    when = {d: float(t) for d, t in (line.split() for line in accepted.read_text().splitlines())}
    pool = await create_pool(notifications_database_url, min_size=1, max_size=2)
    try:
        rows = await pool.fetch(
            "SELECT delivery_id::text AS d, template, state,"
            " (event->>'occurred_at')::timestamptz AS occurred FROM deliveries"
        )
    finally:
        await pool.close()
    acks = [r for r in rows if r["template"] == "ticket_opened"]
    latency = sorted(when[r["d"]] - r["occurred"].timestamp() for r in acks)
    last_survey = max(when[r["d"]] for r in rows if r["template"] == "survey_invitation")
    last_ack = max(when[r["d"]] for r in acks)
    p = {q: latency[min(len(latency) - 1, int(q / 100 * len(latency)))] for q in (50, 95, 100)}
    doubles = sum(n - 1 for n in counts.values() if n > 1)
    print(
        f"\nNotifications, month-start drain: {TICKETS:,} acknowledgements + {TICKETS:,} survey"
        f" invitations, published in {publish_s:.1f} s, SMTP server away {OUTAGE_S:.0f} s,"
        f" {DRAIN_REPLICAS} service process(es):\n"
        f"  TicketOpened -> acknowledgement accepted: p50 {p[50]:.1f} s, p95 {p[95]:.1f} s,"
        f" max {p[100]:.1f} s\n"
        f"  last acknowledgement {last_ack - now.timestamp():.1f} s after publishing began,"
        f" last survey {last_survey - now.timestamp():.1f} s\n"
        f"  {2 * TICKETS / drained_s:,.0f} messages/s overall; service CPU"
        f" {1e6 * cpu / (2 * TICKETS):.0f} µs/message, the SMTP server's (in Python, on the"
        f" same cores) {1e6 * sink_cpu / (2 * TICKETS):.0f} µs/message; accepted twice:"
        f" {doubles}"
    )
    record("notifications-drain", {
        "tickets": TICKETS, "surveys": TICKETS, "outage_s": OUTAGE_S,
        "service_processes": DRAIN_REPLICAS,
        "ack_latency_s": {"p50": round(p[50], 1), "p95": round(p[95], 1),
                          "max": round(p[100], 1)},
        "last_ack_s": round(last_ack - now.timestamp(), 1),
        "last_survey_s": round(last_survey - now.timestamp(), 1),
        "messages_per_s": round(2 * TICKETS / drained_s),
        "service_cpu_us_per_message": round(1e6 * cpu / (2 * TICKETS)), "doubles": doubles,
        "smtp_server_cpu_us_per_message": round(1e6 * sink_cpu / (2 * TICKETS)),
    })  # fmt: skip
    assert len(rows) == 2 * TICKETS
    assert {r["state"] for r in rows} == {"sent"}
    assert set(counts) == {r["d"] for r in rows}  # nothing lost
    assert doubles == 0  # nothing sent twice


def _survey(opening: EventEnvelope[Any], now: datetime) -> EventEnvelope[Any]:
    return EventEnvelope.new(SurveyRequested(
        survey_id=uuid.uuid4(), ticket_id=opening.aggregate_id, customer_id=
        opening.payload.requester.customer_id, survey=SurveyKind.CSAT,
        answer_url="https://support.example/s/t", expires_at=now + timedelta(days=7),
    ), tenant_id=opening.tenant_id, producer="feedback", occurred_at=now)  # fmt: skip


def _start_sink(port: int, path: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "tests" / "support" / "smtp_sink.py"), str(port), str(path)]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until it accepts connections
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return process
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    raise RuntimeError("the SMTP sink did not start")


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0
