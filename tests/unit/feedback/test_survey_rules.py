"""Whether a solved ticket's customer is invited to a survey, and who it is credited to."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from feedback.domain.surveys import (
    Credit,
    CsatScale,
    Invite,
    Skip,
    SurveySettings,
    TicketFacts,
    credited_agent,
    decide,
    is_negative,
    sampled,
    scale,
)
from helpdesk_contracts import SurveyKind

NOW = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
DEFAULTS = SurveySettings()


def solved(**changes: object) -> TicketFacts:
    ticket = TicketFacts(
        tenant_id="acme", ticket_id=UUID(int=1), number=7, customer_id="c-1", channel="email",
        priority="normal", opened_at=NOW - timedelta(hours=5), assignee_id="ann",
        assignee_at_solve="ann", last_replier_id="bob", status="solved",
        solved_at=NOW - timedelta(hours=1),
    )  # fmt: skip
    return replace(ticket, **changes)  # type: ignore[arg-type]


def test_a_solved_ticket_invites_its_customer_to_the_tenants_survey() -> None:
    decision = decide(solved(group_id="billing"), DEFAULTS, None, NOW)
    assert decision == Invite(SurveyKind.CSAT, "bob", "billing", NOW + timedelta(days=14), None)


@pytest.mark.parametrize(
    ("ticket", "settings", "expected"),
    [
        (solved(), SurveySettings(enabled=False), Skip.DISABLED),
        (solved(status="open"), DEFAULTS, Skip.NOT_SOLVED),
        (solved(status="closed"), DEFAULTS, Skip.NOT_SOLVED),
        (solved(merged=True), DEFAULTS, Skip.MERGED),
        (solved(tags=("vip", "spam")), DEFAULTS, Skip.EXCLUDED_TAG),
        (solved(solved_by_system=True), DEFAULTS, Skip.AUTOMATIC),
        (solved(solved_at=NOW - timedelta(days=3)), DEFAULTS, Skip.TOO_OLD),
        (solved(channel="messenger", last_customer_at=NOW - timedelta(hours=25)), DEFAULTS,
         Skip.REPLY_WINDOW),
    ],
)  # fmt: skip
def test_a_survey_is_skipped_with_its_reason(
    ticket: TicketFacts, settings: SurveySettings, expected: Skip
) -> None:
    assert decide(ticket, settings, None, NOW) is expected


def test_automatic_solves_are_surveyed_when_the_tenant_asks() -> None:
    settings = SurveySettings(survey_automatic_solves=True)
    assert isinstance(decide(solved(solved_by_system=True), settings, None, NOW), Invite)


def test_a_customer_is_invited_at_most_once_per_cooldown() -> None:
    assert decide(solved(), DEFAULTS, NOW - timedelta(days=6), NOW) is Skip.COOLDOWN
    assert isinstance(decide(solved(), DEFAULTS, NOW - timedelta(days=8), NOW), Invite)
    no_cooldown = SurveySettings(cooldown_days=0)
    assert isinstance(decide(solved(), no_cooldown, NOW - timedelta(minutes=1), NOW), Invite)


def test_a_messenger_ticket_is_surveyed_in_its_channel_within_the_reply_window() -> None:
    ticket = solved(channel="messenger", last_customer_at=NOW - timedelta(hours=2))
    decision = decide(ticket, DEFAULTS, None, NOW)
    assert isinstance(decision, Invite)
    assert decision.channel == "messenger"
    unlimited = SurveySettings(reply_window_hours=0)
    old = replace(ticket, last_customer_at=NOW - timedelta(days=3))
    assert isinstance(decide(old, unlimited, None, NOW), Invite)


def test_sampling_is_decided_by_the_ticket_so_a_replay_decides_the_same() -> None:
    ids = [uuid4() for _ in range(2000)]
    half = [i for i in ids if sampled(i, 50.0)]
    assert 850 < len(half) < 1150
    assert half == [i for i in ids if sampled(i, 50.0)]
    assert all(sampled(i, 100.0) for i in ids)
    assert not any(sampled(i, 0.0) for i in ids)
    skipped = next(i for i in ids if not sampled(i, 50.0))
    decision = decide(solved(ticket_id=skipped), SurveySettings(sample_percent=50), None, NOW)
    assert decision is Skip.NOT_SAMPLED


def test_the_credit_rule_names_the_last_replier_or_the_assignee_at_solve() -> None:
    ticket = solved(assignee_id="carl")  # reassigned after the solve
    assert credited_agent(ticket, Credit.LAST_REPLIER) == "bob"
    assert credited_agent(ticket, Credit.ASSIGNEE) == "ann"
    assert credited_agent(solved(last_replier_id=None), Credit.LAST_REPLIER) == "ann"


def test_scales_and_thresholds() -> None:
    assert scale(SurveyKind.CSAT, DEFAULTS) == (1, 2, 3, 4, 5)
    assert scale(SurveyKind.CSAT, SurveySettings(csat_scale=CsatScale.BINARY)) == (1, 5)
    assert scale(SurveyKind.NPS, DEFAULTS) == tuple(range(11))
    assert scale(SurveyKind.CES, DEFAULTS) == tuple(range(1, 8))
    assert is_negative(SurveyKind.CSAT, 2, DEFAULTS)
    assert not is_negative(SurveyKind.CSAT, 3, DEFAULTS)
    assert is_negative(SurveyKind.NPS, 6, DEFAULTS)
    assert not is_negative(SurveyKind.NPS, 7, DEFAULTS)
    assert not is_negative(SurveyKind.CES, 1, SurveySettings(thresholds={}))


def test_a_threshold_outside_the_scale_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"csat threshold must be 1\.\.4"):
        SurveySettings(thresholds={SurveyKind.CSAT: 5})
