"""The raw ceiling of the SLA consumer: plain aiokafka + asyncpg doing its database writes.

Consume a batch of ticket events, decode the JSON, and in one transaction insert the inbox
rows and the input log, upsert a row per ticket and per clock (two clocks per opened
ticket; every other event moves its ticket's clocks), and put one outbox row per event;
then produce one message per event (acks=all) and commit the offsets, through
`plain_pipeline.run_plain`. No pydantic, no business calendar, no rules: what the service's
figure is read against, in the same run.
"""

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from support.plain_pipeline import Outgoing

SETUP = (
    "CREATE TABLE IF NOT EXISTS plain_ticket_events (LIKE ticket_events INCLUDING ALL)",
    "CREATE TABLE IF NOT EXISTS plain_outbox (LIKE outbox INCLUDING ALL)",
)
_INBOX = """
    INSERT INTO inbox (consumer, event_id, tenant_id)
    SELECT $1, i, t FROM unnest($2::uuid[], $3::text[]) AS x(i, t)
    ON CONFLICT DO NOTHING RETURNING event_id
"""
_LOG = """
    INSERT INTO plain_ticket_events (event_id, tenant_id, ticket_id, version, event_type,
        occurred_at, revision, envelope)
    SELECT i, t, s, v, e, o, 0, j::jsonb FROM unnest($1::uuid[], $2::text[], $3::uuid[],
        $4::int[], $5::text[], $6::timestamptz[], $7::text[]) AS x(i, t, s, v, e, o, j)
"""
_TICKETS = """
    INSERT INTO sla_tickets (ticket_id, tenant_id, number, priority, channel, type, tags,
        status, opened_at, version, cycles)
    SELECT s, t, n, 'normal', 'email', 'question', '[]', 'new', o, v, '{}'
    FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::timestamptz[], $5::int[])
        AS x(s, t, n, o, v)
    ON CONFLICT (ticket_id) DO UPDATE SET version = excluded.version
"""
_CLOCKS = """
    INSERT INTO clocks (clock_id, tenant_id, ticket_id, partition, metric, cycle, state,
        policy_id, policy_version, business_hours, target, thresholds, pause_on, started_at,
        started_by, elapsed, since, deadline, warned, pauses)
    SELECT c, t, s, 0, m, 1, 'running', 'default', 1, false, '24 hours', '[0.75, 0.9]',
        '["on_hold", "pending"]', o, i, '0', o, o + interval '24 hours', '[]', '[]'
    FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::timestamptz[],
        $6::uuid[]) AS x(c, t, s, m, o, i)
    ON CONFLICT (clock_id) DO UPDATE SET state = excluded.state, since = excluded.since,
        deadline = excluded.deadline, elapsed = excluded.elapsed
"""
_MOVE = """
    UPDATE clocks c SET elapsed = c.elapsed + (x.o - c.since), since = x.o
    FROM unnest($1::uuid[], $2::timestamptz[]) AS x(s, o)
    WHERE c.ticket_id = x.s AND c.state = 'running'
"""
_OUTBOX = """
    INSERT INTO plain_outbox (tenant_id, event_id, event_type, schema_version, occurred_at,
        producer, correlation_id, partition_key, payload)
    SELECT t, i, 'SlaClockStarted', 1, o, 'plain', i, s::text, p::jsonb
    FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::uuid[], $5::text[])
        AS x(t, i, o, s, p)
"""


async def apply_ticket_events(
    pool: asyncpg.Pool, group: str, envelopes: list[dict[str, Any]], suffix: str
) -> Outgoing:
    tenants = [e["tenant_id"] + suffix for e in envelopes]
    ids = [uuid.UUID(e["event_id"]) for e in envelopes]
    # Tickets of their own (the service keeps the published ids): keyed per run.
    tickets = [uuid.uuid5(uuid.NAMESPACE_OID, e["aggregate_id"] + suffix) for e in envelopes]
    at = [datetime.fromisoformat(e["occurred_at"]) for e in envelopes]
    async with pool.acquire() as conn, conn.transaction():
        fresh = {r["event_id"] for r in await conn.fetch(_INBOX, group, ids, tenants)}
        todo = [i for i, event_id in enumerate(ids) if event_id in fresh]
        await conn.execute(
            _LOG, [ids[i] for i in todo], [tenants[i] for i in todo], [tickets[i] for i in todo],
            [envelopes[i]["aggregate_version"] for i in todo],
            [envelopes[i]["event_type"] for i in todo], [at[i] for i in todo],
            [json.dumps(envelopes[i]) for i in todo],
        )  # fmt: skip
        opened = [i for i in todo if envelopes[i]["event_type"] == "TicketOpened"]
        moved = [i for i in todo if envelopes[i]["event_type"] != "TicketOpened"]
        await conn.execute(
            _TICKETS, [tickets[i] for i in opened], [tenants[i] for i in opened],
            [envelopes[i]["payload"]["number"] for i in opened], [at[i] for i in opened],
            [1] * len(opened),
        )  # fmt: skip
        metrics = ("first_response", "resolution")
        await conn.execute(
            _CLOCKS, [uuid.uuid5(tickets[i], m) for i in opened for m in metrics],
            [tenants[i] for i in opened for _ in metrics],
            [tickets[i] for i in opened for _ in metrics], [m for _ in opened for m in metrics],
            [at[i] for i in opened for _ in metrics], [ids[i] for i in opened for _ in metrics],
        )  # fmt: skip
        await conn.execute(_MOVE, [tickets[i] for i in moved], [at[i] for i in moved])
        bodies = [
            json.dumps({"ticket_id": str(tickets[i]),
                        "deadline": (at[i] + timedelta(hours=24)).isoformat()})
            for i in todo
        ]  # fmt: skip
        await conn.execute(
            _OUTBOX, [tenants[i] for i in todo], [uuid.uuid4() for _ in todo],
            [at[i] for i in todo], [tickets[i] for i in todo], bodies,
        )  # fmt: skip
    return [(str(tickets[i]), b.encode()) for i, b in zip(todo, bodies, strict=True)]
