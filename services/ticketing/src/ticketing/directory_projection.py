"""The directory's read model: customers, their identities, organisations and their
domains, kept by re-folding each changed record with the domain's fold, in the append's
transaction (an inline projection of the event store, like the ticket list)."""

import json
from collections.abc import Sequence
from typing import Any

from helpdesk_contracts import CustomerRegistered, EventEnvelope, OrganisationRegistered
from helpdesk_runtime.db import Connection
from ticketing.domain.directory import Customer, OrganisationRecord

Envelope = EventEnvelope[Any]


async def upsert(conn: Connection, changed: Sequence[Sequence[Envelope]]) -> None:
    """Write the rows of the customers and organisations among the changed streams."""
    customers = [h for h in changed if h and isinstance(h[0].payload, CustomerRegistered)]
    organisations = [h for h in changed if h and isinstance(h[0].payload, OrganisationRegistered)]
    if customers:
        await _customers(conn, customers)
    if organisations:
        await _organisations(conn, organisations)


async def _customers(conn: Connection, histories: Sequence[Sequence[Envelope]]) -> None:
    rows, owned = [], []
    for history in histories:
        c = Customer.from_history(history)
        assert c is not None
        rows.append((
            c.tenant_id, c.customer_id, c.version, c.profile.name, c.profile.organisation_id,
            c.merged_into, list(c.merged_ids), c.profile.model_dump_json(), json.dumps(c.synced),
            history[0].occurred_at, history[-1].occurred_at,
        ))  # fmt: skip
        owned += [(c.tenant_id, kind, value, c.customer_id) for kind, value in c.identities]
    await conn.executemany(
        """
        INSERT INTO customers (tenant_id, customer_id, version, name, organisation_id,
            merged_into, merged_ids, profile, synced, registered_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11)
        ON CONFLICT (tenant_id, customer_id) DO UPDATE SET version = excluded.version,
            name = excluded.name, organisation_id = excluded.organisation_id,
            merged_into = excluded.merged_into, merged_ids = excluded.merged_ids,
            profile = excluded.profile,
            synced = excluded.synced, updated_at = excluded.updated_at
        WHERE customers.version < excluded.version
        """,
        rows,
    )
    # Deleted first for every changed customer, then inserted: a merge moves identities
    # from one of them to another in the same append.
    await conn.execute(
        "DELETE FROM customer_identities i USING unnest($1::text[], $2::text[]) AS x(t, c)"
        " WHERE i.tenant_id = x.t AND i.customer_id = x.c",
        [r[0] for r in rows], [r[1] for r in rows],
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO customer_identities (tenant_id, kind, value, customer_id)"
        " VALUES ($1, $2, $3, $4)",
        owned,
    )


async def _organisations(conn: Connection, histories: Sequence[Sequence[Envelope]]) -> None:
    rows, domains = [], []
    for history in histories:
        o = OrganisationRecord.from_history(history)
        assert o is not None
        assert o.profile is not None
        p = o.profile
        rows.append((
            o.tenant_id, o.organisation_id, o.version, p.name, p.tier, p.account_manager_id,
            p.model_dump_json(), json.dumps(o.synced), history[0].occurred_at,
            history[-1].occurred_at,
        ))  # fmt: skip
        domains += [(o.tenant_id, d, o.organisation_id) for d in p.domains]
    await conn.executemany(
        """
        INSERT INTO organisations (tenant_id, organisation_id, version, name, tier,
            account_manager_id, profile, synced, registered_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9, $10)
        ON CONFLICT (tenant_id, organisation_id) DO UPDATE SET version = excluded.version,
            name = excluded.name, tier = excluded.tier,
            account_manager_id = excluded.account_manager_id, profile = excluded.profile,
            synced = excluded.synced, updated_at = excluded.updated_at
        WHERE organisations.version < excluded.version
        """,
        rows,
    )
    await conn.execute(
        "DELETE FROM organisation_domains d USING unnest($1::text[], $2::text[]) AS x(t, o)"
        " WHERE d.tenant_id = x.t AND d.organisation_id = x.o",
        [r[0] for r in rows], [r[1] for r in rows],
    )  # fmt: skip
    await conn.executemany(
        "INSERT INTO organisation_domains (tenant_id, domain, organisation_id) VALUES ($1, $2, $3)",
        domains,
    )


async def clear(conn: Connection) -> None:
    """Before a rebuild."""
    await conn.execute(
        "TRUNCATE customers, customer_identities, organisations, organisation_domains"
    )
