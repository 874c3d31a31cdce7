"""The raw ceiling of the intake path: plain aiokafka + asyncpg doing the same database work.

Consume a batch, decode the JSON, and in one transaction insert the inbox rows, reserve
ticket numbers per tenant (the service's sequences), insert the events and upsert the ticket
list with its search vector; then produce one message per event (acks=all, idempotent) and
commit the offsets. No pydantic, no runtime, no guarantees beyond the transaction: the
figure the service is read against, measured in the same run.
"""

import asyncio
import json
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

_INBOX = """
    INSERT INTO inbox (consumer, event_id, tenant_id)
    SELECT $1, i, t FROM unnest($2::uuid[], $3::text[]) AS x(i, t)
    ON CONFLICT DO NOTHING RETURNING event_id
"""
_NUMBERS = """
    SELECT t AS tenant_id, n FROM unnest($1::text[], $2::int[]) AS x(t, c),
        next_ticket_numbers(t, c) AS n ORDER BY t, n
"""
# A table like `events` (same columns and indexes), which the service's relay does not tail.
PLAIN_EVENTS = "CREATE TABLE IF NOT EXISTS plain_events (LIKE events INCLUDING ALL)"
_EVENTS = """
    INSERT INTO plain_events (tenant_id, stream_id, version, event_id, event_type, schema_version,
        occurred_at, producer, correlation_id, partition_key, payload)
    SELECT t, s, 1, i, 'TicketOpened', 1, o, 'plain', c, s::text, p::jsonb
    FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::timestamptz[], $5::uuid[], $6::text[])
        AS x(t, s, i, o, c, p)
"""
_TICKETS = """
    INSERT INTO ticket_list (tenant_id, ticket_id, number, version, subject, status, priority,
        priority_rank, type, channel, requester_id, requester_email, tags, custom_fields,
        followers, incidents, public_replies, customer_replies, internal_notes, opened_at,
        updated_at, search)
    SELECT t, s, n, 1, sub, 'new', 'normal', 1, 'question', 'email', r, e, '{}', '{}', '{}',
        '{}', 0, 0, 0, o, o, to_tsvector('simple', sub || E'\\n' || d)
    FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::timestamptz[]) AS x(t, s, n, sub, d, r, e, o)
    ON CONFLICT (tenant_id, ticket_id) DO NOTHING
"""


@dataclass
class PlainRun:
    events: int
    seconds: float
    cpu_s: float

    @property
    def per_second(self) -> float:
        return self.events / self.seconds

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_s / self.events


Outgoing = list[tuple[str, bytes]]  # (key, value) of the records a batch publishes
Apply = Callable[[asyncpg.Pool, str, list[dict[str, Any]], str], Awaitable[Outgoing]]
"""A batch's database work: (pool, group, decoded envelopes, tenant suffix) -> records."""


async def _pipeline(
    pool: asyncpg.Pool, bootstrap: str, topic: str, group: str, out_topic: str,
    tenant_suffix: str, done: Counter[str], apply: Apply,
) -> None:  # fmt: skip
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
        auto_offset_reset="latest", max_poll_records=500,
    )  # fmt: skip
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5,
        compression_type="zstd", max_batch_size=256 * 1024,
    )  # fmt: skip
    await consumer.start()
    await producer.start()
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=100, max_records=500)
            records = [r for rs in batch.values() for r in rs]
            if not records:
                continue
            envelopes = [json.loads(r.value) for r in records]
            out = await apply(pool, group, envelopes, tenant_suffix)
            futures = [await producer.send(out_topic, v, key=k.encode()) for k, v in out]
            await asyncio.gather(*futures)
            await consumer.commit()
            done["events"] += len(records)
    finally:
        await producer.stop()
        await consumer.stop()


async def open_tickets(
    pool: asyncpg.Pool, group: str, envelopes: list[dict[str, Any]], suffix: str
) -> Outgoing:
    """The intake's writes: inbox, ticket numbers, events, the ticket list."""
    now = datetime.now(UTC)
    tenants = [e["tenant_id"] + suffix for e in envelopes]
    ids = [uuid.UUID(e["event_id"]) for e in envelopes]
    streams = [uuid.uuid4() for _ in envelopes]
    opened_ids = [uuid.uuid4() for _ in envelopes]
    payloads = [e["payload"] for e in envelopes]
    async with pool.acquire() as conn, conn.transaction():
        fresh = {r["event_id"] for r in await conn.fetch(_INBOX, group, ids, tenants)}
        todo = [i for i, event_id in enumerate(ids) if event_id in fresh]
        per_tenant = Counter(tenants[i] for i in todo)
        reserved: dict[str, list[int]] = {t: [] for t in per_tenant}
        for r in await conn.fetch(_NUMBERS, list(per_tenant), list(per_tenant.values())):
            reserved[r["tenant_id"]].append(r["n"])
        unused = {t: iter(ns) for t, ns in reserved.items()}
        numbers = [next(unused[tenants[i]]) for i in todo]
        bodies = [
            json.dumps({"number": n, "subject": payloads[i]["subject"],
                        "description": payloads[i]["description"],
                        "requester": payloads[i]["requester"]})
            for i, n in zip(todo, numbers, strict=True)
        ]  # fmt: skip
        await conn.execute(
            _EVENTS, [tenants[i] for i in todo], [streams[i] for i in todo],
            [opened_ids[i] for i in todo], [now] * len(todo),
            [uuid.UUID(envelopes[i]["correlation_id"]) for i in todo], bodies,
        )  # fmt: skip
        await conn.execute(
            _TICKETS, [tenants[i] for i in todo], [streams[i] for i in todo], numbers,
            [payloads[i]["subject"] for i in todo], [payloads[i]["description"] for i in todo],
            [payloads[i]["requester"]["customer_id"] for i in todo],
            [payloads[i]["requester"].get("email") for i in todo], [now] * len(todo),
        )  # fmt: skip
    return [(str(streams[i]), body.encode()) for i, body in zip(todo, bodies, strict=True)]


async def run_plain(
    pool: asyncpg.Pool, bootstrap: str, topic: str, out_topic: str, expected: int,
    in_flight: int, group: str, apply: Apply = open_tickets,
    setup: Sequence[str] = (PLAIN_EVENTS,),
) -> PlainRun:  # fmt: skip
    """Drain `expected` records of `topic` (from `group`'s committed offsets, set before
    they were published) with `in_flight` pipelines in that consumer group, each batch
    doing `apply`'s database work (the intake's by default) and publishing what it returns."""
    for statement in setup:
        await pool.execute(statement)
    done: Counter[str] = Counter()
    suffix = f"-p{in_flight}-{uuid.uuid4().hex[:6]}"
    tasks = [
        asyncio.create_task(
            _pipeline(pool, bootstrap, topic, group, out_topic, suffix, done, apply)
        )
        for _ in range(in_flight)
    ]
    try:
        # Timed from the first batch done: joining the group is not the path measured.
        while not done["events"]:
            _raise_failure(tasks)
            await asyncio.sleep(0.01)
        first = done["events"]
        cpu, started = time.process_time(), time.perf_counter()
        while done["events"] < expected:
            _raise_failure(tasks)
            await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return PlainRun(
        done["events"] - first, time.perf_counter() - started, time.process_time() - cpu
    )


def _raise_failure(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()  # raises what broke it
