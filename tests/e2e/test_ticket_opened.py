"""The ticketing service end to end: HTTP and Kafka in, events on the ticket topic out."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from helpdesk_contracts import TicketOpened, parse_envelope
from helpdesk_contracts.pii import is_sealed
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.conversations import ticket_id_for_message
from ticketing.handlers import ticket_id_for_submission

from support.chaos import eventually
from support.events import customer_message, submitted
from support.fixtures import find_keyed, find_on_topic
from support.service import TicketingService, ticketing_service

TICKETS = "ticketing.tickets.v2"
INTAKE = "ticketing.intake.v1"
NEW_TICKET = {
    "subject": "Invoice shows the wrong amount",
    "description": "I was charged twice this month.",
    "requester": {"customer_id": "c-1", "name": "Anna", "email": "anna@example.com"},
    "priority": "high",
    "tags": ["Billing", "billing", " invoices "],
}


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


def _for_ticket(ticket_id: str) -> Any:
    return lambda r: r.key == ticket_id.encode()


async def test_an_agent_opens_a_ticket_and_it_is_published(
    service: TicketingService, kafka_bootstrap: str
) -> None:
    correlation = str(uuid4())
    response = await service.client.post(
        "/v1/tickets", json=NEW_TICKET, headers={**service.auth(), "X-Correlation-Id": correlation}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["number"] == 1
    assert body["status"] == "new"
    assert body["tags"] == ["billing", "invoices"]
    assert response.headers["location"] == f"/v1/tickets/{body['id']}"
    assert response.headers["x-correlation-id"] == correlation

    fetched = await service.client.get(f"/v1/tickets/{body['id']}", headers=service.auth())
    assert fetched.status_code == 200
    assert fetched.json() == body

    records = await find_on_topic(kafka_bootstrap, TICKETS, _for_ticket(body["id"]))
    assert len(records) == 1
    envelope = parse_envelope(records[0].value)
    assert isinstance(envelope.payload, TicketOpened)
    assert envelope.aggregate_id == UUID(body["id"])
    assert envelope.aggregate_version == 1
    assert envelope.tenant_id == "acme"
    assert envelope.producer == "ticketing"
    assert envelope.correlation_id == UUID(correlation)
    # Published sealed: the subject is not in the record's bytes; the subject's key opens it.
    assert str(NEW_TICKET["subject"]).encode() not in records[0].value
    assert is_sealed(envelope.payload.subject)
    opened = await service.opened(records[0].value)
    assert isinstance(opened.payload, TicketOpened)
    assert opened.payload.subject == NEW_TICKET["subject"]
    assert envelope.payload.opened_by.id == "agent-7"
    assert dict(records[0].headers)["event_type"] == b"TicketOpened"


async def test_invalid_input_gets_422_with_the_fields_at_fault(service: TicketingService) -> None:
    bad = {**NEW_TICKET, "subject": "x" * 251, "priority": "whenever", "colour": "red"}
    del bad["requester"]
    response = await service.client.post("/v1/tickets", json=bad, headers=service.auth())
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["title"], problem["status"], problem["instance"]) == (
        "Unprocessable Content", 422, "/v1/tickets",
    )  # fmt: skip
    assert problem["detail"].startswith("the request is invalid: body.")
    fields = {tuple(e["loc"][1:]) for e in problem["errors"]}
    assert {("subject",), ("priority",), ("colour",), ("requester",)} <= fields

    garbage = await service.client.post(
        "/v1/tickets",
        content=b"{not json",
        headers={**service.auth(), "Content-Type": "application/json"},
    )
    assert garbage.status_code == 422
    assert garbage.json()["errors"][0]["type"] == "json_invalid"

    text = await service.client.post(
        "/v1/tickets",
        content=b"subject: printer",
        headers={**service.auth(), "Content-Type": "text/plain"},
    )
    assert text.status_code == 415, text.text
    assert text.json()["detail"] == "the body is text/plain; send application/json"


async def test_the_openapi_document_declares_every_problem_an_operation_answers(
    service: TicketingService,
) -> None:
    schema = (await service.client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    open_ticket = schema["paths"]["/v1/tickets"]["post"]["responses"]
    assert {"401", "415", "422", "503"} <= open_ticket.keys()
    assert list(open_ticket["422"]["content"]) == ["application/problem+json"]
    change = schema["paths"]["/v1/tickets/{ticket_id}"]["patch"]["responses"]
    assert {"401", "404", "409", "415", "422"} <= change.keys()
    live = schema["paths"]["/health/live"]["get"]["responses"]
    assert set(live) == {"200"}


async def test_tenants_are_isolated_and_callers_must_say_who_they_are(
    service: TicketingService,
) -> None:
    opened = (
        await service.client.post("/v1/tickets", json=NEW_TICKET, headers=service.auth())
    ).json()
    other = service.auth(tenant="globex", agent="agent-1")
    assert (
        await service.client.get(f"/v1/tickets/{opened['id']}", headers=other)
    ).status_code == 404
    assert (await service.client.post("/v1/tickets", json=NEW_TICKET)).status_code == 401
    missing = await service.client.get(f"/v1/tickets/{uuid4()}", headers=service.auth())
    assert missing.status_code == 404


async def test_an_idempotency_key_opens_one_ticket(service: TicketingService) -> None:
    headers = {**service.auth(), "Idempotency-Key": "form-submit-81723"}
    first, again = await asyncio.gather(
        service.client.post("/v1/tickets", json=NEW_TICKET, headers=headers),
        service.client.post("/v1/tickets", json=NEW_TICKET, headers=headers),
    )
    assert sorted([first.status_code, again.status_code]) == [200, 201]
    assert first.json()["id"] == again.json()["id"]


async def test_intake_opens_one_ticket_per_external_id_and_dead_letters_garbage(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    external_id = f"mail-{uuid4().hex[:8]}"
    first, resent = submitted(external_id, tenant=tenant), submitted(external_id, tenant=tenant)
    later = submitted(f"{external_id}-2", tenant=tenant)
    poison = b'{"event_type": "TicketSubmitted", "payload": {}}'
    await producer.send_many(
        [
            OutgoingMessage(INTAKE, first.to_json(), key=external_id.encode()),
            OutgoingMessage(INTAKE, poison, key=b"poison-" + tenant.encode()),
            OutgoingMessage(INTAKE, resent.to_json(), key=external_id.encode()),
            OutgoingMessage(INTAKE, later.to_json(), key=b"later"),
        ]
    )
    ticket_id = str(ticket_id_for_submission(tenant, "mail-gateway", external_id))
    later_id = str(ticket_id_for_submission(tenant, "mail-gateway", f"{external_id}-2"))

    opened = await find_on_topic(kafka_bootstrap, TICKETS, _for_ticket(ticket_id))
    assert len(opened) == 1  # the re-sent submission opened nothing new
    envelope = parse_envelope(opened[0].value)
    assert isinstance(envelope.payload, TicketOpened)
    assert envelope.payload.external_ref is not None
    assert envelope.causation_id == first.event_id
    assert envelope.payload.external_ref.external_id == external_id
    assert envelope.payload.opened_by.kind == "system"
    assert await find_on_topic(kafka_bootstrap, TICKETS, _for_ticket(later_id))

    headers = service.auth(tenant=tenant, agent="agent-1")
    state = (await service.client.get(f"/v1/tickets/{ticket_id}", headers=headers)).json()
    assert state["number"] in (1, 2)
    assert state["channel"] == "api"

    letters = await find_keyed(kafka_bootstrap, f"{INTAKE}.dlq", b"poison-" + tenant.encode())
    assert len(letters) == 1
    assert b"tenant_id: Field required" in dict(letters[0].headers)["dlq-reason"]


async def test_ready_when_database_broker_relay_and_watermarks_answer(
    service: TicketingService,
) -> None:
    response = await service.client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok", "kafka": "ok", "job:outbox-relay": "ok", "job:watermarks": "ok",
        "job:subject-keys": "ok", "job:tenant-publisher": "ok", "job:unattached-uploads": "ok",
    }  # fmt: skip
    assert (await service.client.get("/health/live")).status_code == 200
    assert "/v1/tickets" in (await service.client.get("/openapi.json")).json()["paths"]


async def test_customer_messages_open_reply_and_follow_up_through_kafka(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    thread = f"<{uuid4().hex}@mail.example.com>"
    agent = service.auth(tenant=tenant)

    async def send(message_id: str, body: str) -> str:
        envelope = customer_message(thread, message_id, tenant=tenant, body=body)
        await producer.send_many([OutgoingMessage(INTAKE, envelope.to_json(), key=thread.encode())])
        return str(ticket_id_for_message(tenant, "mail-gateway", message_id))

    first_id = await send("m-1", "Where is my parcel?")
    assert await find_on_topic(kafka_bootstrap, TICKETS, _for_ticket(first_id))
    await send("m-2", "Any news?")
    await send("m-2", "Any news?")  # re-sent by the gateway

    async def state(ticket_id: str) -> dict[str, Any]:
        r = await service.client.get(f"/v1/tickets/{ticket_id}", headers=agent)
        assert r.status_code == 200, r.text
        return dict(r.json())

    async with asyncio.timeout(15):
        while (await state(first_id))["customer_replies"] < 1:  # noqa: ASYNC110 (polls the API)
            await asyncio.sleep(0.1)
    for step in ({"status": "solved"}, {"status": "closed"}):
        r = await service.client.patch(f"/v1/tickets/{first_id}", json=step, headers=agent)
        assert r.status_code == 200, r.text

    follow_up_id = await send("m-3", "It happened again")
    records = await find_on_topic(kafka_bootstrap, TICKETS, _for_ticket(follow_up_id))
    opened = parse_envelope(records[0].value).payload
    assert isinstance(opened, TicketOpened)
    assert str(opened.follow_up_of) == first_id
    assert (await state(first_id))["customer_replies"] == 1  # the re-sent m-2 counted once


async def test_intake_for_an_unknown_tenant_is_dead_lettered_with_the_reason(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    stranger = f"t{uuid4().hex[:8]}"
    envelope = submitted(f"ext-{uuid4().hex[:6]}", tenant=stranger)
    await producer.send_many([OutgoingMessage(INTAKE, envelope.to_json(), key=stranger.encode())])
    letters = await find_keyed(kafka_bootstrap, f"{INTAKE}.dlq", stranger.encode())
    assert len(letters) == 1
    headers = dict(letters[0].headers)
    assert headers["dlq-error-type"] == b"rejected"
    assert f"tenant '{stranger}' is not registered, or suspended".encode() in headers["dlq-reason"]


async def test_a_message_larger_than_the_consumer_accepts_is_dead_lettered_whole(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    # The broker takes up to 4 MiB; the service accepts 1 MiB: the rest is dead-lettered.
    key = f"big-{uuid4().hex[:6]}".encode()
    huge = b'{"event_type": "TicketSubmitted", "padding": "' + b"x" * 1_500_000 + b'"}'
    await producer.send_many([OutgoingMessage(INTAKE, huge, key=key)])
    letters = await find_keyed(kafka_bootstrap, f"{INTAKE}.dlq", key)
    assert len(letters) == 1
    assert letters[0].value == huge
    headers = dict(letters[0].headers)
    assert headers["dlq-error-type"] == b"oversize"
    limit = service.settings.consumer_max_message_bytes
    assert headers["dlq-reason"] == f"message is {len(huge)} bytes; the limit is {limit}".encode()


async def test_members_of_one_process_share_the_intake_and_apply_it_once(
    database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    async with ticketing_service(database_url, kafka_bootstrap, consumer_concurrency=3) as service:
        members: list[Any] = list(service.runtime.broker.subscribers)
        # Three members of the intake group, and of the SLA feed's, the directory sync's and
        # the bad feedback's.
        assert len(members) == 12
        tenant = f"t{uuid4().hex[:8]}"
        await service.register_tenant(tenant)
        batch = [submitted(f"many-{i}", tenant=tenant) for i in range(300)]
        await producer.send_many(
            [OutgoingMessage(INTAKE, e.to_json(), key=f"many-{i}".encode()) for i, e in
             enumerate(batch)]
        )  # fmt: skip

        async def opened() -> int:
            count: int = await service.runtime.pool.fetchval(
                "SELECT count(*) FROM events WHERE tenant_id = $1", tenant
            )
            return count

        async def all_opened() -> bool:
            return await opened() >= len(batch)

        await eventually(all_opened, timeout_s=60)
        # Every submission opened one ticket, numbered without a repeat.
        numbers = await service.runtime.pool.fetch(
            "SELECT number FROM ticket_list WHERE tenant_id = $1", tenant
        )
        assert len({r["number"] for r in numbers}) == len(batch) == await opened()
        # The group gave the partitions to more than one member (AIOKafkaConsumer of each).
        assert len([m for m in members if m.consumer and m.consumer.assignment()]) >= 2
