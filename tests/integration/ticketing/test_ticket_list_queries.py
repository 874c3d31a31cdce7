"""The ticket list's searches, across the two steps of `list_tickets`: the walk over the
newest tickets and the collection of the matches beyond it (WALK is made tiny here)."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from ticketing import queries
from ticketing.queries import Sort, TicketFilter, list_tickets

NOW = datetime(2026, 3, 1, tzinfo=UTC)


async def _add(conn: Any, tenant: str, number: int, words: str, tags: list[str]) -> UUID:
    """A ticket updated `number` minutes ago and opened in reverse order (the projection's
    columns that the list reads; the rest left empty)."""
    ticket_id = uuid4()
    await conn.execute(
        "INSERT INTO ticket_list (tenant_id, ticket_id, number, version, subject, status,"
        " priority, priority_rank, type, channel, requester_id, tags, custom_fields, followers,"
        " incidents, public_replies, customer_replies, internal_notes, opened_at, updated_at,"
        " search) VALUES ($1, $2, $3, 1, $4, $5, 'normal', 1, 'question', 'web', 'c-1', $6,"
        " '{}', '{}', '{}', 0, 0, 0, $7, $8, to_tsvector('simple', $4))",
        tenant, ticket_id, number, words, "open" if number % 2 else "solved", tags,
        NOW - timedelta(days=100 - number), NOW - timedelta(minutes=number),
    )  # fmt: skip
    return ticket_id


async def _all_pages(conn: Any, f: TicketFilter, sort: Sort, descending: bool) -> list[UUID]:
    seen: list[UUID] = []
    cursor = None
    while True:
        page, cursor = await list_tickets(
            conn, "acme", f, sort=sort, descending=descending, limit=2, cursor=cursor
        )
        seen += [r["ticket_id"] for r in page]
        if cursor is None:
            return seen


@pytest.mark.parametrize(
    ("sort", "descending"),
    [(Sort.UPDATED, True), (Sort.NUMBER, False), (Sort.OPENED, True), (Sort.PRIORITY, False)],
)
async def test_searches_page_through_every_match_in_order(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, sort: Sort, descending: bool
) -> None:
    monkeypatch.setattr(queries, "WALK", 4)
    async with pool.acquire() as conn:
        tickets = {}
        for n in range(1, 31):  # "common" in each, "rare" in every 7th, tags alternate
            words = "common parcel" + (" rare" if n % 7 == 0 else "")
            tickets[n] = await _add(conn, "acme", n, words, ["vip"] if n % 2 else ["billing"])
            await _add(conn, "globex", n, words, ["vip"])  # never in acme's list
        ordered = {
            Sort.UPDATED: sorted(tickets),  # updated n minutes ago
            Sort.NUMBER: sorted(tickets),
            Sort.OPENED: sorted(tickets, reverse=True),  # opened 100 - n days ago
            Sort.PRIORITY: sorted(tickets, key=lambda n: tickets[n]),  # all alike: by id
        }[sort]

        def expect(keep: Any) -> list[UUID]:
            return [tickets[n] for n in ordered if keep(n)]

        cases = [
            (TicketFilter(text="common"), lambda n: True),  # the walk finds each page
            (TicketFilter(text="rare"), lambda n: n % 7 == 0),  # mostly beyond the walk
            (TicketFilter(text="rare common"), lambda n: n % 7 == 0),
            (TicketFilter(tags=("VIP",)), lambda n: n % 2 == 1),
            (TicketFilter(tags=("vip",), statuses=("open",), text="rare"), lambda n: n in (7, 21)),
            (TicketFilter(text="absent"), lambda n: False),
        ]
        for f, keep in cases:
            assert await _all_pages(conn, f, sort, descending) == expect(keep), f
