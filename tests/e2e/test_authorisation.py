"""Who may call what: every operation of every service's OpenAPI document, without a token
and with each role, and with a foreign tenant's ids. The roles are this file's table, the
operations come from the running services: an operation added without a line here fails.
And only tenants the deployment serves (registered, not suspended) may call at all."""

import re
from typing import Any
from uuid import uuid4

from helpdesk_runtime.auth import Role
from helpdesk_runtime.tenants import TenantGate, known
from ticketing import tenants

from support.chaos import eventually
from support.service import RunningService, sla_service, ticketing_service

TICKETING: dict[tuple[str, str], Role] = {
    ("GET", "/v1/tickets"): Role.AGENT,
    ("POST", "/v1/tickets"): Role.AGENT,
    ("GET", "/v1/queue"): Role.AGENT,
    ("GET", "/v1/tickets/counts"): Role.AGENT,
    ("GET", "/v1/tickets/{ticket_id}"): Role.AGENT,
    ("PATCH", "/v1/tickets/{ticket_id}"): Role.AGENT,
    ("GET", "/v1/tickets/{ticket_id}/timeline"): Role.AGENT,
    ("POST", "/v1/tickets/{ticket_id}/replies"): Role.AGENT,
    ("POST", "/v1/tickets/{ticket_id}/notes"): Role.AGENT,
    ("POST", "/v1/tickets/{ticket_id}/merge"): Role.AGENT,
    ("POST", "/v1/tickets/{ticket_id}/problem"): Role.AGENT,
    ("POST", "/v1/tickets/{ticket_id}/solve-problem"): Role.SUPERVISOR,
    ("GET", "/v1/stream"): Role.AGENT,
    ("POST", "/v1/stream-tokens"): Role.AGENT,
    ("GET", "/v1/canned-responses"): Role.AGENT,
    ("POST", "/v1/canned-responses"): Role.SUPERVISOR,
    ("DELETE", "/v1/canned-responses/{macro_id}"): Role.SUPERVISOR,
    ("POST", "/v1/tickets/{ticket_id}/canned-responses/{macro_id}"): Role.AGENT,
    ("GET", "/v1/fields"): Role.AGENT,
    ("PUT", "/v1/fields/{key}"): Role.ADMIN,
    ("DELETE", "/v1/fields/{key}"): Role.ADMIN,
    ("GET", "/v1/groups"): Role.AGENT,
    ("PUT", "/v1/groups/{group_id}"): Role.ADMIN,
    ("PUT", "/v1/agents/me/availability"): Role.AGENT,
    ("PUT", "/v1/agents/{agent_id}/availability"): Role.SUPERVISOR,
    ("POST", "/v1/tickets/{ticket_id}/auto-assign"): Role.AGENT,
    ("POST", "/v1/customers"): Role.AGENT,
    ("GET", "/v1/customers"): Role.AGENT,
    ("GET", "/v1/customers/{customer_id}"): Role.AGENT,
    ("PATCH", "/v1/customers/{customer_id}"): Role.AGENT,
    ("POST", "/v1/customers/{customer_id}/merge"): Role.AGENT,
    ("POST", "/v1/customers/{customer_id}/erasure"): Role.ADMIN,
    ("GET", "/v1/customers/{customer_id}/erasure"): Role.ADMIN,
    ("GET", "/v1/customers/{customer_id}/export"): Role.ADMIN,
    # Agents keep organisations; their tier and account manager are an admin's (tested in
    # test_directory.py: the rule is on the values, not the operation).
    ("POST", "/v1/organisations"): Role.AGENT,
    ("GET", "/v1/organisations"): Role.AGENT,
    ("GET", "/v1/organisations/{organisation_id}"): Role.AGENT,
    ("PATCH", "/v1/organisations/{organisation_id}"): Role.AGENT,
    ("POST", "/v1/attachments"): Role.AGENT,
    ("GET", "/v1/attachments/{attachment_id}"): Role.AGENT,
    ("GET", "/v1/audit"): Role.ADMIN,
}
SLA: dict[tuple[str, str], Role] = {
    ("GET", "/v1/sla/calendars"): Role.AGENT,
    ("GET", "/v1/sla/calendars/{calendar_id}"): Role.AGENT,
    ("PUT", "/v1/sla/calendars/{calendar_id}"): Role.ADMIN,
    ("DELETE", "/v1/sla/calendars/{calendar_id}"): Role.ADMIN,
    ("GET", "/v1/sla/calendars/{calendar_id}/versions"): Role.AGENT,
    ("POST", "/v1/sla/calendars/preview"): Role.ADMIN,
    ("GET", "/v1/sla/policies"): Role.AGENT,
    ("GET", "/v1/sla/policies/{policy_id}"): Role.AGENT,
    ("PUT", "/v1/sla/policies/{policy_id}"): Role.ADMIN,
    ("DELETE", "/v1/sla/policies/{policy_id}"): Role.ADMIN,
    ("GET", "/v1/sla/policies/{policy_id}/versions"): Role.AGENT,
    ("POST", "/v1/sla/policies/{policy_id}/reapply"): Role.ADMIN,
    ("GET", "/v1/sla/settings"): Role.AGENT,
    ("PUT", "/v1/sla/settings"): Role.ADMIN,
    ("POST", "/v1/sla/what-if"): Role.SUPERVISOR,
    ("GET", "/v1/sla/reports/compliance"): Role.SUPERVISOR,
    ("GET", "/v1/sla/reports/support"): Role.SUPERVISOR,
    ("GET", "/v1/sla/watermarks"): Role.SUPERVISOR,
    ("GET", "/v1/sla/tickets/{ticket_id}"): Role.AGENT,
    ("GET", "/v1/sla/tickets/{ticket_id}/pauses"): Role.AGENT,
    ("GET", "/v1/audit"): Role.ADMIN,
}
PUBLIC = {("GET", "/health/live"), ("GET", "/health/ready"), ("GET", "/metrics")}


async def _operations(service: RunningService[Any]) -> set[tuple[str, str]]:
    spec = (await service.client.get("/openapi.json")).json()
    found = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    return found - PUBLIC


async def _call(
    service: RunningService[Any], method: str, path: str, headers: dict[str, str],
    ids: dict[str, str] | None = None,
) -> int:  # fmt: skip
    """The operation with placeholder ids and an empty body: only who may ask is tested."""
    url = re.sub(r"\{(\w+)\}", lambda m: (ids or {}).get(m.group(1), str(uuid4())), path)
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    # Streamed: the live stream answers its status, then goes on for as long as one listens.
    async with service.client.stream(method, url, headers=headers, json=body) as response:
        return response.status_code


async def _check_roles(service: RunningService[Any], table: dict[tuple[str, str], Role]) -> None:
    operations = await _operations(service)
    assert operations == set(table), (
        f"operations without an expected role: {sorted(operations - set(table))};"
        f" expected but not served: {sorted(set(table) - operations)}"
    )
    wrong: list[str] = []
    for (method, path), needed in sorted(table.items()):
        if (status := await _call(service, method, path, {})) != 401:
            wrong.append(f"{method} {path} without a token: {status}")
        for role in Role:
            status = await _call(service, method, path, service.auth(role=role.value))
            refused = status == 403
            if refused != (role.rank < needed.rank) or status == 401:
                wrong.append(f"{method} {path} as {role.value}: {status}")
    assert not wrong, "\n".join(wrong)


async def test_every_ticketing_operation_checks_the_token_and_the_role(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap) as service:
        await _check_roles(service, TICKETING)


async def test_every_sla_operation_checks_the_token_and_the_role(
    sla_database_url: str, kafka_bootstrap: str
) -> None:
    async with sla_service(sla_database_url, kafka_bootstrap) as service:
        await _check_roles(service, SLA)


async def test_no_operation_reaches_another_tenants_records(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap) as service:
        own = service.auth(tenant="acme", role="admin")
        mine = {"subject": "Mine", "description": "x", "requester": {"customer_id": "cus-own"}}
        ticket = await service.client.post("/v1/tickets", headers=own, json=mine)
        await service.client.post("/v1/customers", headers=own, json={"customer_id": "cus-own"})
        await service.client.post("/v1/organisations", headers=own,
                                  json={"organisation_id": "org-own", "name": "Own"})  # fmt: skip
        upload = await service.client.post("/v1/attachments", headers=own,
                                           files={"file": ("a.txt", b"hello")})  # fmt: skip
        ids = {
            "ticket_id": ticket.json()["id"], "customer_id": "cus-own",
            "organisation_id": "org-own", "attachment_id": upload.json()["attachment_id"],
        }  # fmt: skip
        foreign = service.auth(tenant="globex", role="admin")
        leaks = []
        for method, path in sorted(TICKETING):
            names = set(re.findall(r"\{(\w+)\}", path))
            if not names or not names <= ids.keys():
                continue
            status = await _call(service, method, path, foreign, ids)
            # 404: never found; 422: refused before it is looked up (an empty body).
            if status not in (404, 422) or (method == "GET" and status != 404):
                leaks.append(f"{method} {path}: {status}")
        for method, path in sorted(TICKETING):  # the owner does reach them
            if (
                method == "GET"
                and set(re.findall(r"\{(\w+)\}", path)) <= ids.keys()
                and "{" in path
            ):
                status = await _call(service, method, path, own, ids)
                # The one record that does not exist: nobody was erased.
                found = 404 if path.endswith("/erasure") else 200
                assert status == found, f"{method} {path} for its own tenant: {status}"
    assert not leaks, "\n".join(leaks)


async def test_tokens_of_a_tenant_not_registered_or_suspended_are_refused(
    database_url: str, sla_database_url: str, kafka_bootstrap: str
) -> None:
    """Ticketing keeps the registry; the SLA service learns it from ticketing.tenants.v1."""
    async with (
        ticketing_service(database_url, kafka_bootstrap) as service,
        sla_service(sla_database_url, kafka_bootstrap) as sla,
    ):
        tenant = f"t{uuid4().hex[:8]}"
        agent = service.auth(tenant=tenant)
        for running, path in ((service, "/v1/tickets"), (sla, "/v1/sla/policies")):
            stranger = await running.client.get(path, headers=agent)
            assert stranger.status_code == 403
            assert "not registered" in stranger.json()["detail"]

        await service.register_tenant(tenant)
        gate = TenantGate(lambda: service.runtime.pool, ttl_s=0)  # what the service checks

        async def answer(expected: int) -> bool:  # both services, within a few seconds
            return [
                (await service.client.get("/v1/tickets", headers=agent)).status_code,
                (await sla.client.get("/v1/sla/policies", headers=agent)).status_code,
            ] == [expected, expected]

        await eventually(lambda: answer(200), timeout_s=30)
        ready = (await sla.client.get("/health/ready")).json()["checks"]
        assert ready["job:tenant-replica"] == "ok"  # it read the registry to its end
        async with service.runtime.pool.acquire() as conn:
            assert await tenants.suspend(conn, tenant, True)
            assert await known(conn, [tenant]) == set()  # intake dead-letters it too
        assert await gate.refusal(tenant) == f"tenant {tenant!r} is suspended"
        await eventually(lambda: answer(403), timeout_s=30)
        stream = await service.client.post("/v1/stream-tokens", headers=agent)
        assert stream.status_code == 403
        refused = await sla.client.get("/v1/sla/policies", headers=agent)
        assert refused.json()["detail"] == f"tenant {tenant!r} is suspended"
        async with service.runtime.pool.acquire() as conn:
            assert await tenants.suspend(conn, tenant, False)
            assert await known(conn, [tenant]) == {tenant}
        await eventually(lambda: answer(200), timeout_s=30)
