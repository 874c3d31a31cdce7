"""The notifications database: what the rules resolve against (tickets, leads, rules,
contacts, business hours), read a batch at a time."""

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from helpdesk_contracts import (
    ContactKind,
    CustomerErased,
    CustomerMerged,
    CustomerProfileChanged,
    CustomerRegistered,
    DuplicateCustomerMerged,
    TicketAssigned,
    TicketFollowersChanged,
    TicketOpened,
    TicketOrganisationChanged,
    TicketPriorityChanged,
)
from helpdesk_runtime.db import Connection, rows_by_tenant_key
from helpdesk_runtime.eventstore import Envelope
from notifications.domain.notices import DEFAULT_RULES, Audience, Rule, TicketFacts
from notifications.domain.preferences import BusinessHours, Channel, Preferences
from notifications.rendering import Custom

TicketKey = tuple[str, UUID]

FACT_EVENTS = (TicketAssigned, TicketFollowersChanged, TicketPriorityChanged,
               TicketOrganisationChanged)  # fmt: skip
"""Changes the rules resolve audiences against, kept on the ticket's row."""


async def keep_tickets(
    conn: Connection, events: Sequence[Envelope], documents: Mapping[UUID, str]
) -> None:
    """The openings (kept as published, sealed: `documents` by event id) and then what the
    rules need of later changes: a statement per kind of change, each ticket's last value
    in the batch's order."""
    openings = [e for e in events if isinstance(e.payload, TicketOpened)]
    if openings:
        await conn.execute(
            "INSERT INTO tickets (tenant_id, ticket_id, number, requester_id, opening, priority,"
            " account_manager_id)"
            " SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[],"
            " $5::jsonb[], $6::text[], $7::text[])"
            " ON CONFLICT (tenant_id, ticket_id) DO NOTHING",
            [e.tenant_id for e in openings], [e.aggregate_id for e in openings],
            [e.payload.number for e in openings],
            [e.payload.requester.customer_id for e in openings],
            [documents[e.event_id] for e in openings],
            [e.payload.priority.value for e in openings],
            [_manager(e.payload.organisation) for e in openings],
        )  # fmt: skip
    latest: dict[str, dict[TicketKey, tuple[Any, ...]]] = defaultdict(dict)
    for e in events:
        if e.aggregate_id is None:
            continue
        p, key = e.payload, (e.tenant_id, e.aggregate_id)
        if isinstance(p, TicketAssigned):
            latest["assigned"][key] = (p.assignee_id, p.group_id)
        elif isinstance(p, TicketFollowersChanged):
            latest["followers"][key] = (json.dumps(list(p.followers)),)
        elif isinstance(p, TicketPriorityChanged):
            latest["priority"][key] = (p.priority.value,)
        elif isinstance(p, TicketOrganisationChanged):
            latest["manager"][key] = (_manager(p.organisation),)
    for kind, changes in latest.items():
        keys = list(changes)
        columns = [list(c) for c in zip(*changes.values(), strict=True)]
        await conn.execute(_FACTS[kind], [t for t, _ in keys], [k for _, k in keys], *columns)


_FACTS = {
    kind: f"UPDATE tickets t SET {assign} FROM unnest($1::text[], $2::uuid[], {arrays})"
          f" AS x(n, k, {names}) WHERE t.tenant_id = x.n AND t.ticket_id = x.k"
    for kind, assign, arrays, names in (
        ("assigned", "assignee_id = x.a, group_id = x.g", "$3::text[], $4::text[]", "a, g"),
        ("followers", "followers = ARRAY(SELECT jsonb_array_elements_text(x.f::jsonb))",
         "$3::text[]", "f"),
        ("priority", "priority = x.p", "$3::text[]", "p"),
        ("manager", "account_manager_id = x.m", "$3::text[]", "m"),
    )
}  # fmt: skip


def _manager(organisation: Any) -> str | None:
    return organisation.account_manager_id if organisation is not None else None


async def tickets(conn: Connection, keys: Iterable[TicketKey]) -> dict[TicketKey, TicketFacts]:
    rows = await rows_by_tenant_key(
        conn, "tickets", "ticket_id", keys, key_type="uuid",
        columns="tenant_id, ticket_id, requester_id, assignee_id, group_id, followers,"
        " account_manager_id, priority",  # not the opening: the hot path has no use for it
    )  # fmt: skip
    return {(r["tenant_id"], r["ticket_id"]): _facts(r) for r in rows}


def _facts(row: Any) -> TicketFacts:
    return TicketFacts(
        row["requester_id"], row["assignee_id"], row["group_id"], tuple(row["followers"]),
        row["account_manager_id"], row["priority"],
    )  # fmt: skip


async def latest_tickets(
    conn: Connection, customers: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], TicketFacts]:
    """Each (tenant, customer)'s latest ticket known here (the highest number): who served
    them last, for an event about the customer rather than a ticket (CustomerAtRisk)."""
    wanted = sorted(set(customers))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT x.n AS tenant_id, t.* FROM unnest($1::text[], $2::text[]) AS x(n, k)"
        " CROSS JOIN LATERAL (SELECT requester_id, assignee_id, group_id, followers,"
        " account_manager_id, priority FROM tickets WHERE tenant_id = x.n AND requester_id = x.k"
        " ORDER BY number DESC LIMIT 1) t",  # tickets_by_requester
        [t for t, _ in wanted], [c for _, c in wanted],
    )  # fmt: skip
    return {(r["tenant_id"], r["requester_id"]): _facts(r) for r in rows}


async def rules(conn: Connection, tenants: Iterable[str]) -> dict[str, dict[str, Rule]]:
    """Each tenant's rules: the defaults with its changes."""
    wanted = sorted(set(tenants))
    rows = await conn.fetch(
        "SELECT tenant_id, event_type, audiences, enabled FROM rules"
        " WHERE tenant_id = ANY($1::text[])", wanted,
    )  # fmt: skip
    found: dict[str, dict[str, Rule]] = {t: dict(DEFAULT_RULES) for t in wanted}
    for r in rows:
        default = DEFAULT_RULES.get(r["event_type"])
        if default is not None:
            found[r["tenant_id"]][r["event_type"]] = changed(default, r["audiences"], r["enabled"])
    return found


def changed(default: Rule, audiences: Sequence[str], enabled: bool) -> Rule:
    return Rule(default.event_type, tuple(Audience(a) for a in audiences), default.template,
                default.lane, default.transactional, default.escalation, enabled)  # fmt: skip


async def group_leads(
    conn: Connection, groups: Iterable[tuple[str, str]]
) -> dict[str, dict[str, tuple[str, ...]]]:
    found: dict[str, dict[str, tuple[str, ...]]] = defaultdict(dict)
    for r in await rows_by_tenant_key(
        conn, "group_leads", "group_id", groups, "tenant_id, group_id, leads"
    ):
        found[r["tenant_id"]][r["group_id"]] = tuple(r["leads"])
    return found


async def preferences(
    conn: Connection, people: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Preferences]:
    """Each person's preferences; people without a row are absent (the defaults apply)."""
    rows = await rows_by_tenant_key(conn, "contacts", "person", people, "t.*")
    return {(r["tenant_id"], r["person"]): preferences_of(r) for r in rows}


ADDRESS_COLUMNS = {Channel.EMAIL: "email", Channel.WEBHOOK: "webhook_url",
                   Channel.MESSENGER: "messenger_id"}  # fmt: skip
"""The `contacts` column that holds a person's address on each channel."""


def preferences_of(row: Any) -> Preferences:
    addresses = {c: row[column] for c, column in ADDRESS_COLUMNS.items() if row[column]}
    return Preferences(
        channels=tuple(Channel(c) for c in row["channels"]), language=row["language"],
        time_zone=row["time_zone"], quiet_from=row["quiet_from"],
        quiet_until=row["quiet_until"], opted_out=frozenset(row["opted_out"]),
        addresses=addresses,
    )  # fmt: skip


async def business_hours(conn: Connection, tenants: Iterable[str]) -> dict[str, BusinessHours]:
    rows = await conn.fetch(
        "SELECT * FROM business_hours WHERE tenant_id = ANY($1::text[])", sorted(set(tenants))
    )
    return {
        r["tenant_id"]: BusinessHours(
            r["time_zone"], frozenset(r["days"]), r["start_time"], r["end_time"]
        )
        for r in rows
    }


async def templates(
    conn: Connection, tenants: Iterable[str]
) -> dict[str, dict[tuple[str, str], Custom]]:
    """Each tenant's own templates, by (name, language)."""
    rows = await conn.fetch(
        "SELECT tenant_id, name, language, subject, text, html FROM templates"
        " WHERE tenant_id = ANY($1::text[])", sorted(set(tenants)),
    )  # fmt: skip
    found: dict[str, dict[tuple[str, str], Custom]] = defaultdict(dict)
    for r in rows:
        found[r["tenant_id"]][(r["name"], r["language"])] = Custom(
            r["subject"], r["text"], r["html"]
        )
    return found


PROFILE_EVENTS = (CustomerRegistered, CustomerProfileChanged, DuplicateCustomerMerged)
DIRECTORY_EVENTS = (*PROFILE_EVENTS, CustomerMerged, CustomerErased)


async def keep_customers(
    conn: Connection, events: Sequence[Envelope], documents: Mapping[UUID, str]
) -> None:
    """The directory's customers, each one's latest profile; merged duplicates and erased
    customers go."""
    latest: dict[tuple[str, str], Envelope] = {}
    gone: set[tuple[str, str]] = set()
    for e in events:
        p = e.payload
        if isinstance(p, PROFILE_EVENTS):
            latest[(e.tenant_id, p.customer_id)] = e
            gone.discard((e.tenant_id, p.customer_id))
        elif isinstance(p, CustomerMerged):
            gone.add((e.tenant_id, p.customer_id))
        elif isinstance(p, CustomerErased):
            gone |= {(e.tenant_id, s) for s in (p.customer_id, *p.erased_subjects)}
    for key in gone:
        latest.pop(key, None)
    if latest:
        keys, envelopes = list(latest), list(latest.values())
        profiles = [e.payload.profile for e in envelopes]
        await conn.execute(
            "INSERT INTO customers (tenant_id, customer_id, profile, preferred_channel, language,"
            " time_zone, has_messenger) SELECT * FROM unnest($1::text[], $2::text[], $3::jsonb[],"
            " $4::text[], $5::text[], $6::text[], $7::boolean[])"
            " ON CONFLICT (tenant_id, customer_id) DO UPDATE SET profile = excluded.profile,"
            " preferred_channel = excluded.preferred_channel, language = excluded.language,"
            " time_zone = excluded.time_zone, has_messenger = excluded.has_messenger",
            [t for t, _ in keys], [c for _, c in keys], [documents[e.event_id] for e in envelopes],
            [p.preferred_channel.value if p.preferred_channel else None for p in profiles],
            [p.language for p in profiles], [p.time_zone for p in profiles],
            [any(c.kind == ContactKind.TELEGRAM for c in p.contacts) for p in profiles],
        )  # fmt: skip
    if gone:
        await conn.execute(
            "DELETE FROM customers c USING unnest($1::text[], $2::text[]) AS x(n, k)"
            " WHERE c.tenant_id = x.n AND c.customer_id = x.k",
            [t for t, _ in gone], [c for _, c in gone],
        )  # fmt: skip


async def directory_preferences(
    conn: Connection, people: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], Preferences]:
    """What the directory says of customers ("customer:<id>"): the channel they prefer
    (then email), language and time zone."""
    customers = {(t, p.removeprefix("customer:")) for t, p in people if p.startswith("customer:")}
    found = {}
    columns = "tenant_id, customer_id, preferred_channel, language, time_zone, has_messenger"
    for r in await rows_by_tenant_key(conn, "customers", "customer_id", customers, columns):
        messenger = r["preferred_channel"] == ContactKind.TELEGRAM.value and r["has_messenger"]
        found[(r["tenant_id"], f"customer:{r['customer_id']}")] = Preferences(
            channels=(Channel.MESSENGER, Channel.EMAIL) if messenger else (Channel.EMAIL,),
            language=r["language"], time_zone=r["time_zone"] or "UTC",
            addresses={Channel.MESSENGER: "directory"} if r["has_messenger"] else {},
        )  # fmt: skip
    return found
