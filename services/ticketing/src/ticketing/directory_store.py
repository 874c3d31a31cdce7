"""Reads of the directory's read model (directory_projection.py): matching requesters,
who owns an address or a domain, and the customer and organisation pages."""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic_core import to_json

from helpdesk_contracts import CustomerProfile, Organisation, OrganisationProfile, Requester
from helpdesk_runtime.db import Connection
from ticketing.domain.directory import (
    Identity,
    KnownCustomer,
    KnownOrganisation,
    email_domain,
    linked,
    requester_identities,
)


@dataclass(frozen=True)
class LinkRequest:
    """A ticket about to open: whose requester (and organisation) the directory may know."""

    tenant_id: str
    requester: Requester
    organisation: Organisation | None
    source: str | None
    """The submitting system: the requester's customer_id may be its external id."""


async def links(
    conn: Connection, requests: Sequence[LinkRequest]
) -> list[tuple[Requester, Organisation | None]]:
    """Each ticket's requester and organisation as the directory knows them (`linked`), in
    two statements whatever the number of tickets."""
    if not requests:
        return []
    wanted = [
        (i, rank, identity)
        for i, r in enumerate(requests)
        for rank, identity in enumerate(requester_identities(r.requester, r.source))
    ]
    # One JSON parameter (encoded by pydantic-core) rather than arrays: asyncpg checks every
    # element of an array parameter in Python, which cost more than the query (the intake's
    # profile); the standard json module four times more than pydantic-core.
    rows = await conn.fetch(
        """
        SELECT x.i, x.rank, c.customer_id, c.profile::text AS profile
        FROM jsonb_to_recordset($1::jsonb) AS x(i int, rank int, t text, k text, v text)
        JOIN customer_identities ci ON ci.tenant_id = x.t AND ci.kind = x.k AND ci.value = x.v
        JOIN customers c ON c.tenant_id = ci.tenant_id AND c.customer_id = ci.customer_id
        """,
        to_json([{"i": i, "rank": rank, "t": requests[i].tenant_id, "k": k, "v": v}
                 for i, rank, (k, v) in wanted]).decode(),
    )  # fmt: skip
    best: dict[int, tuple[int, KnownCustomer]] = {}
    for row in rows:
        if row["i"] not in best or row["rank"] < best[row["i"]][0]:
            profile = CustomerProfile.model_validate_json(row["profile"])
            best[row["i"]] = (row["rank"], KnownCustomer(row["customer_id"], profile))
    customers = {i: known for i, (_, known) in best.items()}
    orgs = await conn.fetch(
        """
        SELECT x.i, o.organisation_id, o.profile::text AS profile
        FROM jsonb_to_recordset($1::jsonb) AS x(i int, t text, org text, domain text)
        JOIN organisations o ON o.tenant_id = x.t AND o.organisation_id = coalesce(
            (SELECT k.organisation_id FROM organisations k
             WHERE k.tenant_id = x.t AND k.organisation_id = x.org),
            (SELECT d.organisation_id FROM organisation_domains d
             WHERE d.tenant_id = x.t AND d.domain = x.domain))
        """,
        to_json([
            {"i": i, "t": r.tenant_id, "domain": email_domain(r.requester),
             "org": customers[i].profile.organisation_id if i in customers else None}
            for i, r in enumerate(requests)
        ]).decode(),
    )  # fmt: skip
    organisations = {
        r["i"]: KnownOrganisation(
            r["organisation_id"], OrganisationProfile.model_validate_json(r["profile"])
        )
        for r in orgs
    }
    return [
        linked(r.requester, r.organisation, customers.get(i), organisations.get(i))
        for i, r in enumerate(requests)
    ]


async def owners(
    conn: Connection, tenant_id: str, identities: Iterable[Identity]
) -> dict[Identity, str]:
    """The customers these addresses and external ids belong to (those that belong)."""
    found = list(identities)
    rows = await conn.fetch(
        "SELECT ci.kind, ci.value, ci.customer_id FROM customer_identities ci"
        " JOIN unnest($2::text[], $3::text[]) AS x(k, v) ON ci.kind = x.k AND ci.value = x.v"
        " WHERE ci.tenant_id = $1",
        tenant_id, [k for k, _ in found], [v for _, v in found],
    )  # fmt: skip
    return {(r["kind"], r["value"]): r["customer_id"] for r in rows}


async def domain_owners(conn: Connection, tenant_id: str, domains: Iterable[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "SELECT domain, organisation_id FROM organisation_domains"
        " WHERE tenant_id = $1 AND domain = ANY($2::text[])",
        tenant_id, list(domains),
    )  # fmt: skip
    return {r["domain"]: r["organisation_id"] for r in rows}


async def customer_row(conn: Connection, tenant_id: str, customer_id: str) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT customer_id, version, profile::text AS profile, merged_into, merged_ids,"
        " registered_at, updated_at FROM customers WHERE tenant_id = $1 AND customer_id = $2",
        tenant_id, customer_id,
    )  # fmt: skip
    return None if row is None else {**row, "profile": json.loads(row["profile"])}


async def organisation_row(
    conn: Connection, tenant_id: str, organisation_id: str
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT organisation_id, version, profile::text AS profile, registered_at, updated_at"
        " FROM organisations WHERE tenant_id = $1 AND organisation_id = $2",
        tenant_id, organisation_id,
    )  # fmt: skip
    return None if row is None else {**row, "profile": json.loads(row["profile"])}


async def search_customers(
    conn: Connection, tenant_id: str, *, query: str | None, organisation_id: str | None,
    limit: int, after: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Customers (not merged away) by name prefix, or an exact address or external id;
    by name, then id (keyset: `after` is the last customer id of the previous page)."""
    rows = await conn.fetch(
        """
        SELECT c.customer_id, c.version, c.profile::text AS profile, c.merged_into,
            c.merged_ids, c.registered_at, c.updated_at
        FROM customers c
        WHERE c.tenant_id = $1 AND c.merged_into IS NULL
            AND ($2::text IS NULL OR lower(c.name) LIKE lower($2) || '%' OR EXISTS (
                SELECT 1 FROM customer_identities i WHERE i.tenant_id = c.tenant_id
                AND i.customer_id = c.customer_id AND i.value IN (lower($2), $2, $5)))
            AND ($3::text IS NULL OR c.organisation_id = $3)
            AND ($4::text IS NULL OR c.customer_id > $4)
        ORDER BY c.customer_id LIMIT $6
        """,
        tenant_id, query, organisation_id, after,
        None if query is None else "+" + "".join(ch for ch in query if ch.isdigit()), limit,
    )  # fmt: skip
    return [{**r, "profile": json.loads(r["profile"])} for r in rows]


async def organisations(
    conn: Connection, tenant_id: str, *, query: str | None, limit: int, after: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """
        SELECT organisation_id, version, profile::text AS profile, registered_at, updated_at
        FROM organisations
        WHERE tenant_id = $1 AND ($2::text IS NULL OR lower(name) LIKE lower($2) || '%'
            OR organisation_id IN (SELECT organisation_id FROM organisation_domains
                                   WHERE tenant_id = $1 AND domain = lower($2)))
            AND ($3::text IS NULL OR organisation_id > $3)
        ORDER BY organisation_id LIMIT $4
        """,
        tenant_id, query, after, limit,
    )  # fmt: skip
    return [{**r, "profile": json.loads(r["profile"])} for r in rows]


async def open_tickets_of_organisation(
    conn: Connection, tenant_id: str, organisation_id: str
) -> list[Any]:
    """Tickets not closed whose organisation it is (they carry its tier and manager)."""
    rows = await conn.fetch(
        "SELECT ticket_id FROM ticket_list WHERE tenant_id = $1 AND organisation_id = $2"
        " AND status <> 'closed'",
        tenant_id, organisation_id,
    )  # fmt: skip
    return [r["ticket_id"] for r in rows]


async def organisation_counts(
    conn: Connection, tenant_id: str, organisation_id: str
) -> tuple[int, int]:
    """(customers, tickets not closed) of an organisation, for its page."""
    row = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM customers WHERE tenant_id = $1 AND organisation_id = $2"
        "        AND merged_into IS NULL) AS customers,"
        " (SELECT count(*) FROM ticket_list WHERE tenant_id = $1 AND organisation_id = $2"
        "        AND status <> 'closed') AS open_tickets",
        tenant_id, organisation_id,
    )  # fmt: skip
    assert row is not None
    return row["customers"], row["open_tickets"]


async def tickets_of_customer(
    conn: Connection, tenant_id: str, customer_id: str, month_start: datetime, recent: int
) -> dict[str, Any]:
    """The customer page's tickets: those naming the customer (or a duplicate merged into
    it) as requester, or sent from one of its email addresses."""
    ids = await conn.fetch(
        "SELECT kind, value FROM customer_identities WHERE tenant_id = $1 AND customer_id = $2"
        " AND kind IN ('id', 'email')",
        tenant_id, customer_id,
    )  # fmt: skip
    names = [r["value"] for r in ids if r["kind"] == "id"] or [customer_id]
    emails = [r["value"] for r in ids if r["kind"] == "email"]
    mine = """
        SELECT * FROM ticket_list t WHERE t.tenant_id = $1
            AND (t.requester_id = ANY($2::text[]) OR lower(t.requester_email) = ANY($3::text[]))
    """
    counts = await conn.fetchrow(
        f"""
        WITH mine AS ({mine})
        SELECT count(*) AS total,
            count(*) FILTER (WHERE opened_at >= $4) AS this_month,
            count(*) FILTER (WHERE status NOT IN ('solved', 'closed')) AS open,
            count(*) FILTER (WHERE solved_at IS NOT NULL OR closed_at IS NOT NULL) AS resolved,
            (SELECT count(DISTINCT e.stream_id) FROM events e JOIN mine m
                ON e.tenant_id = m.tenant_id AND e.stream_id = m.ticket_id
             WHERE e.event_type = 'TicketReopened') AS reopened
        FROM mine
        """,
        tenant_id, names, emails, month_start,
    )  # fmt: skip
    assert counts is not None
    columns = "ticket_id, number, subject, status, priority, opened_at, updated_at"
    open_rows = await conn.fetch(
        f"SELECT {columns} FROM ({mine}) m WHERE status NOT IN ('solved', 'closed')"
        " ORDER BY opened_at DESC LIMIT $4",
        tenant_id, names, emails, recent,
    )  # fmt: skip
    recent_rows = await conn.fetch(
        f"SELECT {columns} FROM ({mine}) m ORDER BY opened_at DESC LIMIT $4",
        tenant_id, names, emails, recent,
    )  # fmt: skip
    return {
        "counts": dict(counts),
        "open": [dict(r) for r in open_rows],
        "recent": [dict(r) for r in recent_rows],
    }
