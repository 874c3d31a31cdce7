"""One trace follows a ticket through every service, exported over real OTLP/HTTP.

Ticketing, SLA, feedback and notifications run on the real Kafka and PostgreSQL, each
exporting its spans to an OTLP endpoint (tests/support/otlp_receiver.py) as it would to an
OpenTelemetry Collector. An agent's request to open a ticket is one trace: ticketing's
server span, its producer span for TicketOpened, the consumer spans of SLA, feedback and
notifications, notifications' timer and the acknowledgement sent by real SMTP. Solving the
ticket is another: feedback's survey timer, the invitation it publishes, and the survey
mail. A publisher's intake message continues the publisher's own trace.
"""

from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import uuid4

import pytest

from helpdesk_contracts import kafka_headers, kafka_key
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.handlers import ticket_id_for_submission

from support.events import submitted
from support.mail import Mailbox, smtp_server
from support.otlp_receiver import Collector, ReceivedSpan, otlp_collector
from support.service import (
    FeedbackService,
    TicketingService,
    feedback_service,
    notifications_service,
    sla_service,
    ticketing_service,
)

CALLER_TRACE = uuid4().hex
CALLER = f"00-{CALLER_TRACE}-{uuid4().hex[:16]}-01"
SERVICES = {"ticketing", "sla", "feedback", "notifications"}


@pytest.fixture
async def collector(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Collector]:
    # Read by the SDK's batch processor: export every 100 ms rather than 5 s.
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    async with otlp_collector() as running:
        yield running


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def services(
    collector: Collector, mailbox: Mailbox, database_url: str, sla_database_url: str,
    feedback_database_url: str, notifications_database_url: str, kafka_bootstrap: str,
) -> AsyncIterator[tuple[TicketingService, FeedbackService]]:  # fmt: skip
    traced: dict[str, Any] = {"otel_exporter_otlp_endpoint": collector.base_url}
    async with (
        ticketing_service(database_url, kafka_bootstrap, **traced) as ticketing,
        sla_service(sla_database_url, kafka_bootstrap, **traced),
        feedback_service(feedback_database_url, kafka_bootstrap, **traced) as feedback,
        notifications_service(notifications_database_url, kafka_bootstrap, mailbox.port, **traced),
    ):
        settings = {"delay_s": 0, "cooldown_days": 0}  # survey every solve, at once
        saved = await feedback.client.put(
            "/v1/survey-settings", json=settings, headers=feedback.auth(role="admin")
        )
        assert saved.status_code == 200, saved.text
        yield ticketing, feedback


def _find(spans: list[ReceivedSpan], service: str, kind: str, name: str = "") -> ReceivedSpan:
    found = [s for s in spans if s.service == service and s.kind == kind and name in s.name]
    assert found, f"no {kind} span {name!r} of {service} in {[(s.service, s.name) for s in spans]}"
    return found[0]


def _has(service: str, kind: str, name: str = "") -> Callable[[list[ReceivedSpan]], bool]:
    return lambda spans: any(
        s.service == service and s.kind == kind and name in s.name for s in spans
    )


def _ancestry(span: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """The span and its ancestors up to its root, each parent found among `spans`."""
    by_id = {s.span_id: s for s in spans}
    chain = [span]
    while chain[-1].parent_id is not None:
        parent = by_id.get(chain[-1].parent_id)
        assert parent is not None, f"{chain[-1].name} ({chain[-1].service}): parent missing"
        chain.append(parent)
    return chain


async def test_an_agents_request_and_the_solve_are_each_one_trace_across_every_service(
    services: tuple[TicketingService, FeedbackService], collector: Collector, mailbox: Mailbox
) -> None:
    ticketing, _ = services
    address = f"ada.{uuid4().hex[:6]}@example.com"
    agent = ticketing.auth()
    body = {
        "subject": "Invoice missing",
        "description": "No invoice for March.",
        "requester": {"customer_id": f"c-{uuid4().hex[:8]}", "name": "Ada", "email": address},
    }
    opened = await ticketing.client.post("/v1/tickets", json=body, headers=agent)
    assert opened.status_code == 201, opened.text
    ticket_id = opened.json()["id"]
    await mailbox.wait_for(address, count=1, timeout_s=60)  # the acknowledgement

    server = await collector.wait_until(_has("ticketing", "server", "POST /v1/tickets"))
    request = _find(server, "ticketing", "server", "POST /v1/tickets")
    assert request.parent_id is None  # the agent's frontend sent no trace context
    assert request.attributes["http.route"] == "/v1/tickets"
    assert request.attributes["http.response.status_code"] == 201

    # Spans arrive as each service exports them; wait for the last hop of each.
    def whole(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == request.trace_id]
        return all(
            _has(service, kind, name)(mine)
            for service, kind, name in [
                ("ticketing", "producer", "send ticketing."),
                ("sla", "consumer", "process ticketing."),
                ("feedback", "consumer", "process ticketing."),
                ("notifications", "consumer", "process ticketing."),
                ("notifications", "client", "send email"),
            ]
        )

    trace = [s for s in await collector.wait_until(whole) if s.trace_id == request.trace_id]
    assert {s.service for s in trace} == SERVICES
    assert not [s for s in trace if s.failed]
    # Every span descends from the agent's request, hop by hop across the services.
    for span in trace:
        assert _ancestry(span, trace)[-1] == request, span
    published = _find(trace, "ticketing", "producer")
    assert published.attributes["helpdesk.event_type"] == "TicketOpened"
    for service in ("sla", "feedback", "notifications"):
        consumed = _find(trace, service, "consumer", "process ticketing.")
        assert consumed.parent_id == published.span_id  # through Kafka's headers
        assert (
            consumed.attributes["messaging.message.id"]
            == published.attributes["messaging.message.id"]
        )
    sent = _find(trace, "notifications", "client", "send email")
    # A delivery that must wait (for the opening, a provider) is fired again, its timer a
    # child of the firing before.
    names = [s.name for s in _ancestry(sent, trace)]
    timers = names[1 : names.index("process ticketing.tickets.v2")]
    assert names[0] == "send email", names
    assert timers, names
    assert set(timers) == {"timer deliver-urgent"}, names
    assert sent.attributes["helpdesk.template"] == "ticket_opened"

    # Solving is another request, another trace: through feedback's survey to its mail.
    solved = await ticketing.client.patch(
        f"/v1/tickets/{ticket_id}", json={"status": "solved"}, headers=agent
    )
    assert solved.status_code == 200, solved.text
    solve = _find(
        await collector.wait_until(_has("ticketing", "server", "PATCH /v1/tickets/{ticket_id}")),
        "ticketing", "server", "PATCH",
    )  # fmt: skip
    assert solve.trace_id != request.trace_id

    def surveyed(spans: list[ReceivedSpan]) -> bool:
        mine = [s for s in spans if s.trace_id == solve.trace_id]
        return any(
            s.kind == "client" and s.attributes.get("helpdesk.template") == "survey_invitation"
            for s in mine
        )

    solve_trace = [s for s in await collector.wait_until(surveyed) if s.trace_id == solve.trace_id]
    invitation = next(
        s for s in solve_trace if s.attributes.get("helpdesk.template") == "survey_invitation"
    )
    chain = [(s.service, s.name) for s in _ancestry(invitation, solve_trace)]
    assert chain[-1] == ("ticketing", "PATCH /v1/tickets/{ticket_id}")
    assert ("feedback", "timer survey-invitation") in chain
    assert ("feedback", "send feedback.surveys.v1") in chain
    assert ("notifications", "process feedback.surveys.v1") in chain


async def test_an_intake_message_continues_its_publishers_trace(
    services: tuple[TicketingService, FeedbackService], collector: Collector,
    producer: Producer,
) -> None:  # fmt: skip
    message = submitted(f"m-{uuid4().hex[:6]}", "acme")
    await producer.send_many([
        OutgoingMessage("ticketing.intake.v1", message.to_json(), kafka_key(message),
                        headers=[*kafka_headers(message), ("traceparent", CALLER.encode())]),
    ])  # fmt: skip
    ticket_id = ticket_id_for_submission("acme", "mail-gateway", message.payload.external_id)

    def reached_sla(spans: list[ReceivedSpan]) -> bool:
        return _has("sla", "consumer")([s for s in spans if s.trace_id == CALLER_TRACE])

    trace = [s for s in await collector.wait_until(reached_sla) if s.trace_id == CALLER_TRACE]
    intake = _find(trace, "ticketing", "consumer", "process ticketing.intake.v1")
    assert intake.parent_id == CALLER.split("-")[2]  # the publisher's span
    assert intake.attributes["messaging.message.id"] == str(message.event_id)
    opened = _find(trace, "ticketing", "producer")
    assert opened.parent_id == intake.span_id
    assert opened.attributes["helpdesk.event_type"] == "TicketOpened"
    consumed = _find(trace, "sla", "consumer")
    assert consumed.parent_id == opened.span_id
    assert consumed.attributes["messaging.kafka.message.key"] == str(ticket_id)
