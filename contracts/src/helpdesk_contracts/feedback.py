"""Customer feedback: survey invitations, and survey answers from our feedback service or
from other systems."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Annotated, Self
from uuid import UUID

from pydantic import ConfigDict, Field, JsonValue, StringConstraints, model_validator

from helpdesk_contracts.directory import ContactKind
from helpdesk_contracts.envelope import MAX_BIGINT, Event, UtcDatetime
from helpdesk_contracts.values import Body, Identifier, Language, SystemName


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

    def partition_key(self) -> str:
        """Keyed by the ticket id, so it follows the ticket's events; else by survey_id."""
        return str(self.ticket_id or self.survey_id)
