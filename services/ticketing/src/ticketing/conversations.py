"""Customers' messages from other systems: a reply, a new ticket, or a follow-up."""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from helpdesk_contracts import (
    Actor,
    ActorKind,
    AttachmentRef,
    CustomerMessageReceived,
    EventEnvelope,
    ExternalRef,
    TicketStatus,
)
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.eventstore import EventStore
from ticketing.domain import OpenTicket, Ticket, TicketError
from ticketing.handlers import CommandContext, Link, envelopes_for_changes
from ticketing.numbers import TicketNumbers
from ticketing.threads import ThreadKey, Threads

_IDS = UUID("0b6f1f5e-2f3a-4e8e-9a51-7d5c2b9e4c31")


def message_id_for(tenant_id: str, source: str, external_message_id: str) -> UUID:
    return uuid5(_IDS, f"message\x1f{tenant_id}\x1f{source}\x1f{external_message_id}")


def ticket_id_for_message(tenant_id: str, source: str, external_message_id: str) -> UUID:
    """The ticket a message opens (when it opens one): the same message opens the same one."""
    return uuid5(_IDS, f"ticket\x1f{tenant_id}\x1f{source}\x1f{external_message_id}")


async def receive_customer_messages(
    messages: Sequence[EventEnvelope[Any]],
    *,
    store: EventStore,
    numbers: TicketNumbers,
    threads: Threads,
    now: datetime,
    links: Mapping[UUID, Link] | None = None,
    attached: list[tuple[str, UUID, Sequence[AttachmentRef]]] | None = None,
) -> list[Rejection]:
    """Apply a batch in order; a re-sent message changes nothing. `links` holds, by event
    id, the requester and organisation the directory knows; `attached` receives the
    (tenant, ticket) each applied message's files went to."""
    keys: list[ThreadKey] = [
        (e.tenant_id, e.payload.source, e.payload.external_thread_id) for e in messages
    ]
    current = await threads.find(keys)
    tickets: dict[UUID, Ticket] = {}
    events: list[EventEnvelope[Any]] = []
    rejections: list[Rejection] = []

    async def ticket(tenant: str, ticket_id: UUID) -> Ticket | None:
        if ticket_id not in tickets:
            found = Ticket.from_history(await store.load(tenant, ticket_id))
            if found is None:
                return None
            tickets[ticket_id] = found
        return tickets[ticket_id]

    for envelope, key in zip(messages, keys, strict=True):
        m: CustomerMessageReceived = envelope.payload
        requester, organisation = (links or {}).get(envelope.event_id) or (
            m.requester,
            m.organisation,
        )
        tenant, at = envelope.tenant_id, min(envelope.occurred_at, now)
        ctx = CommandContext(tenant, envelope.correlation_id, causation_id=envelope.event_id)
        message_id = message_id_for(tenant, m.source, m.external_message_id)
        opened_by_it = ticket_id_for_message(tenant, m.source, m.external_message_id)
        thread_ticket = await ticket(tenant, current[key]) if key in current else None
        if thread_ticket is None and m.ticket_id is not None:
            # A reply to one of our emails: the conversation is that ticket's (if it is this
            # tenant's; else the message opens a ticket as a new conversation would).
            thread_ticket = await ticket(tenant, m.ticket_id)
            if thread_ticket is not None:
                current[key] = thread_ticket.id
                await threads.point(key, thread_ticket.id)
        while thread_ticket is not None and thread_ticket.merged_into is not None:
            # The conversation continues on the ticket its duplicate was merged into.
            thread_ticket = await ticket(tenant, thread_ticket.merged_into)
            if thread_ticket is not None:
                current[key] = thread_ticket.id
                await threads.point(key, thread_ticket.id)
        if thread_ticket is not None and (
            message_id in thread_ticket.message_ids or thread_ticket.id == opened_by_it
        ):
            continue  # re-sent
        try:
            if thread_ticket is not None and thread_ticket.status is not TicketStatus.CLOSED:
                before = len(thread_ticket.changes)
                thread_ticket.customer_reply(
                    requester.customer_id, m.body, message_id=message_id, channel=m.channel,
                    at=at, attachments=m.attachments,
                )  # fmt: skip
                events += envelopes_for_changes(thread_ticket, ctx, at, since=before)
                if attached is not None and m.attachments:
                    attached.append((tenant, thread_ticket.id, m.attachments))
                continue
            if await ticket(tenant, opened_by_it) is not None:
                continue  # re-sent after its thread moved on to a later follow-up
            opened = Ticket.open(
                OpenTicket(
                    subject=m.subject,
                    description=m.body,
                    requester=requester,
                    priority=m.priority,
                    channel=m.channel,
                    tags=tuple(m.tags),
                    organisation=organisation,
                    external_ref=ExternalRef(source=m.source, external_id=m.external_thread_id),
                    opened_by=Actor(kind=ActorKind.CUSTOMER, id=requester.customer_id),
                    follow_up_of=thread_ticket.id if thread_ticket else None,
                    attachments=m.attachments,
                ),
                ticket_id=opened_by_it,
                tenant_id=tenant,
                number=(await numbers.reserve(tenant))[0],
                at=at,
            )
        except TicketError as exc:
            rejections.append(Rejection(envelope.event_id, str(exc)))
            continue
        tickets[opened.id] = opened
        current[key] = opened.id
        await threads.point(key, opened.id)
        events += envelopes_for_changes(opened, ctx, at, since=0)
        if attached is not None and m.attachments:
            attached.append((tenant, opened.id, m.attachments))
    await store.append(events)
    return rejections
