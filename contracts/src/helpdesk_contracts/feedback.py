"""Customer feedback: survey invitations, survey answers from our feedback service or from
other systems, and what the feedback service concludes from them (bad feedback flagged,
customers at risk)."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Self
from uuid import UUID

from pydantic import ConfigDict, Field, JsonValue, StringConstraints, model_validator

from helpdesk_contracts.directory import ContactKind
from helpdesk_contracts.envelope import MAX_BIGINT, Event, UtcDatetime
from helpdesk_contracts.values import Body, ContractModel, Identifier, Language, SystemName

ReasonCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,50}$")]
"""A code from the tenant's list of reasons for a low score, e.g. "slow_response"."""


class SurveyKind(StrEnum):
    """The survey a score answers: satisfaction, net promoter or customer effort."""

    CSAT = "csat"
    NPS = "nps"
    CES = "ces"


SCORE_RANGES: Mapping[SurveyKind, tuple[int, int]] = MappingProxyType(
    {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10), SurveyKind.CES: (1, 7)}
)
"""The inclusive range of `score` for each survey kind."""


def _score_rules() -> list[JsonValue]:
    # The per-kind ranges as JSON Schema if/then rules, for non-Python publishers.
    return [
        {
            "if": {"properties": {"survey": {"const": kind.value}}, "required": ["survey"]},
            "then": {"properties": {"score": {"minimum": low, "maximum": high}}},
        }
        for kind, (low, high) in SCORE_RANGES.items()
    ]


class FeedbackReceived(Event):
    """A customer answered a survey, usually about a ticket."""

    model_config = ConfigDict(json_schema_extra={"allOf": _score_rules()})

    event_type = "FeedbackReceived"
    personal_fields = ("comment",)
    """The comment is the customer's own words: the topic keeps it only a week, the feedback
    service keeps it sealed with the customer's key."""

    feedback_id: UUID
    """Unique per answer; a re-sent answer keeps its id."""
    ticket_id: UUID | None = None
    """The ticket the feedback is about, if any."""
    customer_id: Identifier
    survey: SurveyKind
    score: int = Field(ge=0, le=10)
    """csat 1..5, nps 0..10, ces 1..7."""
    comment: Body | None = None
    agent_id: Identifier | None = None
    """The agent the feedback is about, if any."""
    source: SystemName
    """Name of the system that collected the answer."""
    survey_id: UUID | None = None
    """The invitation (`SurveyRequested.survey_id`) it answers, if any."""
    reason: ReasonCode | None = None
    """For a low score: the reason the customer chose from the tenant's list."""
    replaces: UUID | None = None
    """The earlier answer to the same invitation that this one replaces (the customer
    answered again while the survey was open): only the latest answer counts in scores."""

    @model_validator(mode="after")
    def _score_in_range(self) -> Self:
        low, high = SCORE_RANGES[self.survey]
        if not low <= self.score <= high:
            raise ValueError(f"a {self.survey} score must be {low}..{high}, not {self.score}")
        return self

    def partition_key(self) -> str:
        """Keyed by the ticket id, so it follows the ticket's events; else by feedback_id."""
        return str(self.ticket_id or self.feedback_id)


AnswerUrl = Annotated[str, StringConstraints(max_length=2000, pattern=r"^https?://[^\s]+$")]
"""The customer's survey page, with the invitation's signed token in it."""


class SurveyRequested(Event):
    """The feedback service decided to ask a customer about a ticket; the notifications
    service delivers the invitation in the customer's channel and language.

    `answer_url` is the survey page; a template may offer one-click answers by adding
    `score=<n>` to its query. Opening such a link only preselects that answer on the page
    (mail systems' link scanners open every link): the customer's submit records it."""

    event_type = "SurveyRequested"

    survey_id: UUID
    """Unique per invitation; the token in `answer_url` names it."""
    ticket_id: UUID | None = None
    ticket_number: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    customer_id: Identifier
    survey: SurveyKind
    answer_url: AnswerUrl
    expires_at: UtcDatetime
    """After this the page no longer takes an answer."""
    channel: ContactKind | None = None
    """Where to send it; None: the customer's preferred channel."""
    language: Language | None = None
    """None: the customer's language, else the tenant's default."""
    agent_id: Identifier | None = None
    """The agent the survey asks about, if any."""
    scale: tuple[Annotated[int, Field(ge=0, le=10)], ...] = Field(default=(), max_length=11)
    """The answers the page offers, worst first, for one-click links: (1, 5) for a good/bad
    CSAT. Empty: every score of the kind's range (SCORE_RANGES)."""

    def partition_key(self) -> str:
        """Keyed by the ticket id, so it follows the ticket's events; else by survey_id."""
        return str(self.ticket_id or self.survey_id)


class NegativeFeedbackFlagged(Event):
    """A score at or below the tenant's threshold for its survey kind: the team lead or the
    customer's account manager should follow it up (the notifications service tells them).
    Carries no comment (personal data): the feedback API shows it to the people entitled."""

    event_type = "NegativeFeedbackFlagged"

    flag_id: UUID
    feedback_id: UUID
    ticket_id: UUID | None = None
    ticket_number: int | None = Field(default=None, ge=1, le=MAX_BIGINT)
    customer_id: Identifier
    organisation_id: Identifier | None = None
    account_manager_id: Identifier | None = None
    """The organisation's personal account manager, when the ticket named one."""
    agent_id: Identifier | None = None
    """The agent credited with the ticket's answer (the tenant's rule: last replier or
    assignee when solved)."""
    group_id: Identifier | None = None
    survey: SurveyKind
    score: int = Field(ge=0, le=10)
    threshold: int = Field(ge=0, le=10)
    """Scores at or below it are flagged."""
    reason: ReasonCode | None = None
    reopen: bool = False
    """The tenant asks for the ticket to be reopened: ticketing reopens a solved ticket."""

    def partition_key(self) -> str:
        """Keyed by the ticket id, so it follows the ticket's events; else by customer."""
        return str(self.ticket_id) if self.ticket_id else self.customer_id


class HealthReason(ContractModel):
    """One factor of a customer's health score and how much it took away (or added)."""

    code: ReasonCode
    """e.g. "sla_breaches", "low_csat", "csat_falling", "many_reopens", "ticket_surge"."""
    impact: float = Field(ge=-100, le=100)
    """Points it adds to (positive) or takes from (negative) the score of 100."""
    detail: str = Field(max_length=500)
    """What was seen, for people: "3 SLA breaches in 30 days"."""


class CustomerAtRisk(Event):
    """A customer's health score fell below the tenant's threshold. Published once per
    drop: not again until the score has recovered above the threshold."""

    event_type = "CustomerAtRisk"

    customer_id: Identifier
    organisation_id: Identifier | None = None
    account_manager_id: Identifier | None = None
    health: float = Field(ge=0, le=100)
    previous_health: float | None = Field(default=None, ge=0, le=100)
    threshold: float = Field(ge=0, le=100)
    reasons: tuple[HealthReason, ...] = Field(max_length=20)
    """What brought the score down, the largest first."""

    def partition_key(self) -> str:
        return self.customer_id
