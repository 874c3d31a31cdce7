"""The default rules, the delivery ids and the retry schedule."""

import random
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    ResponseSent,
    SurveyKind,
    SurveyRequested,
    TicketSolved,
)
from notifications.domain.notices import REQUESTER, Lane, delivery_id, notices_for
from notifications.domain.retries import Backoff

from support.events import note, opened


def test_an_opened_ticket_acknowledges_its_requester_in_the_urgent_lane() -> None:
    ticket = uuid4()
    [notice] = notices_for(opened(ticket).payload, ticket)
    assert (notice.template, notice.recipient, notice.lane) == (
        "ticket_opened", "customer:c-1", Lane.URGENT,
    )  # fmt: skip
    assert notice.transactional
    assert notice.ticket_id == ticket


def test_replies_and_solutions_go_to_the_requester_and_notes_to_no_one() -> None:
    ticket = uuid4()
    reply = ResponseSent(message_id=uuid4(), agent_id="a-1", body="Hi", channel=Channel.EMAIL)
    solved = TicketSolved(solved_by=Actor(kind=ActorKind.AGENT, id="a-1"))
    assert [n.template for n in notices_for(reply, ticket)] == ["agent_replied"]
    assert [n.recipient for n in notices_for(solved, ticket)] == [REQUESTER]
    assert notices_for(note(ticket, 2).payload, ticket) == []


def test_a_survey_invitation_is_bulk_and_not_transactional() -> None:
    survey = SurveyRequested(
        survey_id=uuid4(), customer_id="c-9", survey=SurveyKind.CSAT,
        answer_url="https://x.example/s/t", expires_at=datetime.now(UTC) + timedelta(days=7),
    )  # fmt: skip
    [notice] = notices_for(survey, None)
    assert (notice.lane, notice.transactional, notice.recipient) == (
        Lane.BULK, False, "customer:c-9",
    )  # fmt: skip


def test_a_delivery_id_is_stable_and_tells_recipients_and_channels_apart() -> None:
    event = uuid4()
    assert delivery_id(event, "customer:c-1", "email") == delivery_id(
        event, "customer:c-1", "email"
    )
    assert delivery_id(event, "customer:c-1", "email") != delivery_id(event, "agent:a", "email")
    assert delivery_id(event, "customer:c-1", "email") != delivery_id(event, "customer:c-1", "sms")


def test_backoff_doubles_with_jitter_and_gives_up_after_its_attempts() -> None:
    backoff = Backoff(base_s=10, max_s=60, attempts=5)
    rng = random.Random(7)
    delays = [backoff.next_delay_s(n, rng) for n in range(1, 5)]
    for delay, ceiling in zip(delays, [10, 20, 40, 60], strict=True):
        assert delay is not None
        assert ceiling / 2 <= delay <= ceiling
    assert backoff.next_delay_s(5, rng) is None
    spread = {backoff.next_delay_s(3, random.Random(seed)) for seed in range(20)}
    assert len(spread) > 10  # failures at the same moment are not retried at the same moment
