"""Whether to invite a customer to a survey about a solved ticket, and about whom it asks.

Pure: the handlers load the ticket's facts, the tenant's settings and when the customer was
last invited, and this module decides. Every "no" has a reason, kept for the admin who asks
why a customer got no survey.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from helpdesk_contracts import SCORE_RANGES, SurveyKind
from helpdesk_contracts.feedback import ReasonCode
from helpdesk_contracts.values import Tag


class Credit(StrEnum):
    """Who a ticket's score is credited to (and who hears of a bad one)."""

    LAST_REPLIER = "last_replier"
    """The agent who last replied to the customer publicly; the assignee when no one did."""
    ASSIGNEE = "assignee"
    """The assignee when the ticket was solved."""


class CsatScale(StrEnum):
    FIVE = "five"
    """1..5 (the five faces)."""
    BINARY = "binary"
    """Good or bad, recorded as 5 and 1: CSAT % stays the share of good answers."""


REPLY_WINDOW_CHANNELS = frozenset({"chat", "messenger", "social"})
"""Channels whose providers let a business write only within a window after the customer's
last message (WhatsApp, Facebook Messenger: 24 hours)."""

DEFAULT_REASONS = (
    "slow_response", "not_resolved", "unfriendly", "had_to_repeat", "product_issue", "other",
)  # fmt: skip


class SurveySettings(BaseModel):
    """A tenant's survey settings (`PUT /v1/survey-settings`); absent: these defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    survey: SurveyKind = SurveyKind.CSAT
    """Which survey follows a solved ticket."""
    csat_scale: CsatScale = CsatScale.FIVE
    delay_s: int = Field(default=3600, ge=0, le=30 * 86400)
    """After the solve: a reopened ticket in the meantime is not surveyed then."""
    sample_percent: float = Field(default=100.0, ge=0, le=100)
    """Share of solved tickets surveyed (the same tickets on every replay)."""
    cooldown_days: int = Field(default=7, ge=0, le=365)
    """At most one invitation per customer in this many days."""
    valid_days: int = Field(default=14, ge=1, le=90)
    """How long the survey page takes an answer; answering again meanwhile replaces it."""
    reply_window_hours: int = Field(default=24, ge=0, le=24 * 30)
    """For chat, messenger and social tickets: no survey when the customer's last message
    is older than this (the provider would refuse it); 0: no such limit."""
    excluded_tags: tuple[Tag, ...] = ("spam",)
    """Tickets with one of these tags are not surveyed."""
    survey_automatic_solves: bool = False
    """Survey tickets solved by an automation (a system actor), not by an agent."""
    credit: Credit = Credit.LAST_REPLIER
    thresholds: dict[SurveyKind, int] = Field(
        default_factory=lambda: {SurveyKind.CSAT: 2, SurveyKind.NPS: 6, SurveyKind.CES: 2}
    )
    """Scores at or below these are bad feedback: flagged for follow-up."""
    reopen_on_negative: bool = False
    """Ask ticketing to reopen a solved ticket that got bad feedback."""
    reasons: tuple[ReasonCode, ...] = Field(default=DEFAULT_REASONS, max_length=30)
    """What a customer who gave a low score may pick as the reason."""
    at_risk_below: float = Field(default=50.0, ge=0, le=100)
    """Customer health (domain/health.py): a customer whose score falls below this is at
    risk, and CustomerAtRisk is published once per drop."""

    @model_validator(mode="after")
    def _thresholds_in_range(self) -> "SurveySettings":
        for kind, threshold in self.thresholds.items():
            low, high = SCORE_RANGES[kind]
            if not low <= threshold < high:
                raise ValueError(f"the {kind} threshold must be {low}..{high - 1}")
        return self

    def threshold(self, kind: SurveyKind) -> int | None:
        return self.thresholds.get(kind)


@dataclass
class TicketFacts:
    """What the feedback service keeps of a ticket, folded from its events."""

    tenant_id: str
    ticket_id: UUID
    number: int
    customer_id: str
    channel: str
    priority: str
    opened_at: datetime
    language: str | None = None
    organisation_id: str | None = None
    account_manager_id: str | None = None
    group_id: str | None = None
    assignee_id: str | None = None
    last_replier_id: str | None = None
    tags: tuple[str, ...] = ()
    status: str = "open"
    """open, solved or closed."""
    merged: bool = False
    first_response_at: datetime | None = None
    solved_at: datetime | None = None
    solved_by_system: bool = False
    assignee_at_solve: str | None = None
    last_customer_at: datetime | None = None
    reopens: int = 0
    changed: bool = field(default=False, compare=False)


class Skip(StrEnum):
    """Why a solved ticket got no survey."""

    DISABLED = "surveys are turned off"
    NOT_SOLVED = "the ticket is no longer solved"
    MERGED = "the ticket was merged into another"
    EXCLUDED_TAG = "the ticket has an excluded tag"
    AUTOMATIC = "an automation solved the ticket"
    TOO_OLD = "the ticket was solved too long ago"
    NOT_SAMPLED = "not in the sample"
    COOLDOWN = "the customer was invited recently"
    REPLY_WINDOW = "the channel's reply window has closed"


@dataclass(frozen=True)
class Invite:
    survey: SurveyKind
    agent_id: str | None
    group_id: str | None
    expires_at: datetime
    channel: str | None
    """The ticket's channel when the invitation must go there (a messenger thread)."""


TOO_OLD_AFTER = timedelta(days=1)
"""A survey due longer ago than this is not sent: a service deployed onto years of history,
or back from a long outage, must not survey every customer about old tickets."""


def credited_agent(ticket: TicketFacts, credit: Credit) -> str | None:
    """The agent a ticket's score counts for (documented in the README)."""
    if credit is Credit.ASSIGNEE:
        return ticket.assignee_at_solve or ticket.assignee_id
    return ticket.last_replier_id or ticket.assignee_at_solve or ticket.assignee_id


def sampled(ticket_id: UUID, percent: float) -> bool:
    """Whether the ticket falls in the sample: decided by its id, so the same on a replay."""
    bucket = int.from_bytes(hashlib.sha256(ticket_id.bytes).digest()[:4], "big") % 10_000
    return bucket < percent * 100


def decide(
    ticket: TicketFacts, settings: SurveySettings, last_invited: datetime | None, now: datetime
) -> Invite | Skip:
    """The invitation a solved ticket's customer gets now, or why they get none."""
    if not settings.enabled:
        return Skip.DISABLED
    if ticket.merged:
        return Skip.MERGED
    if ticket.status != "solved" or ticket.solved_at is None:
        return Skip.NOT_SOLVED
    if set(ticket.tags) & set(settings.excluded_tags):
        return Skip.EXCLUDED_TAG
    if ticket.solved_by_system and not settings.survey_automatic_solves:
        return Skip.AUTOMATIC
    if now - (ticket.solved_at + timedelta(seconds=settings.delay_s)) > TOO_OLD_AFTER:
        return Skip.TOO_OLD
    if not sampled(ticket.ticket_id, settings.sample_percent):
        return Skip.NOT_SAMPLED
    if last_invited is not None and now - last_invited < timedelta(days=settings.cooldown_days):
        return Skip.COOLDOWN
    windowed = ticket.channel in REPLY_WINDOW_CHANNELS
    if windowed and settings.reply_window_hours:
        last = ticket.last_customer_at or ticket.opened_at
        if now - last > timedelta(hours=settings.reply_window_hours):
            return Skip.REPLY_WINDOW
    return Invite(
        survey=settings.survey,
        agent_id=credited_agent(ticket, settings.credit),
        group_id=ticket.group_id,
        expires_at=now + timedelta(days=settings.valid_days),
        channel=ticket.channel if windowed else None,
    )


def due_at(solved_at: datetime, settings: SurveySettings) -> datetime:
    return solved_at + timedelta(seconds=settings.delay_s)


def scale(kind: SurveyKind, settings: SurveySettings) -> tuple[int, ...]:
    """The answers the page offers, worst first."""
    if kind is SurveyKind.CSAT and settings.csat_scale is CsatScale.BINARY:
        return (1, 5)
    low, high = SCORE_RANGES[kind]
    return tuple(range(low, high + 1))


def is_negative(kind: SurveyKind, score: int, settings: SurveySettings) -> bool:
    threshold = settings.threshold(kind)
    return threshold is not None and score <= threshold
