"""A service's copy of the tenant registry, and the gate that reads it."""

from datetime import UTC, datetime, timedelta

import asyncpg

from helpdesk_contracts import EventEnvelope, TenantChanged, tenant_stream
from helpdesk_runtime.tenants import TenantGate, known, replicate

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def record(tenant: str, at: datetime, suspended: bool = False) -> EventEnvelope[TenantChanged]:
    envelope = EventEnvelope.new(
        TenantChanged(name=f"Tenant {tenant}", suspended_at=at if suspended else None),
        tenant_id=tenant, producer="ticketing", aggregate_id=tenant_stream(tenant),
    )  # fmt: skip
    return envelope.model_copy(update={"occurred_at": at})


async def test_the_latest_registration_of_each_tenant_is_kept(pool: asyncpg.Pool) -> None:
    gate = TenantGate(lambda: pool, ttl_s=0)
    assert await gate.refusal("acme") == "tenant 'acme' is not registered with this deployment"
    async with pool.acquire() as conn:
        await replicate(conn, [record("acme", T0), record("globex", T0)])
        # A batch holds a tenant's records in order: the last one is its state.
        later = T0 + timedelta(hours=1)
        await replicate(conn, [record("acme", later, suspended=True), record("acme", later)])
        assert await known(conn, ["acme", "globex", "initech"]) == {"acme", "globex"}
        await replicate(conn, [record("globex", later, suspended=True)])
        assert await known(conn, ["acme", "globex"]) == {"acme"}
        # Applied in the order read, whatever the publishers' clocks said: resumed by a
        # publisher whose clock is behind, then suspended again.
        await replicate(conn, [record("globex", T0)])
        assert await known(conn, ["acme", "globex"]) == {"acme", "globex"}
        await replicate(conn, [record("globex", T0, suspended=True)])
    assert await gate.refusal("globex") == "tenant 'globex' is suspended"
    assert await gate.refusal("acme") is None
