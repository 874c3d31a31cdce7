"""A rebuild folds each tenant's events of a ticket apart: another tenant's events with the
same ticket id (which the live path, scoped to its batch's tenants, took for an unknown
ticket) never move the owner's clocks."""

from uuid import uuid4

import asyncpg

from helpdesk_runtime import tenancy
from sla import store

from support.events import note, opened


async def test_another_tenants_events_of_a_ticket_id_are_a_history_of_their_own(
    sla_database_url: str,
) -> None:
    ticket = uuid4()
    owners = [opened(ticket, "acme"), note(ticket, 2, "acme")]
    forged = note(ticket, 3, "globex")
    conn = await asyncpg.connect(sla_database_url)
    try:
        async with conn.transaction():  # logged as the live path logs them
            await store.log_events(conn, [owners[0], forged, owners[1]], {})
        async with conn.transaction():
            histories = [h async for h in store.histories(conn)]
        with tenancy.scoped_to(["globex"]):  # scoped as a batch of globex's events is
            await tenancy.apply_scope(conn)
            seen = await conn.fetchval("SELECT count(*) FROM ticket_events")
    finally:
        await conn.close()
    assert [[e.event_id for e, _ in h] for h in histories] == [
        [owners[0].event_id, owners[1].event_id],
        [forged.event_id],
    ]
    assert seen == 1  # globex's connection sees its own event only
