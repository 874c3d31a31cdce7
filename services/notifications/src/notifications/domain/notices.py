"""Which events notify whom: the rules (defaults, and what a tenant's admins change), the
people an event's audience names, and each notice's identity.

The default rules (also in the service's README):

| event                   | audience                               | template          | lane   |
|-------------------------|----------------------------------------|-------------------|--------|
| TicketOpened            | requester                              | ticket_opened     | urgent |
| ResponseSent            | requester                              | agent_replied     | urgent |
| TicketSolved            | requester                              | ticket_solved     | urgent |
| SurveyRequested         | customer                               | survey_invitation | bulk   |
| TicketAssigned          | assignee                               | ticket_assigned   | urgent |
| CustomerReplied         | assignee, followers                    | customer_replied  | urgent |
| TicketFollowersChanged  | new followers                          | follower_added    | urgent |
| SlaWarning              | assignee (else the group's leads)      | sla_warning       | urgent |
| SlaBreached             | assignee, group leads, account manager | sla_breached      | urgent |
| NegativeFeedbackFlagged | group leads, account manager, agent    | negative_feedback | urgent |
| CustomerAtRisk          | account manager (else group leads)     | customer_at_risk  | urgent |

Messages to customers about their own request are transactional: they ignore opt-outs and
quiet hours. Agents are never told about what they did themselves. SLA warnings and
breaches, negative feedback and customers at risk are escalations: they wait for the
tenant's business hours unless the ticket is urgent. The urgent lane is sent by a scheduler
of its own, so survey mail never delays it. "agent" in negative feedback's audience is the
credited agent (`credited_agent`), and a customer at risk's group is their latest ticket's.

Negative feedback goes where a Zendesk trigger on a bad satisfaction rating usually sends
it: the team lead of the ticket's group (who coaches and may take the follow-up over), the
customer's account manager (a key account's relationship is theirs) and the agent the
answer is about (who knows the case and can call the customer back). A customer at risk
is the account manager's to act on; a customer without one is the business of the team
that served their latest ticket, so its group's leads hear of it instead. Admins drop or
add audiences per tenant like any other rule's.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any
from uuid import UUID, uuid5

from helpdesk_contracts import (
    CustomerAtRisk,
    CustomerReplied,
    NegativeFeedbackFlagged,
    ResponseSent,
    SlaBreached,
    SlaWarning,
    SurveyRequested,
    TicketAssigned,
    TicketFollowersChanged,
    TicketOpened,
    TicketSolved,
)


class Lane(StrEnum):
    URGENT = "urgent"
    """Acknowledgements, replies and agents' alerts."""
    BULK = "bulk"
    """Survey invitations and anything else that may wait behind them."""


class Audience(StrEnum):
    """Whom a rule notifies, resolved against the ticket when the event is read."""

    REQUESTER = "requester"
    CUSTOMER = "customer"
    """The customer the event names (a survey invitation)."""
    ASSIGNEE = "assignee"
    FOLLOWERS = "followers"
    NEW_FOLLOWERS = "new_followers"
    GROUP_LEADS = "group_leads"
    ASSIGNEE_OR_GROUP_LEADS = "assignee_or_group_leads"
    ACCOUNT_MANAGER = "account_manager"
    """The personal manager of the customer's organisation (a key account): the one a
    feedback event names, else the ticket's."""
    ACCOUNT_MANAGER_OR_GROUP_LEADS = "account_manager_or_group_leads"
    CREDITED_AGENT = "credited_agent"
    """The agent a customer's feedback is about (the feedback service's credit rule: the
    last to reply, or the assignee when solved)."""


@dataclass(frozen=True)
class Rule:
    event_type: str
    audiences: tuple[Audience, ...]
    template: str
    lane: Lane = Lane.URGENT
    transactional: bool = False
    """Answers what the person did: ignores opt-outs and quiet hours."""
    escalation: bool = False
    """Waits for the tenant's business hours unless the ticket is urgent."""
    enabled: bool = True

    @property
    def category(self) -> str:
        """What a person opts out of: one category per template."""
        return self.template


DEFAULT_RULES: Mapping[str, Rule] = MappingProxyType({
    rule.event_type: rule
    for rule in (
        Rule(TicketOpened.event_type, (Audience.REQUESTER,), "ticket_opened", transactional=True),
        Rule(ResponseSent.event_type, (Audience.REQUESTER,), "agent_replied", transactional=True),
        Rule(TicketSolved.event_type, (Audience.REQUESTER,), "ticket_solved", transactional=True),
        Rule(SurveyRequested.event_type, (Audience.CUSTOMER,), "survey_invitation", Lane.BULK),
        Rule(TicketAssigned.event_type, (Audience.ASSIGNEE,), "ticket_assigned"),
        Rule(CustomerReplied.event_type, (Audience.ASSIGNEE, Audience.FOLLOWERS),
             "customer_replied"),
        Rule(TicketFollowersChanged.event_type, (Audience.NEW_FOLLOWERS,), "follower_added"),
        Rule(SlaWarning.event_type, (Audience.ASSIGNEE_OR_GROUP_LEADS,), "sla_warning",
             escalation=True),
        Rule(SlaBreached.event_type, (Audience.ASSIGNEE, Audience.GROUP_LEADS,
                                      Audience.ACCOUNT_MANAGER), "sla_breached", escalation=True),
        Rule(NegativeFeedbackFlagged.event_type, (Audience.GROUP_LEADS, Audience.ACCOUNT_MANAGER,
                                                  Audience.CREDITED_AGENT), "negative_feedback",
             escalation=True),
        Rule(CustomerAtRisk.event_type, (Audience.ACCOUNT_MANAGER_OR_GROUP_LEADS,),
             "customer_at_risk", escalation=True),
    )
})  # fmt: skip
"""Event type -> its rule, until a tenant's admins change it."""

WITHOUT_TICKET = frozenset({SurveyRequested.event_type, NegativeFeedbackFlagged.event_type,
                            CustomerAtRisk.event_type})  # fmt: skip
"""Events whose message stands without the ticket as this service knows it: the event names
its people and carries what its template shows. Any other event about a ticket this service
has not seen notifies no one."""


@dataclass(frozen=True)
class TicketFacts:
    """What this service knows of a ticket, from its events (the `tickets` table)."""

    requester_id: str
    assignee_id: str | None = None
    group_id: str | None = None
    followers: tuple[str, ...] = ()
    account_manager_id: str | None = None
    priority: str = "normal"


@dataclass(frozen=True)
class Situation:
    """Everything the audience of one event is resolved against."""

    ticket: TicketFacts | None
    """The event's ticket; for a customer's event (CustomerAtRisk), their latest ticket
    known here."""
    group_leads: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Group id -> its leads' agent ids (set by admins over the API)."""


def agent(agent_id: str) -> str:
    return f"agent:{agent_id}"


def customer(customer_id: str) -> str:
    return f"customer:{customer_id}"


def recipients(rule: Rule, payload: Any, situation: Situation) -> list[str]:
    """The people ("customer:<id>", "agent:<id>") a rule's audience names for this event,
    each once, in the audience's order; never the agent who caused the event."""
    ticket = situation.ticket
    found: list[str] = []
    for audience in rule.audiences:
        found += _resolve(audience, payload, ticket, situation.group_leads)
    actor = _actor(payload)
    return [p for p in dict.fromkeys(found) if p != actor]


def _resolve(
    audience: Audience, payload: Any, ticket: TicketFacts | None,
    leads: Mapping[str, tuple[str, ...]],
) -> list[str]:  # fmt: skip
    # isinstance, not getattr: a pydantic model's missing attribute is a slow exception.
    named = payload if isinstance(payload, TicketAssigned | SlaWarning | SlaBreached) else None
    assignee = (named.assignee_id if named else None) or (ticket.assignee_id if ticket else None)
    match audience:
        case Audience.REQUESTER:
            return [customer(ticket.requester_id)] if ticket else []
        case Audience.CUSTOMER:
            who = payload.customer_id if isinstance(payload, SurveyRequested) else None
            return [customer(who)] if who else []
        case Audience.ASSIGNEE:
            return [agent(assignee)] if assignee else []
        case Audience.FOLLOWERS:
            return [agent(a) for a in (ticket.followers if ticket else ())]
        case Audience.NEW_FOLLOWERS:
            if isinstance(payload, TicketFollowersChanged):
                return [agent(a) for a in payload.followers if a not in payload.previous]
            return []
        case Audience.GROUP_LEADS:
            return _leads(payload, ticket, leads)
        case Audience.ASSIGNEE_OR_GROUP_LEADS:
            return [agent(assignee)] if assignee else _leads(payload, ticket, leads)
        case Audience.ACCOUNT_MANAGER:
            manager = manager_of(payload, ticket)
            return [agent(manager)] if manager else []
        case Audience.ACCOUNT_MANAGER_OR_GROUP_LEADS:
            manager = manager_of(payload, ticket)
            return [agent(manager)] if manager else _leads(payload, ticket, leads)
        case Audience.CREDITED_AGENT:
            credited = payload.agent_id if isinstance(payload, NegativeFeedbackFlagged) else None
            return [agent(credited)] if credited else []
    return []


def _leads(
    payload: Any, ticket: TicketFacts | None, leads: Mapping[str, tuple[str, ...]]
) -> list[str]:
    return [agent(a) for a in leads.get(group_of(payload, ticket) or "", ())]


def group_of(payload: Any, ticket: TicketFacts | None) -> str | None:
    """The group whose leads hear of an event: the one it names, else its ticket's."""
    named = (
        payload.group_id
        if isinstance(payload, TicketAssigned | SlaWarning | SlaBreached | NegativeFeedbackFlagged)
        else None
    )
    return named or (ticket.group_id if ticket else None)


def manager_of(payload: Any, ticket: TicketFacts | None) -> str | None:
    """The account manager: the one a feedback event names (as the feedback service knew the
    organisation when it concluded), else the ticket's."""
    named = (
        payload.account_manager_id
        if isinstance(payload, NegativeFeedbackFlagged | CustomerAtRisk)
        else None
    )
    return named or (ticket.account_manager_id if ticket else None)


def _actor(payload: Any) -> str | None:
    """The agent who caused the event, who needs no message about it."""
    actor = (
        payload.assigned_by if isinstance(payload, TicketAssigned)
        else payload.changed_by if isinstance(payload, TicketFollowersChanged)
        else None
    )  # fmt: skip
    return agent(actor.id) if actor is not None and actor.kind == "agent" else None


_DELIVERIES = UUID("7a3e9c1d-52b4-4f8e-a6d0-c9e1f2b3a405")


def delivery_id(event_id: UUID, recipient: str, channel: str) -> UUID:
    """The idempotency key of (event, recipient, channel): the same on every redelivery,
    rebalance or restart, and sent with the message so receivers can deduplicate too."""
    return uuid5(_DELIVERIES, f"{event_id}/{recipient}/{channel}")


def effective_rules(overrides: Iterable[Rule]) -> dict[str, Rule]:
    """The defaults with a tenant's changes on top."""
    return {**DEFAULT_RULES, **{rule.event_type: rule for rule in overrides}}
