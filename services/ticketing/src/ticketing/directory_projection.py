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
        if c.erased:
            await forget(conn, c.tenant_id, [c.customer_id])
            continue
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
    # All of the changed customers' first, then theirs again: a merge moves identities from
    # one of them to another in the same append.
    await _replace_owned(conn, "customer_identities", _IDENTITY, [r[:2] for r in rows], owned)


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
    await _replace_owned(conn, "organisation_domains", _DOMAIN, [r[:2] for r in rows], domains)


_IDENTITY = ("tenant_id", "kind", "value", "customer_id")
_DOMAIN = ("tenant_id", "domain", "organisation_id")


async def _replace_owned(
    conn: Connection, table: str, columns: Sequence[str], owners: Sequence[Sequence[Any]],
    rows: Sequence[tuple[Any, ...]],
) -> None:  # fmt: skip
    """Replace by `rows` the rows of `table` these (tenant, owner) pairs own; `columns`
    name the tenant first and the owner last."""
    tenant, owner = columns[0], columns[-1]
    await conn.execute(
        f"DELETE FROM {table} o USING unnest($1::text[], $2::text[]) AS x(t, owner)"
        f" WHERE o.{tenant} = x.t AND o.{owner} = x.owner",
        [o[0] for o in owners], [o[1] for o in owners],
    )  # fmt: skip
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await conn.executemany(
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows
    )


async def forget(conn: Connection, tenant_id: str, customer_ids: Sequence[str]) -> None:
    """Drop these customers' rows and identities (erased on request)."""
    await conn.execute(
        "DELETE FROM customer_identities WHERE tenant_id = $1 AND customer_id = ANY($2::text[])",
        tenant_id, list(customer_ids),
    )  # fmt: skip
    await conn.execute(
        "DELETE FROM customers WHERE tenant_id = $1 AND customer_id = ANY($2::text[])",
        tenant_id, list(customer_ids),
    )  # fmt: skip


async def clear(conn: Connection) -> None:
    """Before a rebuild."""
    await conn.execute(
        "TRUNCATE customers, customer_identities, organisations, organisation_domains"
    )
