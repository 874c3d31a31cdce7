"""Goals end to end: supervisors set targets per agent, answers and the SLA service's
verdicts arrive through the real Kafka, and progress lists the agents furthest from their
goal first."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    Event,
    EventEnvelope,
    FeedbackReceived,
    PolicyRef,
    Priority,
    Requester,
    SlaAchieved,
    SlaMetric,
    SurveyKind,
    TicketAssigned,
    TicketOpened,
    TicketType,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer

from support.chaos import eventually
from support.service import FeedbackService, feedback_service

AGENT = Actor(kind=ActorKind.AGENT, id="lead-1")
POLICY = PolicyRef(policy_id="standard", policy_version=1, business_hours=True)


@pytest.fixture
async def feedback(
    feedback_database_url: str, kafka_bootstrap: str
) -> AsyncIterator[FeedbackService]:
    async with feedback_service(feedback_database_url, kafka_bootstrap) as running:
        yield running


def _message(topic: str, envelope: EventEnvelope[Any]) -> OutgoingMessage:
    return OutgoingMessage(topic, envelope.to_json(), kafka_key(envelope), kafka_headers(envelope))


def _handled(ticket_id: UUID, number: int, agent: str, first_response_s: int,
             scores: list[int]) -> list[OutgoingMessage]:  # fmt: skip
    now = datetime.now(UTC)
    life: list[Event] = [
        TicketOpened(number=number, subject="Вопрос по тарифу", description="",
                     requester=Requester(customer_id=f"c-{number}"), priority=Priority.NORMAL,
                     channel=Channel.EMAIL, type=TicketType.QUESTION, opened_by=AGENT),
        TicketAssigned(assignee_id=agent, group_id="billing", assigned_by=AGENT),
    ]  # fmt: skip
    messages = [
        _message("ticketing.tickets.v2", EventEnvelope.new(
            p, tenant_id="acme", producer="ticketing", aggregate_id=ticket_id,
            aggregate_version=v))
        for v, p in enumerate(life, start=1)
    ]  # fmt: skip
    achieved = SlaAchieved(
        ticket_id=ticket_id, ticket_number=number, clock_id=uuid4(),
        metric=SlaMetric.FIRST_RESPONSE, policy=POLICY, target_seconds=14_400, achieved_at=now,
        deadline=now, elapsed_seconds=first_response_s,
    )  # fmt: skip
    messages.append(_message("sla.events.v1", EventEnvelope.new(achieved, tenant_id="acme",
                                                                producer="sla")))  # fmt: skip
    for score in scores:
        answer = FeedbackReceived(
            feedback_id=uuid4(), ticket_id=ticket_id, customer_id=f"c-{number}",
            survey=SurveyKind.CSAT, score=score, agent_id=agent, source="call-centre",
        )  # fmt: skip
        messages.append(_message("feedback.received.v1", EventEnvelope.new(
            answer, tenant_id="acme", producer="call-centre")))  # fmt: skip
    return messages


async def test_progress_lists_the_agents_furthest_from_their_goals_first(
    feedback: FeedbackService, producer: Producer
) -> None:
    ann, bob = f"ann-{uuid4().hex[:6]}", f"bob-{uuid4().hex[:6]}"
    supervisor = feedback.auth(role="supervisor")
    for agent in (ann, bob):
        for metric, target in (("csat", 90), ("first_response_median", 3600)):
            r = await feedback.client.put(f"/v1/goals/agent/{agent}/{metric}",
                                          json={"target": target}, headers=supervisor)  # fmt: skip
            assert r.status_code == 200, r.text
    refused = await feedback.client.put(f"/v1/goals/agent/{ann}/csat", json={"target": 120},
                                        headers=supervisor)  # fmt: skip
    assert refused.status_code == 422
    agent_only = await feedback.client.put(f"/v1/goals/agent/{ann}/csat", json={"target": 50},
                                           headers=feedback.auth())  # fmt: skip
    assert agent_only.status_code == 403

    await producer.send_many([
        *_handled(uuid4(), 501, ann, 1800, [5, 5]), *_handled(uuid4(), 502, bob, 5400, [5]),
        *_handled(uuid4(), 503, bob, 9000, [2]),
    ])  # fmt: skip

    async def measured() -> list[dict[str, Any]] | None:
        r = await feedback.client.get("/v1/goals/progress", headers=supervisor)
        assert r.status_code == 200, r.text
        mine = [g for g in r.json() if g["subject_id"] in (ann, bob)]
        return mine if sum(g["measured"] for g in mine) == 2 + 2 + 2 + 1 else None

    seen: dict[str, Any] = {}

    async def done() -> bool:
        seen["progress"] = await measured()
        return seen["progress"] is not None

    await eventually(done, timeout_s=60)
    rows = [(g["subject_id"], g["metric"], g["actual"], g["met"]) for g in seen["progress"]]
    assert rows == [
        (bob, "first_response_median", 7200.0, False),  # twice the target: gap 1.0
        (bob, "csat", 50.0, False),  # gap 0.44
        (ann, "csat", 100.0, True),
        (ann, "first_response_median", 1800.0, True),
    ]
