"""The default rules, whom they name, how preferences and hours plan a delivery, the
delivery ids and the retry schedule."""

import random
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from uuid import uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerAtRisk,
    CustomerReplied,
    HealthReason,
    NegativeFeedbackFlagged,
    SlaBreached,
    SlaMetric,
    SurveyKind,
    SurveyRequested,
    TicketAssigned,
    TicketFollowersChanged,
)
from helpdesk_contracts.sla import PolicyRef
from notifications.domain.notices import (
    DEFAULT_RULES,
    Audience,
    Lane,
    Situation,
    TicketFacts,
    delivery_id,
    recipients,
)
from notifications.domain.planning import plan
from notifications.domain.preferences import BusinessHours, Preferences
from notifications.domain.preferences import Channel as Via
from notifications.domain.retries import Backoff

from support.events import opened

TICKET = TicketFacts("c-1", assignee_id="a-1", group_id="billing", followers=("a-2", "a-3"),
                     account_manager_id="am-1")  # fmt: skip
LEADS = {"billing": ("lead-1",)}
AGENT = Actor(kind=ActorKind.AGENT, id="a-9")


def _who(event_type: str, payload: object, ticket: TicketFacts | None = TICKET) -> list[str]:
    return recipients(DEFAULT_RULES[event_type], payload, Situation(ticket, LEADS))


def test_an_opened_ticket_acknowledges_its_requester_in_the_urgent_lane() -> None:
    rule = DEFAULT_RULES["TicketOpened"]
    assert (rule.template, rule.lane) == ("ticket_opened", Lane.URGENT)
    assert rule.transactional
    assert _who("TicketOpened", opened(uuid4()).payload) == ["customer:c-1"]


def test_agents_hear_of_their_assignments_and_customers_replies_not_of_their_own_acts() -> None:
    assigned = TicketAssigned(assignee_id="a-5", group_id="billing", assigned_by=AGENT)
    assert _who("TicketAssigned", assigned) == ["agent:a-5"]  # the new one, not the old
    self_assigned = TicketAssigned(assignee_id="a-9", assigned_by=AGENT)
    assert _who("TicketAssigned", self_assigned) == []
    reply = CustomerReplied(message_id=uuid4(), customer_id="c-1", body="Hi",
                            channel=Channel.EMAIL)  # fmt: skip
    assert _who("CustomerReplied", reply) == ["agent:a-1", "agent:a-2", "agent:a-3"]
    added = TicketFollowersChanged(previous=("a-2",), followers=("a-2", "a-7", "a-9"),
                                   changed_by=AGENT)  # fmt: skip
    assert _who("TicketFollowersChanged", added) == ["agent:a-7"]  # not a-9, who added


def test_a_breach_reaches_assignee_team_leads_and_the_account_manager_once_each() -> None:
    breach = SlaBreached(
        ticket_id=uuid4(), ticket_number=5, clock_id=uuid4(), metric=SlaMetric.FIRST_RESPONSE,
        policy=PolicyRef(policy_id="p", policy_version=1, business_hours=False),
        target_seconds=60, deadline=datetime.now(UTC), assignee_id="lead-1", group_id="billing",
    )  # fmt: skip
    assert _who("SlaBreached", breach) == ["agent:lead-1", "agent:am-1"]
    rule = DEFAULT_RULES["SlaWarning"]
    assert rule.audiences == (Audience.ASSIGNEE_OR_GROUP_LEADS,)
    unassigned = TicketFacts("c-1", group_id="billing")
    warning = breach.model_copy(update={"assignee_id": None})
    assert recipients(rule, warning, Situation(unassigned, LEADS)) == ["agent:lead-1"]


def _flag(**fields: object) -> NegativeFeedbackFlagged:
    values: dict[str, object] = {
        "flag_id": uuid4(), "feedback_id": uuid4(), "ticket_id": uuid4(), "ticket_number": 5,
        "customer_id": "c-1", "survey": SurveyKind.CSAT, "score": 1, "threshold": 2,
    }  # fmt: skip
    return NegativeFeedbackFlagged.model_validate(values | fields)


def _at_risk(**fields: object) -> CustomerAtRisk:
    reason = HealthReason(code="sla_breaches", impact=-24, detail="3 SLA breaches")
    values: dict[str, object] = {"customer_id": "c-1", "health": 35, "threshold": 50,
                                 "reasons": (reason,)}  # fmt: skip
    return CustomerAtRisk.model_validate(values | fields)


def test_negative_feedback_reaches_the_leads_the_account_manager_and_the_credited_agent() -> None:
    rule = DEFAULT_RULES["NegativeFeedbackFlagged"]
    assert (rule.template, rule.lane, rule.escalation, rule.transactional) == (
        "negative_feedback", Lane.URGENT, True, False,
    )  # fmt: skip
    # The event names the group, the manager and the agent the answer is about.
    named = _flag(group_id="support", account_manager_id="am-2", agent_id="a-4")
    leads = {**LEADS, "support": ("lead-2", "lead-3")}
    assert recipients(rule, named, Situation(TICKET, leads)) == [
        "agent:lead-2", "agent:lead-3", "agent:am-2", "agent:a-4",
    ]  # fmt: skip
    # Else the ticket's group and manager, as this service knows them; the assignee (a-1)
    # is not told unless credited, and a lead credited with the answer hears of it once.
    assert _who("NegativeFeedbackFlagged", _flag(agent_id="lead-1")) == [
        "agent:lead-1", "agent:am-1",
    ]  # fmt: skip
    # A ticket this service never saw (or feedback about no ticket): the event's own people.
    assert _who("NegativeFeedbackFlagged", named, ticket=None) == ["agent:am-2", "agent:a-4"]
    assert _who("NegativeFeedbackFlagged", _flag(ticket_id=None), ticket=None) == []


def test_a_customer_at_risk_goes_to_the_account_manager_else_their_latest_groups_leads() -> None:
    rule = DEFAULT_RULES["CustomerAtRisk"]
    assert rule.audiences == (Audience.ACCOUNT_MANAGER_OR_GROUP_LEADS,)
    assert (rule.template, rule.lane, rule.escalation) == ("customer_at_risk", Lane.URGENT, True)
    latest = TicketFacts("c-1", assignee_id="a-1", group_id="billing")  # their latest ticket
    managed = _at_risk(account_manager_id="am-9")
    assert recipients(rule, managed, Situation(latest, LEADS)) == ["agent:am-9"]
    assert recipients(rule, _at_risk(), Situation(latest, LEADS)) == ["agent:lead-1"]
    assert recipients(rule, _at_risk(), Situation(None, LEADS)) == []  # no ticket known here


def test_feedback_alerts_wait_for_business_hours_like_other_escalations() -> None:
    hours = BusinessHours("UTC", frozenset(range(5)), time(9), time(18))
    prefs = Preferences(addresses={Via.EMAIL: "lead@example.com"},
                        quiet_from=time(19), quiet_until=time(10))  # fmt: skip
    saturday = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    monday_ten = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)  # opens at 9, quiet until 10
    for event_type in ("NegativeFeedbackFlagged", "CustomerAtRisk"):
        rule = DEFAULT_RULES[event_type]
        planned = plan(rule, "agent:lead", prefs, urgent=False, now=saturday, hours=hours)
        assert (planned.due_at, planned.skipped) == (monday_ten, None)
        opted = replace(prefs, opted_out=frozenset({rule.template}))
        skipped = plan(rule, "agent:lead", opted, urgent=False, now=saturday, hours=hours)
        assert skipped.skipped == f"opted out of {rule.template}"


def test_a_survey_invitation_is_bulk_and_not_transactional() -> None:
    survey = SurveyRequested(
        survey_id=uuid4(), customer_id="c-9", survey=SurveyKind.CSAT,
        answer_url="https://x.example/s/t", expires_at=datetime.now(UTC) + timedelta(days=7),
    )  # fmt: skip
    rule = DEFAULT_RULES["SurveyRequested"]
    assert (rule.lane, rule.transactional) == (Lane.BULK, False)
    assert _who("SurveyRequested", survey, ticket=None) == ["customer:c-9"]


NIGHT = datetime(2026, 11, 26, 23, 30, tzinfo=UTC)  # a Thursday, 02:30 in Moscow
QUIET = Preferences(time_zone="Europe/Moscow", quiet_from=time(22), quiet_until=time(8),
                    addresses={Via.EMAIL: "a@example.com"})  # fmt: skip


def test_quiet_hours_hold_non_urgent_messages_until_morning_but_not_transactional_ones() -> None:
    survey = DEFAULT_RULES["SurveyRequested"]
    planned = plan(survey, "customer:c-1", QUIET, urgent=False, now=NIGHT, hours=None)
    assert planned.due_at == datetime(2026, 11, 27, 5, 0, tzinfo=UTC)  # 08:00 Moscow
    ack = DEFAULT_RULES["TicketOpened"]
    assert plan(ack, "customer:c-1", QUIET, urgent=False, now=NIGHT, hours=None).due_at == NIGHT
    assert plan(survey, "customer:c-1", QUIET, urgent=True, now=NIGHT, hours=None).due_at == NIGHT
    day = NIGHT.replace(hour=12)
    assert plan(survey, "customer:c-1", QUIET, urgent=False, now=day, hours=None).due_at == day


def test_escalations_wait_for_business_hours_unless_the_ticket_is_urgent() -> None:
    hours = BusinessHours("Europe/Moscow", frozenset(range(5)), time(9), time(18))
    breach = DEFAULT_RULES["SlaBreached"]
    prefs = Preferences(addresses={Via.EMAIL: "lead@example.com"})
    friday_night = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)  # 23:00 Friday in Moscow
    planned = plan(breach, "agent:lead", prefs, urgent=False, now=friday_night, hours=hours)
    assert planned.due_at == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # Monday 09:00
    urgent = plan(breach, "agent:lead", prefs, urgent=True, now=friday_night, hours=hours)
    assert urgent.due_at == friday_night


def test_opting_out_and_having_no_address_are_recorded_reasons_not_silence() -> None:
    survey, ack = DEFAULT_RULES["SurveyRequested"], DEFAULT_RULES["TicketOpened"]
    out = Preferences(opted_out=frozenset({"survey_invitation", "ticket_opened"}))
    assert plan(survey, "customer:c", out, urgent=False, now=NIGHT, hours=None).skipped == (
        "opted out of survey_invitation"
    )
    assert plan(ack, "customer:c", out, urgent=False, now=NIGHT, hours=None).skipped is None
    nowhere = plan(DEFAULT_RULES["TicketAssigned"], "agent:a", Preferences(), urgent=False,
                   now=NIGHT, hours=None)  # fmt: skip
    assert nowhere.skipped == "no address for agent:a in any of their channels"


def test_the_first_reachable_channel_in_a_persons_order_is_used() -> None:
    prefs = Preferences(channels=(Via.MESSENGER, Via.WEBHOOK, Via.EMAIL),
                        addresses={Via.WEBHOOK: "https://x", Via.EMAIL: "a@x.example"})  # fmt: skip
    assert plan(DEFAULT_RULES["TicketAssigned"], "agent:a", prefs, urgent=False, now=NIGHT,
                hours=None).channel == "webhook"  # fmt: skip


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
