"""Row-level security: a connection sees and writes the rows of the tenants in its scope only.

The queries here forget their tenant filter on purpose: the database, not the query, has to
keep the other tenants' rows out of reach."""

from collections.abc import AsyncIterator, Sequence
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from fastapi import APIRouter, Depends

from helpdesk_contracts import EventEnvelope, TicketOpened
from helpdesk_runtime import audit, tenancy
from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.event_log import COPY_FROM, insert_in_commit_order
from helpdesk_runtime.http import create_app
from helpdesk_runtime.http_auth import HttpAuth
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.service import ConsumerSpec, ServiceRuntime
from helpdesk_runtime.tokens import mint

from support.chaos import eventually
from support.events import opened
from support.runtime import service_settings

TENANTS = ("acme", "globex", "initech")
SEEN = "SELECT coalesce(array_agg(DISTINCT tenant_id ORDER BY tenant_id), '{}') FROM audit_log"


@pytest.fixture
async def seeded(pool: asyncpg.Pool) -> asyncpg.Pool:
    """An audit entry per tenant, written by the platform (every tenant in scope)."""
    async with pool.acquire() as conn:
        for tenant in TENANTS:
            await audit.record(conn, tenant_id=tenant, actor="ops", entity="policy",
                               entity_id="p-1", action=audit.Action.CREATED)  # fmt: skip
    return pool


async def seen(pool: asyncpg.Pool) -> list[str]:
    async with pool.acquire() as conn:
        return list(await conn.fetchval(SEEN))


async def test_a_connection_sees_the_tenants_in_its_scope_and_no_others(
    seeded: asyncpg.Pool,
) -> None:
    assert await seen(seeded) == sorted(TENANTS)  # the tests' own scope: every tenant
    with tenancy.scoped_to(()):
        assert await seen(seeded) == []
    with tenancy.scoped_to(["acme"]):
        assert await seen(seeded) == ["acme"]
        with tenancy.scoped_to(["globex", "initech"]):  # a nested scope replaces, never adds
            assert await seen(seeded) == ["globex", "initech"]
        assert await seen(seeded) == ["acme"]
    # A tenant id is one array element whatever it contains: it cannot widen the scope.
    for forged in ('acme","globex', "acme,globex", "*", "{acme,globex}"):
        with tenancy.scoped_to([forged]):
            assert await seen(seeded) == []


async def test_a_connection_with_no_scope_set_sees_nothing(
    seeded: asyncpg.Pool, database_url: str
) -> None:
    """What a session outside the pool sees, e.g. psql as the service's role."""
    conn = await asyncpg.connect(database_url, server_settings={tenancy.SETTING: ""})
    try:
        assert await conn.fetchval(SEEN) == []
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0
    finally:
        await conn.close()


async def test_another_tenants_rows_cannot_be_written(seeded: asyncpg.Pool) -> None:
    with tenancy.scoped_to(["acme"]):
        async with seeded.acquire() as conn:
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await audit.record(conn, tenant_id="globex", actor="a-1", entity="policy",
                                   entity_id="p-2", action=audit.Action.CREATED)  # fmt: skip
            moved = await conn.execute("UPDATE audit_log SET actor = 'mallory'")
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await conn.execute("UPDATE audit_log SET tenant_id = 'globex'")  # moving out
            deleted = await conn.execute("DELETE FROM audit_log")
    assert (moved, deleted) == ("UPDATE 1", "DELETE 1")  # acme's row only
    rows = await seeded.fetch("SELECT tenant_id, actor FROM audit_log ORDER BY tenant_id")
    assert [tuple(r) for r in rows] == [("globex", "ops"), ("initech", "ops")]


async def test_the_service_role_is_bound_by_the_policies(pool: asyncpg.Pool) -> None:
    """It owns its tables; FORCE makes the policies bind the owner, and it cannot bypass."""
    role = await pool.fetchrow(
        "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    )
    assert role is not None
    assert tuple(role) == (False, False)
    tables = await pool.fetch(
        "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,"
        "       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies"
        "  FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace"
        "   AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid"
        "                AND a.attname = 'tenant_id') OR c.relname = 'blobs')"
    )
    assert {r["relname"] for r in tables} >= {"events", "inbox", "audit_log", "blobs", "timers"}
    unprotected = [r["relname"] for r in tables if tuple(r)[1:] != (True, True, 1)]
    assert unprotected == ["tenants"]  # the registry, read before any tenant is trusted


async def test_files_are_kept_to_their_tenant_by_their_key(pool: asyncpg.Pool) -> None:
    insert = "INSERT INTO blobs (key, content_type, data) VALUES ($1, 'text/plain', '')"
    await pool.execute(insert, "acme/a-1")
    await pool.execute(insert, "globex/g-1")
    with tenancy.scoped_to(["acme"]):
        assert [r["key"] for r in await pool.fetch("SELECT key FROM blobs")] == ["acme/a-1"]
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await pool.execute(insert, "globex/g-2")


async def record_tenants_seen(
    conn: Connection, batch: Sequence[EventEnvelope[Any]]
) -> Sequence[Rejection]:
    """A handler that reads without a tenant filter: it must see its batch's tenants only."""
    await conn.execute(
        "INSERT INTO sightings (batch, seen, events) VALUES ($1, (" + SEEN + "), $2)",
        sorted({e.tenant_id for e in batch}),
        len(batch),
    )
    return []


@pytest.fixture
async def consuming(
    seeded: asyncpg.Pool, database_url: str, kafka_bootstrap: str, new_topic: Any
) -> AsyncIterator[str]:
    # Not a tenant table: what the handler saw is kept whatever its scope.
    await seeded.execute("CREATE TABLE sightings (batch text[], seen text[], events int)")
    topic = await new_topic(1)
    runtime = ServiceRuntime(
        service_settings(database_url, kafka_bootstrap),
        consumers=[
            ConsumerSpec(
                topic=topic,
                group_id=f"tests-{uuid4().hex[:8]}",
                handler=record_tenants_seen,
                accepts=frozenset({TicketOpened.event_type}),
            )
        ],
    )
    await runtime.start()
    await runtime.connected()
    yield topic
    await runtime.stop()


async def test_a_consumer_batch_sees_the_tenants_of_its_events_only(
    consuming: str, seeded: asyncpg.Pool, producer: Producer
) -> None:
    events = [opened(uuid4(), tenant) for tenant in ("acme", "globex", "acme")]
    await producer.send_many([OutgoingMessage(consuming, e.to_json(), key=b"k") for e in events])

    async def all_applied() -> bool:  # in one batch or more
        return bool(await seeded.fetchval("SELECT sum(events) = 3 FROM sightings"))

    await eventually(all_applied, timeout_s=30)
    for batch, saw in await seeded.fetch("SELECT batch, seen FROM sightings"):
        assert saw == batch  # initech's entry is never in sight


@pytest.fixture
async def app_client(seeded: asyncpg.Pool, database_url: str, kafka_bootstrap: str) -> Any:
    runtime = ServiceRuntime(service_settings(database_url, kafka_bootstrap))

    def routes(auth: HttpAuth) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/seen")
        async def seen_by_caller(_: Principal = Depends(auth.principal)) -> list[str]:  # noqa: B008
            async with runtime.pool.acquire() as conn:
                return list(await conn.fetchval(SEEN))

        @router.get("/seen-anonymously")
        async def seen_without_a_token() -> list[str]:
            async with runtime.pool.acquire() as conn:
                return list(await conn.fetchval(SEEN))

        return [router]

    app = create_app(runtime, title="t", version="1", description="t", api=routes)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield runtime, client
    finally:
        await runtime.stop()


async def test_a_request_sees_its_callers_tenant_only(app_client: Any) -> None:
    runtime, client = app_client
    for tenant in ("globex", "acme"):
        token = mint(runtime.settings, Principal(tenant, "agent-1", Role.AGENT), ttl_s=60)
        reply = await client.get("/seen", headers={"Authorization": f"Bearer {token}"})
        assert reply.json() == [tenant]
    assert (await client.get("/seen-anonymously")).json() == []
    assert tenancy.current_scope() == tenancy.ALL  # the request's scope ended with it


@pytest.mark.parametrize("count", [3, COPY_FROM + 8])  # one INSERT statement; COPY
async def test_a_scoped_batch_is_appended_in_order_and_kept_to_its_tenants(
    pool: asyncpg.Pool, count: int
) -> None:
    """COPY cannot write a table under row-level security: a batch goes through a staging
    table, and its rows must still take their positions in the order given."""
    tickets = [uuid4() for _ in range(count)]
    envelopes = [opened(t, "acme" if i % 2 else "globex") for i, t in enumerate(tickets)]
    with tenancy.scoped_to(["acme", "globex"]):
        async with pool.acquire() as conn, conn.transaction():
            await insert_in_commit_order(conn, "events", envelopes)
    rows = await pool.fetch("SELECT stream_id, tenant_id FROM events ORDER BY position")
    assert [(r["stream_id"], r["tenant_id"]) for r in rows] == [
        (e.aggregate_id, e.tenant_id) for e in envelopes
    ]
    foreign = [opened(uuid4(), "globex") for _ in range(count)]
    with tenancy.scoped_to(["acme"]):
        async with pool.acquire() as conn, conn.transaction():
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await insert_in_commit_order(conn, "events", foreign)
