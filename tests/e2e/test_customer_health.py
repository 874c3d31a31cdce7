"""Customer health end to end: a fixture of ticket, SLA and feedback events, published to
the real Kafka, takes one customer at risk exactly once, with its reasons; the API shows the
customer's and the organisation's health."""

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerMerged,
    Event,
    EventEnvelope,
    FeedbackReceived,
    Organisation,
    PolicyRef,
    Priority,
    Requester,
    SlaBreached,
    SlaMetric,
    SurveyKind,
    TicketOpened,
    TicketReopened,
    TicketSolved,
    TicketType,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer

from support.chaos import eventually
from support.fixtures import find_on_topic
from support.service import FeedbackService, feedback_service

AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")
TICKETS, SLA, RECEIVED, EVENTS = (
    "ticketing.tickets.v2", "sla.events.v1", "feedback.received.v1", "feedback.events.v1",
)  # fmt: skip


@pytest.fixture
async def feedback(
    feedback_database_url: str, kafka_bootstrap: str
) -> AsyncIterator[FeedbackService]:
    async with feedback_service(feedback_database_url, kafka_bootstrap) as running:
        yield running


def _message(topic: str, envelope: EventEnvelope[Any]) -> OutgoingMessage:
    return OutgoingMessage(topic, envelope.to_json(), kafka_key(envelope), kafka_headers(envelope))


def _ticket_life(
    ticket_id: UUID, number: int, customer: str, organisation: str, at: datetime,
    reopened: bool,
) -> list[OutgoingMessage]:  # fmt: skip
    payloads: list[Event] = [
        TicketOpened(number=number, subject="Не работает выгрузка", description="Снова.",
                     requester=Requester(customer_id=customer), priority=Priority.HIGH,
                     channel=Channel.EMAIL, type=TicketType.INCIDENT, opened_by=AGENT,
                     organisation=Organisation(id=organisation, tier="key_account",
                                               account_manager_id="manager-1")),
        TicketSolved(solved_by=AGENT),
        *([TicketReopened(reopened_by=AGENT)] if reopened else []),
    ]  # fmt: skip
    return [
        _message(TICKETS, EventEnvelope.new(
            p, tenant_id="acme", producer="ticketing", aggregate_id=ticket_id,
            aggregate_version=v, occurred_at=at + timedelta(hours=v)))
        for v, p in enumerate(payloads, start=1)
    ]  # fmt: skip


def _breach(ticket_id: UUID, number: int, at: datetime) -> OutgoingMessage:
    breach = SlaBreached(
        ticket_id=ticket_id, ticket_number=number, clock_id=uuid4(),
        metric=SlaMetric.RESOLUTION, target_seconds=3600, deadline=at, assignee_id="agent-7",
        policy=PolicyRef(policy_id="standard", policy_version=1, business_hours=False),
    )  # fmt: skip
    return _message(SLA, EventEnvelope.new(breach, tenant_id="acme", producer="sla",
                                           occurred_at=at))  # fmt: skip


def _answer(ticket_id: UUID, customer: str, score: int) -> OutgoingMessage:
    answer = FeedbackReceived(
        feedback_id=uuid4(), ticket_id=ticket_id, customer_id=customer, survey=SurveyKind.CSAT,
        score=score, source="call-centre",
    )  # fmt: skip
    return _message(RECEIVED, EventEnvelope.new(answer, tenant_id="acme",
                                                producer="call-centre"))  # fmt: skip


async def test_a_customer_whose_health_falls_is_at_risk_once_with_its_reasons(
    feedback: FeedbackService, kafka_bootstrap: str, producer: Producer
) -> None:
    customer, organisation = f"c-{uuid4().hex[:8]}", f"org-{uuid4().hex[:6]}"
    now = datetime.now(UTC)
    tickets = [(uuid4(), 9000 + i) for i in range(4)]
    # Four tickets in ten days (none in the month before), two of them reopened.
    await producer.send_many([
        m for i, (ticket_id, number) in enumerate(tickets)
        for m in _ticket_life(ticket_id, number, customer, organisation,
                              now - timedelta(days=10 - 2 * i), reopened=i < 2)
    ])  # fmt: skip

    async def evaluated() -> dict[str, Any] | None:
        r = await feedback.client.get(f"/v1/customers/health?organisation_id={organisation}",
                                      headers=feedback.auth())  # fmt: skip
        assert r.status_code == 200, r.text
        found = r.json()
        return found[0] if found else None

    async def settled_at(predicate: Any) -> dict[str, Any]:
        seen: dict[str, Any] = {}

        async def check() -> bool:
            seen["health"] = await evaluated()
            return seen["health"] is not None and bool(predicate(seen["health"]))

        await eventually(check, timeout_s=60)
        health: dict[str, Any] = seen["health"]
        return health

    first = await settled_at(lambda h: h["health"] == 80.0)  # surge and reopens only
    assert not first["at_risk"]
    assert sorted(r["code"] for r in first["reasons"]) == ["many_reopens", "ticket_surge"]

    # Then three SLA breaches and two bad CSAT answers: the customer falls below 50.
    await producer.send_many([
        *(_breach(ticket_id, number, now - timedelta(days=1)) for ticket_id, number in tickets[:3]),
        _answer(tickets[0][0], customer, 1), _answer(tickets[1][0], customer, 2),
    ])  # fmt: skip
    risky = await settled_at(lambda h: h["at_risk"])
    assert risky["health"] == 100 - 10 - 10 - 24 - 30 - 20  # 6
    assert [r["code"] for r in risky["reasons"]] == [
        "low_csat", "sla_breaches", "open_bad_feedback", "many_reopens", "ticket_surge",
    ]  # fmt: skip

    # A third bad answer keeps the customer down: no second CustomerAtRisk for this drop.
    await producer.send_many([_answer(tickets[2][0], customer, 1)])
    await settled_at(lambda h: "3 bad feedback" in json.dumps(h["reasons"]))

    def at_risk(record: Any) -> bool:
        return b'"CustomerAtRisk"' in record.value and customer.encode() in record.value

    published = await find_on_topic(kafka_bootstrap, EVENTS, at_risk, until=2, timeout_s=10)
    assert len(published) == 1
    event = json.loads(published[0].value)["payload"]
    assert (event["customer_id"], event["organisation_id"], event["account_manager_id"]) == (
        customer, organisation, "manager-1",
    )  # fmt: skip
    assert (event["health"], event["previous_health"], event["threshold"]) == (6.0, 80.0, 50.0)
    assert event["reasons"][0] == {
        "code": "low_csat", "impact": -30.0,
        "detail": "2 of 2 CSAT answers below 4 in the last 90 days",
    }  # fmt: skip

    mine = await feedback.client.get(f"/v1/customers/{customer}/health", headers=feedback.auth())
    assert mine.status_code == 200, mine.text
    assert mine.json()["health"] == 6.0  # the caps: a third bad answer costs no more
    theirs = await feedback.client.get(f"/v1/organisations/{organisation}/health",
                                       headers=feedback.auth())  # fmt: skip
    assert theirs.status_code == 200, theirs.text
    assert theirs.json()["signals"]["tickets_30d"] == 4
    unknown = await feedback.client.get("/v1/customers/nobody/health", headers=feedback.auth())
    assert unknown.status_code == 404


async def test_a_merged_duplicates_history_counts_for_the_customer_it_became_part_of(
    feedback: FeedbackService, producer: Producer
) -> None:
    survivor, duplicate = f"c-{uuid4().hex[:8]}", f"c-{uuid4().hex[:8]}"
    organisation = f"org-{uuid4().hex[:6]}"
    now = datetime.now(UTC)
    await producer.send_many([
        m for i, customer in enumerate([survivor, duplicate, duplicate, duplicate])
        for m in _ticket_life(uuid4(), 9100 + i, customer, organisation,
                              now - timedelta(days=3), reopened=False)
    ])  # fmt: skip

    async def tickets_of(customer: str) -> int | None:
        r = await feedback.client.get(f"/v1/customers/{customer}/health", headers=feedback.auth())
        return int(r.json()["signals"]["tickets_30d"]) if r.status_code == 200 else None

    async def counted(customer: str, expected: int | None) -> bool:
        return await tickets_of(customer) == expected

    await eventually(lambda: counted(duplicate, 3), timeout_s=30)
    merged = EventEnvelope.new(
        CustomerMerged(customer_id=duplicate, into_customer_id=survivor, merged_by=AGENT),
        tenant_id="acme", producer="ticketing", aggregate_id=uuid4(), aggregate_version=2,
    )  # fmt: skip
    await producer.send_many([_message("ticketing.directory.v1", merged)])
    await eventually(lambda: counted(survivor, 4), timeout_s=30)
    assert await tickets_of(duplicate) is None  # nothing of it left apart
