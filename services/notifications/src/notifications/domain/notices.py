"""Which events notify whom (the default rules), and each notice's identity.

The defaults, documented in the service's README:

| event             | to                  | template           | lane   | transactional |
|-------------------|---------------------|--------------------|--------|---------------|
| TicketOpened      | the requester       | ticket_opened      | urgent | yes           |
| ResponseSent      | the requester       | agent_replied      | urgent | yes           |
| TicketSolved      | the requester       | ticket_solved      | urgent | yes           |
| SurveyRequested   | the customer        | survey_invitation  | bulk   | no            |

A transactional message answers something the person did (opened a ticket, is being
answered): it ignores opt-outs and quiet hours. The urgent lane is sent by a scheduler of
its own, so a survey campaign never delays an acknowledgement.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from uuid import UUID, uuid5

from helpdesk_contracts import ResponseSent, SurveyRequested, TicketOpened, TicketSolved


class Lane(StrEnum):
    URGENT = "urgent"
    """Acknowledgements, replies and agents' alerts."""
    BULK = "bulk"
    """Survey invitations and anything else that may wait behind them."""


class Channel(StrEnum):
    EMAIL = "email"


@dataclass(frozen=True)
class Notice:
    """One message to send: what about, to whom, through what."""

    template: str
    recipient: str
    """"customer:<id>" or "agent:<id>"."""
    channel: Channel
    lane: Lane
    transactional: bool
    ticket_id: UUID | None


_DELIVERIES = UUID("7a3e9c1d-52b4-4f8e-a6d0-c9e1f2b3a405")


def delivery_id(event_id: UUID, recipient: str, channel: str) -> UUID:
    """The idempotency key of (event, recipient, channel): the same on every redelivery,
    rebalance or restart, and sent with the message so receivers can deduplicate too."""
    return uuid5(_DELIVERIES, f"{event_id}/{recipient}/{channel}")


def customer(customer_id: str) -> str:
    return f"customer:{customer_id}"


def notices_for(payload: Any, ticket_id: UUID | None) -> list[Notice]:
    """The default rules: the notices an event's payload calls for."""
    match payload:
        case TicketOpened(requester=requester):
            return [_to_customer("ticket_opened", requester.customer_id, ticket_id)]
        case ResponseSent() if ticket_id is not None:
            return [_to_requester("agent_replied", ticket_id)]
        case TicketSolved() if ticket_id is not None:
            return [_to_requester("ticket_solved", ticket_id)]
        case SurveyRequested(customer_id=customer_id, ticket_id=about):
            return [Notice("survey_invitation", customer(customer_id), Channel.EMAIL,
                           Lane.BULK, transactional=False, ticket_id=about)]  # fmt: skip
    return []


REQUESTER = "requester"
"""Stands for the ticket's requester, resolved from the ticket when the notice is stored."""


def _to_customer(template: str, customer_id: str, ticket_id: UUID | None) -> Notice:
    return Notice(template, customer(customer_id), Channel.EMAIL, Lane.URGENT,
                  transactional=True, ticket_id=ticket_id)  # fmt: skip


def _to_requester(template: str, ticket_id: UUID) -> Notice:
    return Notice(template, REQUESTER, Channel.EMAIL, Lane.URGENT, transactional=True,
                  ticket_id=ticket_id)  # fmt: skip
