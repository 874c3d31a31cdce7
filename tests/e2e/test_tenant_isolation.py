"""Row-level security with the services running: two tenants use ticketing and the SLA
service at once, and every tenant table of both databases, read without a tenant filter,
shows each tenant's scope its own rows only and a connection without a scope nothing."""

import uuid
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr

from helpdesk_runtime.auth import Principal, Role
from helpdesk_runtime.tokens import mint
from ticketing.config import Settings

from support.chaos import eventually, ticketing_and_sla
from support.isolation import isolation_breaches, tenant_tables_not_isolated
from support.service import register_tenants


async def _tenants_in(database_url: str, table: str, tenants: list[str]) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        query = f"SELECT DISTINCT tenant_id FROM {table} WHERE tenant_id = ANY($1)"
        return {r["tenant_id"] for r in await conn.fetch(query, tenants)}
    finally:
        await conn.close()


async def test_every_tenant_table_keeps_each_tenant_to_its_own_rows(
    database_url: str, sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    tenants = [f"t{uuid.uuid4().hex[:8]}" for _ in range(2)]
    await register_tenants(database_url, tenants)
    settings = Settings(database_url=SecretStr(database_url))
    async with (
        ticketing_and_sla(database_url, sla_database_url, kafka_bootstrap, tmp_path,
                          "isolation") as (ticketing, _),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{ticketing.port}") as http,
    ):  # fmt: skip
        for tenant in tenants:
            token = mint(settings, Principal(tenant, "ada", Role.ADMIN), ttl_s=600)
            await _use(http, {"Authorization": f"Bearer {token}"})

        async def clocks_everywhere() -> bool:  # the SLA service's, and ticketing's copy
            return (
                await _tenants_in(sla_database_url, "clocks", tenants)
                == await _tenants_in(database_url, "sla_clocks", tenants)
                == set(tenants)
            )

        await eventually(clocks_everywhere, timeout_s=60)

    for url, used in ((database_url, TICKETING_TABLES), (sla_database_url, SLA_TABLES)):
        conn = await asyncpg.connect(url)
        try:  # the registries are read to decide who is a tenant at all
            assert await tenant_tables_not_isolated(conn) <= {"tenants", "publisher_tenants"}
        finally:
            await conn.close()
        breaches, held = await isolation_breaches(url, tenants)
        assert breaches == []
        # Not a vacuous pass: these tables hold rows of both tenants.
        assert {t for t, rows in held.items() if set(tenants) <= rows.keys()} >= used


TICKETING_TABLES = {
    "events", "inbox", "subject_keys", "ticket_list", "customers",
    "customer_identities", "organisations", "attachments", "blobs", "canned_responses",
    "custom_fields", "agent_groups", "group_members", "audit_log", "sla_clocks",
}  # fmt: skip
SLA_TABLES = {"inbox", "sla_tickets", "clocks", "ticket_events"}  # the outbox is emptied


async def _use(http: httpx.AsyncClient, admin: dict[str, str]) -> None:
    """A little of everything ticketing keeps per tenant."""
    contacts = [{"kind": "email", "address": "kim@example.org"}]
    org = {"organisation_id": "org-1", "name": "Initrode", "domains": ["example.org"]}
    assert (await http.post("/v1/organisations", headers=admin, json=org)).status_code == 201
    customer = {"customer_id": "cus-1", "name": "Kim", "contacts": contacts}
    assert (await http.post("/v1/customers", headers=admin, json=customer)).status_code == 201
    upload = await http.post("/v1/attachments", headers=admin,
                             files={"file": ("a.txt", b"hello", "text/plain")})  # fmt: skip
    assert upload.status_code == 201, upload.text
    opened = await http.post("/v1/tickets", headers=admin, json={
        "subject": "Printer", "description": "It jams.",
        "attachment_ids": [upload.json()["attachment_id"]],
        "requester": {"customer_id": "cus-1", "name": "Kim", "email": "kim@example.org"},
    })  # fmt: skip
    assert opened.status_code == 201, opened.text
    ticket = opened.json()["id"]
    reply = await http.post(f"/v1/tickets/{ticket}/replies", headers=admin, json={"body": "On it"})
    assert reply.status_code == 200, reply.text
    macro = {"name": "Refund", "body": "Refunded."}
    assert (await http.post("/v1/canned-responses", json=macro, headers=admin)).status_code == 201
    plan = {"key": "plan", "title": "Plan", "type": "dropdown", "options": ["free", "pro"]}
    assert (await http.put("/v1/fields/plan", json=plan, headers=admin)).is_success
    group = {"name": "Billing", "strategy": "round_robin", "members": ["ann", "bob"]}
    assert (await http.put("/v1/groups/billing", json=group, headers=admin)).is_success
