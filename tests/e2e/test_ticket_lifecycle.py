"""Agents working tickets through the real service: commands, lists, authorisation, rebuild."""

import time
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import asyncpg
import jwt
import pytest

from helpdesk_contracts import parse_envelope
from ticketing.projection import rebuild

from support.fixtures import find_on_topic
from support.privacy import DEV_KEYS
from support.service import TicketingService, ticketing_service

TICKETS = "ticketing.tickets.v2"


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def _open(service: TicketingService, tenant: str = "acme", **fields: Any) -> dict[str, Any]:
    body = {
        "subject": "Invoice shows the wrong amount",
        "description": "I was charged twice this month.",
        "requester": {"customer_id": "c-1", "name": "Anna"},
        **fields,
    }
    response = await service.client.post("/v1/tickets", json=body, headers=service.auth(tenant))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_ticket_is_worked_from_new_to_closed(service: TicketingService) -> None:
    agent = service.auth()
    order_field = {"key": "order_id", "title": "Order", "type": "text"}
    defined = await service.client.put(
        "/v1/fields/order_id", json=order_field, headers=service.auth(role="admin")
    )
    assert defined.status_code == 200, defined.text
    t = await _open(service)
    url = f"/v1/tickets/{t['id']}"

    r = await service.client.post(
        f"{url}/replies", json={"body": "Could you send the invoice?", "status": "pending"},
        headers={**agent, "If-Match": '"1"'},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["public_replies"], r.headers["etag"]) == (
        "pending",
        1,
        '"3"',
    )

    stale = await service.client.patch(
        url, json={"priority": "urgent"}, headers={**agent, "If-Match": '"1"'}
    )
    assert stale.status_code == 409
    assert "version 3" in stale.json()["detail"]

    r = await service.client.patch(
        url,
        json={"priority": "urgent", "tags": ["VIP", "billing"], "assignee_id": "agent-9",
              "group_id": "billing", "custom_fields": {"order_id": "A-1042"}},
        headers={**agent, "If-Match": r.headers["etag"]},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    state = r.json()
    assert (state["priority"], state["assignee_id"], sorted(state["tags"])) == (
        "urgent", "agent-9", ["billing", "vip"],
    )  # fmt: skip
    assert (await service.client.get(url, headers=agent)).json() == state  # as the log says
    await service.client.post(f"{url}/notes", json={"body": "Refund approved"}, headers=agent)

    illegal = await service.client.patch(url, json={"status": "closed"}, headers=agent)
    assert illegal.status_code == 422
    assert "only a solved ticket can be closed" in illegal.json()["detail"]

    for step in ({"status": "solved", "resolution": "refunded"}, {"status": "closed"}):
        assert (await service.client.patch(url, json=step, headers=agent)).status_code == 200
    refused = await service.client.post(f"{url}/notes", json={"body": "late"}, headers=agent)
    assert refused.status_code == 422
    assert "closed" in refused.json()["detail"]

    timeline = (await service.client.get(f"{url}/timeline", headers=agent)).json()
    assert [e["event_type"] for e in timeline] == [
        "TicketOpened", "ResponseSent", "TicketStatusChanged", "TicketPriorityChanged",
        "TicketAssigned", "TicketTagsChanged", "TicketFieldsChanged", "InternalNoteAdded",
        "TicketSolved", "TicketClosed",
    ]  # fmt: skip


async def test_lists_filter_sort_search_and_page_with_a_cursor(service: TicketingService) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    agent = service.auth(tenant, agent="agent-5")
    for i, priority in enumerate(["low", "urgent", "normal", "high", "urgent", "normal", "low"]):
        await _open(service, tenant, subject=f"Ticket {i}", priority=priority,
                    tags=["billing"] if i % 2 else ["login"])  # fmt: skip
    searched = await _open(service, tenant, subject="Refund", description="parcel never arrived")
    await service.client.patch(
        f"/v1/tickets/{searched['id']}", json={"assignee_id": "agent-5"}, headers=agent
    )

    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, "sort": "number", "order": "asc"}
        if cursor:
            params["cursor"] = cursor
        page = (await service.client.get("/v1/tickets", params=params, headers=agent)).json()
        seen += [t["number"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(1, 9))

    async def numbers(**params: Any) -> list[int]:
        r = await service.client.get("/v1/tickets", params=params, headers=agent)
        assert r.status_code == 200, r.text
        return sorted(t["number"] for t in r.json()["items"])

    assert await numbers(priority="urgent") == [2, 5]
    assert await numbers(tag="billing") == [2, 4, 6]
    assert await numbers(q="parcel") == [8]
    assert await numbers(assignee_id="agent-5") == [8]
    assert await numbers(opened_from="2020-01-01T00:00:00Z") == list(range(1, 9))
    assert await numbers(opened_to="2020-01-01T00:00:00Z") == []
    assert await numbers(updated_from="2999-01-01T00:00:00Z") == []
    queue = (await service.client.get("/v1/queue", headers=agent)).json()
    assert [t["number"] for t in queue["items"]] == [8]
    counts = (await service.client.get("/v1/tickets/counts", headers=agent)).json()
    assert counts["new"] == 8
    assert counts["solved"] == 0
    bad = await service.client.get("/v1/tickets", params={"cursor": "garbage"}, headers=agent)
    assert bad.status_code == 400


async def test_authentication_and_roles_are_enforced(service: TicketingService) -> None:
    t = await _open(service)
    url = f"/v1/tickets/{t['id']}"
    assert (await service.client.get(url)).status_code == 401
    forged = jwt.encode({"sub": "a", "tenant_id": "acme", "role": "admin",
                         "exp": int(time.time()) + 60}, "not-the-secret-" * 3)  # fmt: skip
    r = await service.client.get(url, headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    secret = service.settings.jwt_secret.get_secret_value()  # type: ignore[union-attr]
    expired = jwt.encode({"sub": "a", "tenant_id": "acme", "role": "agent",
                          "exp": int(time.time()) - 3600}, secret)  # fmt: skip
    r = await service.client.get(url, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert "expired" in r.json()["detail"]

    other = service.auth(tenant="globex")
    assert (await service.client.get(url, headers=other)).status_code == 404
    hijack = await service.client.post(f"{url}/notes", json={"body": "x"}, headers=other)
    assert hijack.status_code == 404
    solve = await service.client.post(
        f"{url}/solve-problem", json={"message": "fixed"}, headers=service.auth(role="agent")
    )
    assert solve.status_code == 403


async def test_solving_a_problem_solves_its_incidents_and_tells_each_requester(
    service: TicketingService, kafka_bootstrap: str
) -> None:
    agent, supervisor = service.auth(), service.auth(role="supervisor")
    problem = await _open(service, subject="Billing run charged twice", type="problem")
    incidents = [await _open(service, type="incident") for _ in range(3)]
    for incident in incidents:
        r = await service.client.post(
            f"/v1/tickets/{incident['id']}/problem", json={"problem_id": problem["id"]},
            headers=agent,
        )  # fmt: skip
        assert r.status_code == 200, r.text
    r = await service.client.post(
        f"/v1/tickets/{problem['id']}/solve-problem",
        json={"message": "The double charge is refunded."}, headers=supervisor,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert [t["status"] for t in r.json()] == ["solved"] * 4

    for incident in incidents:
        # Opened, linked, the problem's reply, solved: the relay publishes them as it goes.
        records = await find_on_topic(
            kafka_bootstrap, TICKETS, lambda rec, i=incident: rec.key == i["id"].encode(),
            until=4,
        )  # fmt: skip
        kinds = [parse_envelope(rec.value).event_type for rec in records]
        assert kinds[-2:] == ["ResponseSent", "TicketSolved"]

    duplicate = await _open(service)
    merged = await service.client.post(
        f"/v1/tickets/{duplicate['id']}/merge", json={"into_ticket_id": incidents[0]["id"]},
        headers=agent,
    )  # fmt: skip
    assert merged.status_code == 200, merged.text
    assert merged.json()[0]["status"] == "closed"
    assert merged.json()[1]["duplicates"] == [duplicate["id"]]


async def test_a_rebuild_gives_the_same_ticket_list_as_the_live_projection(
    service: TicketingService, pool: asyncpg.Pool
) -> None:
    agent = service.auth()
    for i in range(5):
        t = await _open(service, subject=f"Printer {i} jams", tags=["hardware"])
        url = f"/v1/tickets/{t['id']}"
        await service.client.post(f"{url}/replies", json={"body": f"Try {i}"}, headers=agent)
        await service.client.patch(
            url, json={"priority": "high", "tags": ["x", "y"]}, headers=agent
        )
        if i % 2:
            await service.client.patch(url, json={"status": "solved"}, headers=agent)

    query = "SELECT *, search::text AS search_text FROM ticket_list ORDER BY tenant_id, number"
    live = [dict(r) for r in await pool.fetch(query)]
    assert len(live) == 5
    assert await rebuild(pool, DEV_KEYS) == 5
    rebuilt = [dict(r) for r in await pool.fetch(query)]
    assert rebuilt == live


async def test_supervisors_keep_canned_responses_and_agents_apply_them(
    service: TicketingService,
) -> None:
    agent, supervisor = service.auth(), service.auth(role="supervisor")
    macro = {
        "name": "Refund issued",
        "body": "Hi {{requester.first_name}}, ticket #{{ticket.number}} is refunded.",
        "status": "solved",
        "add_tags": ["refunded"],
    }
    assert (
        await service.client.post("/v1/canned-responses", json=macro, headers=agent)
    ).status_code == 403
    created = await service.client.post("/v1/canned-responses", json=macro, headers=supervisor)
    assert created.status_code == 201, created.text
    again = await service.client.post("/v1/canned-responses", json=macro, headers=supervisor)
    assert again.status_code == 409
    bad = {**macro, "name": "Bad", "body": "Dear {{customer.title}}"}
    refused = await service.client.post("/v1/canned-responses", json=bad, headers=supervisor)
    assert refused.status_code == 422
    listed = (await service.client.get("/v1/canned-responses", headers=agent)).json()
    assert [m["name"] for m in listed] == ["Refund issued"]

    t = await _open(service, requester={"customer_id": "c-9", "name": "Maria Ivanova"})
    applied = await service.client.post(
        f"/v1/tickets/{t['id']}/canned-responses/{created.json()['id']}", headers=agent
    )
    assert applied.status_code == 200, applied.text
    assert (applied.json()["status"], applied.json()["tags"]) == ("solved", ["refunded"])
    timeline = (await service.client.get(f"/v1/tickets/{t['id']}/timeline", headers=agent)).json()
    reply = next(e for e in timeline if e["event_type"] == "ResponseSent")
    assert reply["data"]["body"] == f"Hi Maria, ticket #{t['number']} is refunded."
    other_tenant = service.auth(tenant="globex")
    assert (await service.client.get("/v1/canned-responses", headers=other_tenant)).json() == []


async def test_custom_fields_are_typed_per_tenant(service: TicketingService) -> None:
    admin, agent = service.auth(role="admin"), service.auth()
    plan = {"key": "plan", "title": "Plan", "type": "dropdown", "options": ["free", "pro"]}
    as_agent = await service.client.put("/v1/fields/plan", json=plan, headers=agent)
    assert as_agent.status_code == 403
    assert (
        await service.client.put("/v1/fields/plan", json=plan, headers=admin)
    ).status_code == 200
    listed = (await service.client.get("/v1/fields", headers=agent)).json()
    assert [f["key"] for f in listed] == ["plan"]

    t = await _open(service, custom_fields={"plan": "pro"})
    assert t["custom_fields"] == {"plan": "pro"}
    wrong = await service.client.patch(
        f"/v1/tickets/{t['id']}", json={"custom_fields": {"plan": "gold"}}, headers=agent
    )
    assert wrong.status_code == 422
    assert "'plan' must be one of ['free', 'pro']" in wrong.json()["detail"]
    unknown = await service.client.post(
        "/v1/tickets",
        json={"subject": "s", "description": "d", "requester": {"customer_id": "c"},
              "custom_fields": {"colour": "red"}},
        headers=agent,
    )  # fmt: skip
    assert unknown.status_code == 422
    assert "'colour' is not a custom field" in unknown.json()["detail"]
    other = service.auth(tenant="globex")
    assert (await service.client.get("/v1/fields", headers=other)).json() == []


async def test_tickets_are_assigned_automatically_by_turn_load_and_availability(
    service: TicketingService,
) -> None:
    admin, agent = service.auth(role="admin"), service.auth()
    group = {"name": "Billing", "strategy": "round_robin", "members": ["ann", "bob", "cat"]}
    r = await service.client.put("/v1/groups/billing", json=group, headers=admin)
    assert r.status_code == 200, r.text

    async def auto_assign(group_id: str = "billing") -> Any:
        t = await _open(service)
        return await service.client.post(
            f"/v1/tickets/{t['id']}/auto-assign", json={"group_id": group_id}, headers=agent
        )

    turns = [(await auto_assign()).json()["assignee_id"] for _ in range(4)]
    assert turns == ["ann", "bob", "cat", "ann"]

    off = await service.client.put(
        "/v1/agents/me/availability", json={"available": False}, headers=service.auth(agent="bob")
    )
    assert off.status_code == 204
    assert (await auto_assign()).json()["assignee_id"] == "cat"  # bob's turn, but bob is away

    least = {**group, "strategy": "least_loaded"}
    await service.client.put("/v1/groups/billing", json=least, headers=admin)
    assert (await auto_assign()).json()[
        "assignee_id"
    ] == "ann"  # ann 2 open, cat 2: ann waited longer

    for name in ("ann", "cat"):
        await service.client.put(
            f"/v1/agents/{name}/availability", json={"available": False},
            headers=service.auth(role="supervisor"),
        )  # fmt: skip
    queued = (await auto_assign()).json()
    assert (queued["assignee_id"], queued["group_id"]) == (None, "billing")
    assert (await auto_assign("nope")).status_code == 404
    listed = (await service.client.get("/v1/groups", headers=agent)).json()
    assert [(m["agent_id"], m["available"]) for m in listed[0]["members"]] == [
        ("ann", False), ("bob", False), ("cat", False),
    ]  # fmt: skip


async def test_input_the_events_refuse_gets_422_with_the_reason_not_500(
    service: TicketingService,
) -> None:
    t = await _open(service)
    too_long = "x" * 60
    r = await service.client.patch(
        f"/v1/tickets/{t['id']}", json={"tags": [too_long]}, headers=service.auth()
    )
    assert r.status_code == 422, r.text
    assert "tags" in r.text


async def test_values_the_database_cannot_store_get_422_not_500(service: TicketingService) -> None:
    admin = service.auth(role="admin")
    nul = "bad\x00name"
    r = await service.client.put("/v1/groups/g1", json={"name": nul, "members": []}, headers=admin)
    assert r.status_code == 422, r.text
    assert "cannot be stored" in r.json()["detail"]
    r = await service.client.get("/v1/tickets", params={"tag": nul}, headers=admin)
    assert r.status_code == 422, r.text
    macro = {"name": "m", "body": "hi", "add_tags": [""]}
    r = await service.client.post("/v1/canned-responses", json=macro, headers=admin)
    assert r.status_code == 422, r.text
