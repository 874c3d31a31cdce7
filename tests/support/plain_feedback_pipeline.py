"""The raw ceiling of the feedback consumer: plain aiokafka + asyncpg doing its writes.

Consume a batch of ticket events, decode the JSON, and in one transaction insert the inbox
rows, upsert one row per ticket touched (its last status) and set a survey timer per solved
ticket, through `plain_pipeline.run_plain`. No pydantic, no folding rules: what the
service's figure is read against, in the same run.
"""

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from support.plain_pipeline import Outgoing

SETUP = ("CREATE TABLE IF NOT EXISTS plain_tickets (LIKE tickets INCLUDING ALL)",)
_INBOX = """
    INSERT INTO inbox (consumer, event_id, tenant_id)
    SELECT $1, i, t FROM unnest($2::uuid[], $3::text[]) AS x(i, t)
    ON CONFLICT DO NOTHING RETURNING event_id
"""
_TICKETS = """
    INSERT INTO plain_tickets (tenant_id, ticket_id, number, customer_id, channel, priority,
        opened_at, status, last_replier_id, solved_at)
    SELECT t, s, 1, 'c', 'email', 'normal', o, st, r, so
    FROM unnest($1::text[], $2::uuid[], $3::timestamptz[], $4::text[], $5::text[],
        $6::timestamptz[]) AS x(t, s, o, st, r, so)
    ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET status = excluded.status,
        last_replier_id = coalesce(excluded.last_replier_id, plain_tickets.last_replier_id),
        solved_at = excluded.solved_at
"""
_TIMERS = """
    INSERT INTO timers (kind, key, tenant_id, due_at, payload)
    SELECT 'plain-survey', s, t, d, '{}'::jsonb
    FROM unnest($1::text[], $2::text[], $3::timestamptz[]) AS x(t, s, d)
    ON CONFLICT (kind, tenant_id, key) DO UPDATE SET due_at = excluded.due_at
"""


async def apply_ticket_events(
    pool: asyncpg.Pool, group: str, envelopes: list[dict[str, Any]], suffix: str
) -> Outgoing:
    tenants = [e["tenant_id"] + suffix for e in envelopes]
    ids = [uuid.UUID(e["event_id"]) for e in envelopes]
    async with pool.acquire() as conn, conn.transaction():
        fresh = {r["event_id"] for r in await conn.fetch(_INBOX, group, ids, tenants)}
        last: dict[tuple[str, str], tuple[datetime, str, str | None, datetime | None]] = {}
        for tenant, e in zip(tenants, envelopes, strict=True):
            if uuid.UUID(e["event_id"]) not in fresh:
                continue
            key = (tenant, e["aggregate_id"])
            at = datetime.fromisoformat(e["occurred_at"])
            opened, status, replier, solved = last.get(key, (at, "open", None, None))
            if e["event_type"] == "ResponseSent":
                replier = e["payload"]["agent_id"]
            elif e["event_type"] == "TicketSolved":
                status, solved = "solved", at
            last[key] = (opened, status, replier, solved)
        await conn.execute(
            _TICKETS, [t for t, _ in last], [uuid.UUID(s) for _, s in last],
            *(list(column) for column in zip(*last.values(), strict=True)),
        )  # fmt: skip
        solved_now = [(k, v[3]) for k, v in last.items() if v[3] is not None]
        await conn.execute(_TIMERS, [t for (t, _), _ in solved_now],
                           [s for (_, s), _ in solved_now], [d for _, d in solved_now])  # fmt: skip
    return []
