"""The ticket list is written the same whether a row comes alone (one statement) or in a
batch (COPY through a session table): the two paths of projection.upsert."""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg

from helpdesk_contracts import Actor, ActorKind, Organisation, Requester, TicketType
from helpdesk_runtime.db import Connection
from ticketing import projection
from ticketing.domain import OpenTicket, Ticket
from ticketing.domain.relations import link_incident

from support.events import envelopes_of

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def _histories(count: int) -> list[list[Any]]:
    """Tickets in many states: tags, followers, custom fields, a problem and its incidents."""
    tickets = []
    for n in range(1, count + 1):
        ticket = Ticket.open(
            OpenTicket(
                subject=f"Ticket {n}: invoice 'wrong' \\ \"twice\"",
                description="Сумма в счёте неверна",
                requester=Requester(customer_id=f"c-{n}", name="Anna", email="a@example.com"),
                type=TicketType.PROBLEM if n == 1 else TicketType.INCIDENT,
                tags=("billing", f"t{n % 3}"),
                custom_fields={"plan": "pro", "seats": n} if n % 2 else {},
                organisation=Organisation(id="org-1", tier="key_account") if n % 4 else None,
                opened_by=AGENT,
            ),
            ticket_id=uuid4(), tenant_id="acme", number=n, at=AT,
        )  # fmt: skip
        if n % 3 == 0:
            ticket.set_followers(["agent-1", "agent-2"], AGENT, AT)
        if n % 5 == 0:
            ticket.add_note(AGENT, "called the customer", note_id=uuid4(), at=AT)
        tickets.append(ticket)
    for incident in tickets[1:4]:
        link_incident(incident, tickets[0], AGENT, AT)
    return [envelopes_of(t, AT) for t in tickets]


async def _rows(conn: Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch("SELECT * FROM ticket_list ORDER BY number")
    return [dict(r) for r in rows]


async def test_a_row_alone_and_in_a_batch_are_written_alike(pool: asyncpg.Pool) -> None:
    histories = _histories(40)  # over the batch threshold
    async with pool.acquire() as conn, conn.transaction():
        await projection.upsert(conn, histories)
        batched = await _rows(conn)
        await conn.execute("DELETE FROM ticket_list")
        for history in histories:
            await projection.upsert(conn, [history])
        alone = await _rows(conn)
    assert len(batched) == 40
    assert alone == batched
    problem = batched[0]
    assert len(problem["incidents"]) == 3
    assert batched[2]["followers"] == ["agent-1", "agent-2"]
    assert batched[1]["tags"] == ["billing", "t2"]


async def test_an_older_version_never_overwrites_a_newer_row(pool: asyncpg.Pool) -> None:
    histories = _histories(40)
    followed = histories[5]  # opened, then followers set: version 2
    async with pool.acquire() as conn:
        await projection.upsert(conn, [followed])
        newer = await _rows(conn)
        assert newer[0]["version"] == 2
        await projection.upsert(conn, [followed[:1]])  # version 1 again, alone
        await projection.upsert(conn, [followed[:1], *histories[3:]])  # and in a batch
        assert (await _rows(conn))[0] == newer[0]
