"""Every event the service publishes carries the W3C trace context of what caused it."""

from collections.abc import AsyncIterator
from uuid import uuid4

import pytest

from helpdesk_contracts import kafka_key, parse_envelope
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.trace import TraceContext
from ticketing.handlers import ticket_id_for_submission

from support.events import submitted
from support.fixtures import find_on_topic
from support.service import TicketingService, ticketing_service

TICKETS = "ticketing.tickets.v2"
CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


def trace_of(record: object) -> TraceContext:
    headers = dict(record.headers)  # type: ignore[attr-defined]
    context = TraceContext.parse(headers.get("traceparent"))
    assert context is not None, headers
    return context


async def test_an_api_request_passes_its_trace_to_the_events_it_causes(
    service: TicketingService, kafka_bootstrap: str
) -> None:
    ticket = {
        "subject": "Trace me",
        "description": "Follow this ticket across services.",
        "requester": {"customer_id": "c-1", "name": "Ada"},
    }
    opened = await service.client.post(
        "/v1/tickets", json=ticket, headers={**service.auth(), "traceparent": CALLER}
    )
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["id"]
    reply = await service.client.post(
        f"/v1/tickets/{ticket_id}/replies", json={"body": "On it"}, headers=service.auth()
    )
    assert reply.status_code == 200, reply.text

    records = await find_on_topic(
        kafka_bootstrap, TICKETS, lambda r: r.key == ticket_id.encode(), until=2
    )
    by_type = {parse_envelope(r.value).event_type: trace_of(r) for r in records}
    caller = TraceContext.parse(CALLER)
    assert caller is not None
    assert by_type["TicketOpened"].trace_id == caller.trace_id
    assert by_type["TicketOpened"].span_id != caller.span_id  # our span, a child of theirs
    assert by_type["ResponseSent"].trace_id != caller.trace_id  # another request, its own trace


async def test_a_consumed_event_passes_its_trace_on_and_one_without_starts_a_trace(
    service: TicketingService, producer: Producer, kafka_bootstrap: str
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    traced, untraced = submitted(f"m-{uuid4().hex[:6]}", tenant), submitted("u", tenant)
    await producer.send_many(
        [
            OutgoingMessage(
                "ticketing.intake.v1", traced.to_json(), kafka_key(traced),
                headers=[("traceparent", CALLER.encode())],
            ),
            OutgoingMessage("ticketing.intake.v1", untraced.to_json(), kafka_key(untraced)),
        ]
    )  # fmt: skip
    ids = {
        str(ticket_id_for_submission(tenant, "mail-gateway", e.payload.external_id)): e
        for e in (traced, untraced)
    }
    records = await find_on_topic(
        kafka_bootstrap, TICKETS, lambda r: r.key is not None and r.key.decode() in ids, until=2
    )
    traces = {ids[r.key.decode()].event_id: trace_of(r) for r in records}
    assert traces[traced.event_id].trace_id == CALLER.split("-")[1]
    assert traces[untraced.event_id].trace_id != CALLER.split("-")[1]
