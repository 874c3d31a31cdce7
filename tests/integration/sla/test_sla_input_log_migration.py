"""The SLA service's input log keeps no personal data in plain text from before 2.0.0."""

from uuid import uuid4

import asyncpg

from helpdesk_contracts import InternalNoteAdded, TicketOpened, parse_envelope
from helpdesk_contracts.pii import ERASED
from helpdesk_runtime.db import load_migrations

from support.events import note, opened

[BLANKING] = [m for m in load_migrations("sla", "sla") if "no_plain_personal_data" in m.name]


async def test_ticket_events_consumed_from_v1_are_blanked_and_still_read(
    sla_database_url: str,
) -> None:
    ticket = uuid4()
    conn = await asyncpg.connect(sla_database_url)
    try:
        for position, envelope in enumerate([opened(ticket), note(ticket, 2)]):
            await conn.execute(
                "INSERT INTO ticket_events (event_id, tenant_id, ticket_id, version, event_type,"
                " occurred_at, revision, envelope) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                envelope.event_id, envelope.tenant_id, ticket, envelope.aggregate_version,
                envelope.event_type, envelope.occurred_at, position, envelope.to_json().decode(),
            )  # fmt: skip
        await conn.execute(BLANKING.sql)
        await conn.execute(BLANKING.sql)  # twice changes nothing more
        stored = await conn.fetch(
            "SELECT envelope::text FROM ticket_events WHERE ticket_id = $1 ORDER BY version",
            ticket,
        )
    finally:
        await conn.close()

    text = " ".join(row["envelope"] for row in stored)
    for plain in ("Invoice shows", "charged twice", "Anna", "anna@example.com", "note 2"):
        assert plain not in text
    first, second = (parse_envelope(row["envelope"]).payload for row in stored)
    assert isinstance(first, TicketOpened)
    assert isinstance(second, InternalNoteAdded)
    assert (first.subject, first.requester.email) == (ERASED, ERASED)
    assert first.requester.customer_id == "c-1"
    assert first.priority == "normal"  # what clocks read is all there
    assert second.body == ERASED
