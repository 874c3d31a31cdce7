"""The commands of `helpdesk` that speak to the services' HTTP APIs, against the real
services: SLA configuration copied from one deployment to another, a customer erased, and
notifications' dead-letter deliveries listed (each invoked as an operator would, in a
thread: the tool's HTTP client blocks, and the services run on the test's event loop)."""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from typer.testing import CliRunner, Result

from helpdesk_contracts.pii import ERASED
from helpdesk_ops.cli import app

from support.chaos import eventually
from support.fixtures import copy_of
from support.mail import smtp_server
from support.servers import Servers
from support.service import (
    RunningService,
    notifications_service,
    sla_service,
    ticketing_service,
)

WEEK = {d: [{"start": "09:00", "end": "18:00"}] for d in ("mon", "tue", "wed", "thu", "fri")}
CALENDAR = {"name": "Moscow office", "timezone": "Europe/Moscow", "week": WEEK}
POLICY = {
    "name": "Paying customers",
    "calendar_id": "office",
    "targets": {"any": {"first_response": {"minutes": 60, "business_hours": True}}},
}


async def helpdesk(*args: str, stdin: str | None = None) -> Result:
    return await asyncio.to_thread(
        CliRunner().invoke, app, list(args), input=stdin, env={"COLUMNS": "200"}
    )


def token_of(service: RunningService[Any], role: str) -> str:
    """The bearer token an operator of this role holds (signed with the service's secret)."""
    return service.auth(role=role)["Authorization"].removeprefix("Bearer ")


@pytest.fixture
async def other_sla_database_url(
    real_servers: Servers, service_role: str, sla_template_database: str
) -> AsyncIterator[str]:
    """A second, fresh SLA database: the deployment the configuration is copied to."""
    async for url in copy_of(real_servers, service_role, sla_template_database, "helpdesk_sla"):
        yield url


async def test_sla_export_then_import_copies_calendars_and_policies_once(
    sla_database_url: str, other_sla_database_url: str, kafka_bootstrap: str, tmp_path: Path
) -> None:
    exported = tmp_path / "sla.json"
    async with sla_service(sla_database_url, kafka_bootstrap) as source:
        admin = source.auth(role="admin")
        for path, body in (("calendars/office", CALENDAR), ("policies/paying", POLICY)):
            saved = await source.client.put(f"/v1/sla/{path}", json=body, headers=admin)
            assert saved.status_code == 200, saved.text
        supervisor = token_of(source, "supervisor")
        answer = await helpdesk("sla", "export", "--url", source.base_url,
                                "--token", supervisor, "-o", str(exported))  # fmt: skip
        assert answer.exit_code == 0, answer.output
    data = json.loads(exported.read_text())
    assert [c["id"] for c in data["calendars"]] == ["office"]
    assert [p["id"] for p in data["policies"]] == ["paying"]

    async with sla_service(other_sla_database_url, kafka_bootstrap) as target:
        args = ["sla", "import", str(exported), "--url", target.base_url,
                "--token", token_of(target, "admin")]  # fmt: skip
        first = await helpdesk(*args)
        assert first.exit_code == 0, first.output
        assert first.stdout.splitlines() == ["calendars office: saved", "policies paying: saved"]
        again = await helpdesk(*args)
        assert again.exit_code == 0, again.output
        assert again.stdout.splitlines() == [
            "calendars office: unchanged", "policies paying: unchanged",
        ]  # fmt: skip
        # Nothing to save, yet a supervisor's token is still not an admin's.
        unchanged = await helpdesk("sla", "import", str(exported), "--url", target.base_url,
                                   "--token", token_of(target, "supervisor"))  # fmt: skip
        assert unchanged.exit_code == 1
        assert "403" in unchanged.stderr
        admin = target.auth(role="admin")
        for kind, item in (("calendars", "office"), ("policies", "paying")):
            versions = await target.client.get(f"/v1/sla/{kind}/{item}/versions", headers=admin)
            assert versions.status_code == 200, versions.text
            assert len(versions.json()) == 1  # the second run saved no new version
        copied = await target.client.get("/v1/sla/policies/paying", headers=admin)
        assert copied.json()["spec"] == data["policies"][0]["spec"]

        # An edited export: only what changed is saved, and only by an admin.
        data["calendars"][0]["spec"]["name"] = "Moscow office (winter)"
        exported.write_text(json.dumps(data))
        refused = await helpdesk("sla", "import", str(exported), "--url", target.base_url,
                                 "--token", token_of(target, "agent"))  # fmt: skip
        assert refused.exit_code == 1
        assert "403" in refused.stderr
        edited = await helpdesk(*args)
        assert edited.exit_code == 0, edited.output
        assert edited.stdout.splitlines() == [
            "calendars office: saved", "policies paying: unchanged",
        ]  # fmt: skip


async def test_customer_erase_forgets_the_customer_and_asks_first(
    database_url: str, kafka_bootstrap: str
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap) as ticketing:
        agent = ticketing.auth()
        customer = f"cus-{uuid4().hex[:8]}"
        her = {"customer_id": customer, "name": "Zinaida Korsakova", "notes": "Calls at noon."}
        assert (await ticketing.client.post("/v1/customers", headers=agent,
                                            json=her)).status_code == 201  # fmt: skip
        opened = await ticketing.client.post("/v1/tickets", headers=agent, json={
            "subject": "Help for Zinaida Korsakova", "description": "Her card was charged twice.",
            "requester": {"customer_id": customer, "name": "Zinaida Korsakova"},
        })  # fmt: skip
        assert opened.status_code == 201, opened.text
        ticket = f"/v1/tickets/{opened.json()['id']}"
        args = ["customer", "erase", customer, "--url", ticketing.base_url,
                "--token", token_of(ticketing, "admin")]  # fmt: skip

        # Not interactive and no --yes: nothing is erased.
        unconfirmed = await helpdesk(*args, stdin="")
        assert unconfirmed.exit_code == 1
        assert "Aborted" in unconfirmed.output
        assert (await ticketing.client.get(ticket, headers=agent)).json()["subject"] != ERASED

        erased = await helpdesk(*args, "--yes")
        assert erased.exit_code == 0, erased.output
        record = json.loads(erased.stdout)
        assert (record["requested_by"], record["tickets"]) == ("agent-7", 1)
        after = (await ticketing.client.get(ticket, headers=agent)).json()
        assert (after["subject"], after["requester"]["name"]) == (ERASED, ERASED)
        assert (await ticketing.client.get(f"/v1/customers/{customer}",
                                           headers=agent)).status_code == 404  # fmt: skip


async def test_dead_letters_deliveries_lists_what_notifications_gave_up_on(
    database_url: str, notifications_database_url: str, kafka_bootstrap: str
) -> None:
    address = f"bob.{uuid4().hex[:6]}@example.com"
    async with (
        smtp_server() as mailbox,
        ticketing_service(database_url, kafka_bootstrap) as ticketing,
        notifications_service(
            notifications_database_url, kafka_bootstrap, mailbox.port
        ) as notifications,
    ):
        mailbox.refusing = "550 5.1.1 Mailbox unavailable"  # every acknowledgement is refused
        opened = await ticketing.client.post("/v1/tickets", headers=ticketing.auth(), json={
            "subject": "Invoice twice", "description": "Charged twice.",
            "requester": {"customer_id": f"c-{uuid4().hex[:8]}", "name": "Bob", "email": address},
        })  # fmt: skip
        assert opened.status_code == 201, opened.text
        args = ["dead-letters", "deliveries", "--url", notifications.base_url,
                "--token", token_of(notifications, "supervisor")]  # fmt: skip

        async def listed() -> list[dict[str, Any]]:
            answer = await helpdesk(*args, "--json")
            assert answer.exit_code == 0, answer.output
            found: list[dict[str, Any]] = json.loads(answer.stdout)
            return [d for d in found if d["ticket_id"] == opened.json()["id"]]

        async def dead_lettered() -> bool:
            return bool(await listed())

        await eventually(dead_lettered, timeout_s=60)
        [letter] = await listed()
        assert "550" in letter["last_error"]
        table = await helpdesk(*args)
        assert table.exit_code == 0, table.output
        assert letter["delivery_id"] in table.stdout
        assert "550 5.1.1" in table.stdout
        refused = await helpdesk(*args[:-2], "--token", token_of(notifications, "agent"))
        assert refused.exit_code == 1
        assert "403" in refused.stderr

        # The address fixed, an admin sends it again: once, however often it is asked.
        mailbox.refusing = None
        again = ["dead-letters", "redeliver", letter["delivery_id"], "--url",
                 notifications.base_url, "--token", token_of(notifications, "admin")]  # fmt: skip
        redriven = await helpdesk(*again, "--json")
        assert redriven.exit_code == 0, redriven.output
        assert json.loads(redriven.stdout)["state"] == "pending"
        [mail] = await mailbox.wait_for(address, count=1, timeout_s=60)
        assert "Invoice twice" in str(mail["Subject"])
        twice = await helpdesk(*again)
        assert twice.exit_code == 1
        assert "409" in twice.stderr
        assert await listed() == []
