"""Faults under a steady intake load: every ticket opened once, no good event dead-lettered,
the service ready again without a manual restart, and its log bounded during the outage.

Runs on servers of its own (deploy/local/infra.sh with .local/chaos), which it stops, kills
and starts again, and on the ticketing service as a real process. `make test` runs a short
form; `make chaos` the long one (CHAOS_RATE events/s for CHAOS_SECONDS, CHAOS_OUTAGE_S of
fault). Each test prints its figures.
"""

import asyncio
import logging
import os
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from helpdesk_contracts import parse_envelope
from helpdesk_runtime.db import create_pool, migrate
from helpdesk_runtime.kafka import Producer
from ticketing.bootstrap import build_runtime
from ticketing.config import Settings

from support.chaos import (
    CHAOS_INSTANCE,
    INTAKE,
    ChaosServers,
    Load,
    ServiceProcess,
    eventually,
    infra,
    stop,
)
from support.faults import set_read_only, terminate_sessions
from support.fixtures import open_to_test_tools, role_dsn

RATE = int(os.environ.get("CHAOS_RATE", "100"))
SECONDS = float(os.environ.get("CHAOS_SECONDS", "6"))
OUTAGE_S = float(os.environ.get("CHAOS_OUTAGE_S", "3"))
# Warnings and errors the service may write from the fault until it has recovered: a few
# per outage (it starts, the consumer pauses and resumes, the relay fails and recovers),
# never one per failed attempt.
LOG_BOUND = 40
ROLE, PASSWORD = "ticketing_chaos", "chaos-local"


@pytest.fixture(scope="module")
def servers() -> Iterator[ChaosServers]:
    # The load's own Kafka client would print every failed reconnect of each outage.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    found = ChaosServers.up()
    yield found
    infra("down")  # a second Kafka is memory the rest of the suite may want


@pytest.fixture(scope="module")
async def database_url(servers: ChaosServers) -> str:
    name = f"chaos_{uuid.uuid4().hex[:8]}"
    admin = await servers.admin()
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", ROLE):
            await admin.execute(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'")
        await admin.execute(f'CREATE DATABASE "{name}" OWNER {ROLE}')
        await open_to_test_tools(admin, name)
    finally:
        await admin.close()
    url = role_dsn(servers.admin_url, name, ROLE, PASSWORD)
    pool = await create_pool(url, min_size=1, max_size=1)
    await migrate(pool, build_runtime(Settings()).migrations)
    await pool.close()
    return url


@pytest.fixture(scope="module")
async def producer(servers: ChaosServers) -> AsyncIterator[Producer]:
    p = Producer(servers.kafka_bootstrap, "chaos-load")
    await p.start()
    yield p
    await p.stop()


@pytest.fixture(scope="module")
async def service(servers: ChaosServers, database_url: str) -> AsyncIterator[ServiceProcess]:
    log_dir = Path(CHAOS_INSTANCE["HELPDESK_LOCAL_DIR"]) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    running = ServiceProcess(database_url, servers.kafka_bootstrap, log_dir / "ticketing.log")
    running.log_path.write_text("")
    running.start()
    await running.wait_ready()
    yield running
    running.stop()


@dataclass
class Fault:
    name: str
    inject: Callable[[ChaosServers, ServiceProcess, str], Awaitable[None]]
    restarts_service: bool = False


async def _in_thread(work: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(work)


async def broker_stopped(sig: signal.Signals, s: ChaosServers) -> None:
    await _in_thread(lambda: stop(s.kafka_pid(), sig))
    await asyncio.sleep(OUTAGE_S)  # the outage itself
    await _in_thread(lambda: infra("up"))


async def postgres_stopped(sig: signal.Signals, s: ChaosServers) -> None:
    pid = await s.postgres_pid()
    await _in_thread(lambda: stop(pid, sig))
    await asyncio.sleep(OUTAGE_S)
    await _in_thread(lambda: infra("up"))


async def read_only(s: ChaosServers, _svc: ServiceProcess, database: str) -> None:
    await set_read_only(s.admin_url, database, True)  # as after a failover
    await asyncio.sleep(OUTAGE_S)
    await set_read_only(s.admin_url, database, False)


async def sessions_cut(s: ChaosServers, _svc: ServiceProcess, database: str) -> None:
    until = time.monotonic() + OUTAGE_S
    while time.monotonic() < until:
        await terminate_sessions(s.admin_url, database)
        await asyncio.sleep(0.2)


async def service_killed_three_times(_s: ChaosServers, svc: ServiceProcess, _db: str) -> None:
    for _ in range(3):
        svc.restart()  # kill -9, and started again at once, as Kubernetes would
        await asyncio.sleep(OUTAGE_S / 3)


FAULTS = [
    Fault("broker SIGTERM", lambda s, _v, _d: broker_stopped(signal.SIGTERM, s)),
    Fault("broker kill -9", lambda s, _v, _d: broker_stopped(signal.SIGKILL, s)),
    Fault("postgres fast stop", lambda s, _v, _d: postgres_stopped(signal.SIGINT, s)),
    Fault("postgres kill -9", lambda s, _v, _d: postgres_stopped(signal.SIGKILL, s)),
    Fault("database read-only, sessions cut", read_only),
    Fault("sessions cut every 0.2 s", sessions_cut),
    Fault("service kill -9 three times", service_killed_three_times, restarts_service=True),
]


async def counts(database_url: str, tenant: str) -> tuple[int, int]:
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM ticket_list WHERE tenant_id = $1) AS tickets,"
            " (SELECT count(*) FROM events WHERE tenant_id = $1"
            "  AND event_type = 'TicketOpened') AS opened",
            tenant,
        )
        assert row is not None
        return row["tickets"], row["opened"]
    finally:
        await conn.close()


async def on_topic(bootstrap: str, topic: str, wanted: Callable[[Any], bool]) -> list[Any]:
    """Every record of `topic` that `wanted` picks, read to the topic's current end."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        async with asyncio.timeout(30):  # right after a broker restart metadata may lag
            # aiokafka assigns the partitions in the background
            while not consumer.assignment():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        partitions = list(consumer.assignment())
        end = await consumer.end_offsets(partitions)
        found: list[Any] = []
        while [tp for tp in partitions if await consumer.position(tp) < end[tp]]:
            batch = await consumer.getmany(timeout_ms=500)
            found += [r for records in batch.values() for r in records if wanted(r)]
        return found
    finally:
        await consumer.stop()


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
async def test_a_fault_under_load_loses_and_doubles_nothing(
    fault: Fault, servers: ChaosServers, database_url: str, producer: Producer,
    service: ServiceProcess,
) -> None:  # fmt: skip
    tenant = f"c{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    await conn.execute("INSERT INTO tenants (tenant_id, name) VALUES ($1, 'chaos')", tenant)
    await conn.close()
    pid_before = service.process.pid if service.process else None
    load = Load(producer, tenant, RATE, SECONDS)
    loading = asyncio.create_task(load.run())
    await eventually(lambda: _at_least(load, RATE * SECONDS * 0.3))  # mid-stream
    log_from = len(service.log_lines())
    began = time.monotonic()
    await fault.inject(servers, service, database_url.rsplit("/", 1)[1])
    healed = time.monotonic()
    await loading
    sent_all = time.monotonic()
    expected = len(set(load.sent))

    await eventually(lambda: _opened(database_url, tenant, expected), 180)
    # The load goes on after the fault: how far behind the last event sent the service was.
    behind_s = time.monotonic() - sent_all
    await service.wait_ready()
    tickets, opened = await counts(database_url, tenant)
    keys = set(load.sent)
    letters = await on_topic(servers.kafka_bootstrap, f"{INTAKE}.dlq", lambda r: r.key in keys)
    published: list[Any] = []

    async def all_published() -> bool:  # the relay publishes after the commit it tails
        published[:] = await on_topic(
            servers.kafka_bootstrap, "ticketing.tickets.v2",
            lambda r: dict(r.headers).get("tenant_id") == tenant.encode(),
        )  # fmt: skip
        return len({r.key for r in published}) >= expected

    await eventually(all_published, 60)
    tickets_on_topic = {parse_envelope(r.value).aggregate_id for r in published}
    warnings = [
        line for line in service.log_lines()[log_from:]
        if line.get("level") in ("warning", "error", "critical", "raw")
    ]  # fmt: skip
    print(
        f"\nchaos | {fault.name}: {len(load.sent)} events sent ({expected} distinct), "
        f"{tickets} tickets, {opened} opened, lost {expected - tickets}, "
        f"doubled {opened - tickets}, dead-lettered {len(letters)}, on the topic "
        f"{len(tickets_on_topic)} tickets in {len(published)} records; fault "
        f"{healed - began:.1f} s (restart included), last ticket opened {behind_s:.1f} s after "
        f"the last event was sent, {len(warnings)} warning lines"
    )
    assert (tickets, opened) == (expected, expected)  # none lost, none doubled
    assert letters == [], [dict(r.headers).get("dlq-reason") for r in letters[:3]]
    assert len(tickets_on_topic) == expected  # every ticket published (a few twice is fine)
    if not fault.restarts_service:
        assert service.process is not None
        assert service.process.pid == pid_before  # healed without a restart
    assert len(warnings) <= LOG_BOUND, "\n".join(str(w.get("event"))[:160] for w in warnings)


async def _at_least(load: Load, count: float) -> bool:
    return len(load.sent) >= count


async def _opened(database_url: str, tenant: str, expected: int) -> bool:
    try:
        return (await counts(database_url, tenant))[0] >= expected
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False  # the database is still coming back
