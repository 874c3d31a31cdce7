"""Changes to a tenant's configuration leave a trace that admins can read."""

from collections.abc import AsyncIterator

import asyncpg
import pytest

from support.service import TicketingService, ticketing_service


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def test_who_changed_what_and_when_is_recorded_for_admins(service: TicketingService) -> None:
    admin = service.auth(agent="ada", role="admin")
    lead = service.auth(agent="sam", role="supervisor")
    plan = {"key": "plan", "title": "Plan", "type": "dropdown", "options": ["free", "pro"]}
    assert (await service.client.put("/v1/fields/plan", json=plan, headers=admin)).is_success
    wider = {**plan, "options": ["free", "pro", "enterprise"]}
    assert (await service.client.put("/v1/fields/plan", json=wider, headers=admin)).is_success
    macro = {"name": "Refund", "body": "Refunded, {{requester.first_name}}."}
    created = await service.client.post("/v1/canned-responses", json=macro, headers=lead)
    assert created.status_code == 201, created.text
    group = {"name": "Billing", "strategy": "round_robin", "members": ["ann", "bob"]}
    assert (await service.client.put("/v1/groups/billing", json=group, headers=admin)).is_success
    assert (await service.client.delete("/v1/fields/plan", headers=admin)).status_code == 204
    refused = await service.client.post("/v1/canned-responses", json=macro, headers=lead)
    assert refused.status_code == 409  # a refused change leaves no entry

    page = await service.client.get("/v1/audit", headers=admin)
    assert page.status_code == 200, page.text
    entries = page.json()["items"]
    assert [(e["entity"], e["action"], e["actor"]) for e in entries] == [
        ("custom_field", "deleted", "ada"),
        ("group", "created", "ada"),
        ("canned_response", "created", "sam"),
        ("custom_field", "updated", "ada"),
        ("custom_field", "created", "ada"),
    ]
    updated = entries[3]
    assert updated["before"]["options"] == ["free", "pro"]
    assert updated["after"]["options"] == ["free", "pro", "enterprise"]
    assert entries[0]["before"]["options"] == ["free", "pro", "enterprise"]
    assert entries[0]["after"] is None
    assert entries[2]["actor_role"] == "supervisor"
    assert entries[2]["entity_id"] == created.json()["id"]
    assert [m["agent_id"] for m in entries[1]["after"]["members"]] == ["ann", "bob"]

    fields_only = await service.client.get(
        "/v1/audit", params={"entity": "custom_field", "limit": 2}, headers=admin
    )
    older = fields_only.json()
    assert [e["action"] for e in older["items"]] == ["deleted", "updated"]
    rest = await service.client.get(
        "/v1/audit",
        params={"entity": "custom_field", "before": older["next_before"]},
        headers=admin,
    )
    assert [e["action"] for e in rest.json()["items"]] == ["created"]

    assert (await service.client.get("/v1/audit", headers=lead)).status_code == 403
    other_tenant = service.auth(tenant="globex", role="admin")
    assert (await service.client.get("/v1/audit", headers=other_tenant)).json()["items"] == []


async def test_a_change_whose_audit_entry_fails_is_not_made(
    service: TicketingService, database_url: str
) -> None:
    # The service's own role owns the table: it can make the audit refuse one kind of entry.
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "ALTER TABLE audit_log ADD CONSTRAINT no_fields CHECK (entity <> 'custom_field')"
        )
    finally:
        await conn.close()
    admin = service.auth(role="admin")
    plan = {"key": "plan", "title": "Plan", "type": "text"}
    failed = await service.client.put("/v1/fields/plan", json=plan, headers=admin)
    assert failed.status_code == 500
    assert (await service.client.get("/v1/fields", headers=admin)).json() == []  # rolled back
    group = {"name": "Billing", "members": ["ann"]}
    assert (await service.client.put("/v1/groups/g1", json=group, headers=admin)).is_success
    entries = (await service.client.get("/v1/audit", headers=admin)).json()["items"]
    assert [e["entity"] for e in entries] == ["group"]
