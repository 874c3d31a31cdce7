"""SLA policies: which targets a ticket owes, chosen by conditions on the ticket.

A tenant orders its policies by `position`; the first whose conditions all hold is the
ticket's policy (an empty condition holds for every ticket), else the built-in default:
the promise of our source documents, an answer to every ticket within 24 hours.

Policies are versioned: saving one makes a new version, which new clocks use; running
clocks keep the version they started with (their provenance names it) unless an admin
re-applies the policy.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from helpdesk_contracts import Channel, Priority, RetargetRule, SlaMetric, TicketStatus, TicketType
from helpdesk_contracts.values import Identifier, Tag

MAX_TARGET_MINUTES = 366 * 24 * 60  # a year: beyond it a target is a typo, not a promise
ANY_PRIORITY: Literal["any"] = "any"
_PAUSABLE = frozenset({TicketStatus.PENDING, TicketStatus.ON_HOLD})


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Spec):
    """How long a metric may take: minutes of business hours, or of calendar time."""

    minutes: int = Field(ge=1, le=MAX_TARGET_MINUTES)
    business_hours: bool = False

    @property
    def seconds(self) -> int:
        return self.minutes * 60


class Conditions(_Spec):
    """What a ticket must be for the policy to apply: every list given must contain the
    ticket's value (for tags: one of the ticket's tags); an empty list does not filter."""

    tiers: tuple[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,50}$")], ...] = ()
    organisation_ids: tuple[Identifier, ...] = ()
    priorities: tuple[Priority, ...] = ()
    channels: tuple[Channel, ...] = ()
    types: tuple[TicketType, ...] = ()
    group_ids: tuple[Identifier, ...] = ()
    tags: tuple[Tag, ...] = ()


class PolicySpec(_Spec):
    """A policy as an admin writes it."""

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    position: int = Field(default=100, ge=0, le=1_000_000)
    """Policies are tried in ascending position (then id): the first that matches applies."""
    conditions: Conditions = Conditions()
    calendar_id: Identifier | None = None
    """The business calendar of its business-hours targets."""
    targets: dict[Priority | Literal["any"], dict[SlaMetric, Target]]
    """Per priority ("any" for the priorities not listed): the target of each metric."""
    pause_on: tuple[TicketStatus, ...] = (TicketStatus.PENDING, TicketStatus.ON_HOLD)
    """Statuses in which the clocks stop counting (waiting on the customer, on hold)."""
    retarget: RetargetRule = RetargetRule.KEEP_ELAPSED
    """How running clocks take a new target when the ticket's priority, group, type, tags
    or organisation change."""
    warnings: tuple[Annotated[float, Field(gt=0, lt=1)], ...] = (0.75, 0.9)
    """Fractions of a target at which a warning is published."""

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if not any(self.targets.values()):
            raise ValueError("targets: a policy needs at least one target")
        business = any(t.business_hours for m in self.targets.values() for t in m.values())
        if business and self.calendar_id is None:
            raise ValueError("targets in business hours need a calendar_id")
        if not set(self.pause_on) <= _PAUSABLE:
            raise ValueError("pause_on: only pending and on_hold can pause clocks")
        if len(set(self.warnings)) != len(self.warnings):
            raise ValueError("warnings: each fraction once")
        return self

    def target(self, priority: Priority, metric: SlaMetric) -> Target | None:
        targets = self.targets.get(priority)
        if targets is None:
            targets = self.targets.get(ANY_PRIORITY) or {}
        return targets.get(metric)

    @property
    def thresholds(self) -> tuple[float, ...]:
        return tuple(sorted(self.warnings))


@dataclass(frozen=True)
class Policy:
    """A saved version of a policy."""

    id: str
    version: int
    spec: PolicySpec


DEFAULT_POLICY = Policy(
    id="default",
    version=1,
    spec=PolicySpec(
        name="Every ticket gets an answer within 24 hours",
        position=1_000_000,
        targets={ANY_PRIORITY: {SlaMetric.FIRST_RESPONSE: Target(minutes=24 * 60)}},
    ),
)
"""What applies when none of a tenant's policies matches (or it has none)."""


@dataclass(frozen=True)
class TicketFacts:
    """What policies look at: the SLA service's view of a ticket."""

    ticket_id: UUID
    number: int
    priority: Priority
    channel: Channel
    type: TicketType
    tags: tuple[str, ...] = ()
    group_id: str | None = None
    organisation_id: str | None = None
    tier: str | None = None


def _holds(allowed: Sequence[object], value: object) -> bool:
    return not allowed or value in allowed


def matches(conditions: Conditions, ticket: TicketFacts) -> bool:
    c = conditions
    return (
        _holds(c.tiers, ticket.tier)
        and _holds(c.organisation_ids, ticket.organisation_id)
        and _holds(c.priorities, ticket.priority)
        and _holds(c.channels, ticket.channel)
        and _holds(c.types, ticket.type)
        and _holds(c.group_ids, ticket.group_id)
        and (not c.tags or not set(c.tags).isdisjoint(ticket.tags))
    )


def select(policies: Iterable[Policy], ticket: TicketFacts) -> Policy:
    """The ticket's policy: the first (by position, then id) that matches, else the default."""
    for policy in sorted(policies, key=lambda p: (p.spec.position, p.id)):
        if matches(policy.spec.conditions, ticket):
            return policy
    return DEFAULT_POLICY
