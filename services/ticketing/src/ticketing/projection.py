"""The ticket list read model, kept by re-folding each changed ticket with the domain's fold.

It is an inline projection of the event store: written in the append's transaction.

Using `Ticket.from_history` here means the row is always exactly the aggregate's state, and
the live projection and a rebuild run the same code. A ticket is re-folded from its whole
stream when it changes: cheap for tickets of normal length (see the closing note on
snapshots for very long ones).
"""

import json
from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from helpdesk_contracts import (
    CustomerReplied,
    EventEnvelope,
    InternalNoteAdded,
    Priority,
    ResponseSent,
    TicketOpened,
)
from helpdesk_runtime.db import Connection
from helpdesk_runtime.event_log import COPY_FROM
from helpdesk_runtime.eventstore import histories
from helpdesk_runtime.personal_data import SubjectKeys
from ticketing import directory_projection, privacy_store, sla_feed
from ticketing.domain import Ticket

Envelope = EventEnvelope[Any]
PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}

COLUMNS = (
    "tenant_id, ticket_id, number, version, subject, status, priority, priority_rank, type,"
    " channel, requester_id, requester_name, requester_email, organisation_id, tier,"
    " assignee_id, group_id, tags, custom_fields, followers, merged_into, problem_id,"
    " incidents, public_replies, customer_replies, internal_notes, opened_at, updated_at,"
    " solved_at, closed_at"
)
_NAMES = tuple(c.strip() for c in COLUMNS.split(","))
_ROW = (*_NAMES, "search_text")
_LISTS = {"tags": "text", "followers": "text", "incidents": "uuid"}
_LIST_AT = tuple(i for i, c in enumerate(_ROW) if c in _LISTS)
_UPSERTED = f"""
    ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET
        ({COLUMNS}, search) = ({", ".join("EXCLUDED." + c for c in _NAMES)}, EXCLUDED.search)
    WHERE ticket_list.version < EXCLUDED.version
"""
# A few rows (a command over HTTP) go in one statement; their round trips are their cost.
# List columns travel as JSON: unnest cannot take arrays of arrays of different lengths.
_SELECTED = ", ".join(
    f"ARRAY(SELECT jsonb_array_elements_text({c}::jsonb))::{_LISTS[c]}[]" if c in _LISTS else c
    for c in _NAMES
)
_UPSERT = f"""
    INSERT INTO ticket_list ({COLUMNS}, search)
    SELECT {_SELECTED}, to_tsvector('simple', search_text) FROM unnest(
        $1::text[], $2::uuid[], $3::bigint[], $4::int[], $5::text[], $6::text[], $7::text[],
        $8::smallint[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],
        $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::jsonb[],
        $20::text[], $21::uuid[], $22::uuid[], $23::text[], $24::int[], $25::int[], $26::int[],
        $27::timestamptz[], $28::timestamptz[], $29::timestamptz[], $30::timestamptz[],
        $31::text[]
    ) AS x({COLUMNS}, search_text)
    {_UPSERTED}
"""
# A batch is copied into a table of this session's (COPY, not INSERT ... unnest: asyncpg
# checks every element of an array parameter against collections.abc, which cost more than
# encoding it), then moved into the list in one statement, with the search vector.
_STAGE = f"""
    CREATE TEMP TABLE IF NOT EXISTS ticket_list_changes ON COMMIT DELETE ROWS AS
    SELECT {COLUMNS}, ''::text AS search_text FROM ticket_list WITH NO DATA
"""
_MOVE = f"""
    WITH moved AS (DELETE FROM ticket_list_changes RETURNING *)
    INSERT INTO ticket_list ({COLUMNS}, search)
    SELECT {COLUMNS}, to_tsvector('simple', search_text) FROM moved
    {_UPSERTED}
"""


def _search_text(history: Iterable[Envelope]) -> str:
    parts: list[str] = []
    for e in history:
        match e.payload:
            case TicketOpened():
                parts += [e.payload.subject, e.payload.description]
            case ResponseSent() | CustomerReplied() | InternalNoteAdded():
                parts.append(e.payload.body)
    return "\n".join(parts)


def _row(t: Ticket, search_text: str) -> tuple[Any, ...]:
    requester, org = t.requester, t.organisation
    return (
        t.tenant_id, t.id, t.number, t.version, t.subject, t.status.value, t.priority.value,
        PRIORITY_RANK[t.priority], t.type.value, t.channel.value,
        requester.customer_id if requester else "", requester.name if requester else None,
        requester.email if requester else None, org.id if org else None,
        org.tier if org else None, t.assignee_id, t.group_id, list(t.tags),
        json.dumps(t.custom_fields), list(t.followers), t.merged_into, t.problem_id,
        list(t.incidents), t.public_replies, t.customer_replies,
        t.internal_notes, t.opened_at, t.updated_at, t.solved_at, t.closed_at, search_text,
    )  # fmt: skip


async def upsert(conn: Connection, changed: Sequence[Sequence[Envelope]]) -> None:
    """Fold each ticket's whole history and write its row (older versions never win).

    The event store's inline projection (see unit_of_work.py) and `rebuild`."""
    rows = []
    for history in changed:
        if not history or not isinstance(history[0].payload, TicketOpened):
            continue  # a customer's or an organisation's stream (directory_projection.py)
        ticket = Ticket.from_history(history)
        if ticket is not None:
            rows.append(_row(ticket, _search_text(history)))
    if len(rows) >= COPY_FROM:
        await conn.execute(_STAGE)
        await conn.copy_records_to_table("ticket_list_changes", records=rows, columns=_ROW)
        await conn.execute(_MOVE)
    elif rows:
        columns = [list(column) for column in zip(*rows, strict=True)]
        for i in _LIST_AT:
            columns[i] = [json.dumps([str(v) for v in values]) for values in columns[i]]
        await conn.execute(_UPSERT, *columns)


async def refold_personal_data(conn: Connection, changed: Sequence[Sequence[Envelope]]) -> int:
    """Rewrite the columns that hold personal data (subject, requester, search) from these
    tickets' histories as they read now: after an erasure, erased. Nothing else changes,
    so a ticket's counts, status and SLA columns stay exactly as they were."""
    rows = [
        (t.tenant_id, t.id, t.subject, t.requester.name if t.requester else None,
         t.requester.email if t.requester else None, _search_text(history))
        for history in changed
        if history and (t := Ticket.from_history(history)) is not None
    ]  # fmt: skip
    await conn.executemany(
        """
        UPDATE ticket_list SET subject = $3, requester_name = $4, requester_email = $5,
            search = to_tsvector('simple', $6)
        WHERE tenant_id = $1 AND ticket_id = $2
        """,
        rows,
    )
    return len(rows)


async def rebuild(pool: asyncpg.Pool, keys: SubjectKeys, batch: int = 500) -> int:
    """Drop the read models (the ticket list, the directory) and fold them again from the
    event log; returns the streams done."""
    done = 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("TRUNCATE ticket_list")
        await directory_projection.clear(conn)
        streams = await conn.fetch("SELECT DISTINCT tenant_id, stream_id FROM events")
        named = [(r["tenant_id"], r["stream_id"]) for r in streams]
        for start in range(0, len(named), batch):
            chunk = named[start : start + batch]
            found = await histories(conn, chunk, keys)
            for project in PROJECTIONS:
                await project(conn, [found[k] for k in chunk])
            done += len(chunk)
        # Merged duplicates of an erased customer fold to rows of erased fields: forgotten.
        for tenant_id, subjects in await privacy_store.erased_subjects(conn):
            await directory_projection.forget(conn, tenant_id, subjects)
        await sla_feed.refresh(conn)  # the SLA columns come from the SLA events, kept apart
    return done


PROJECTIONS = (upsert, directory_projection.upsert)
"""What the event store runs on every append (see unit_of_work.py), and a rebuild."""
