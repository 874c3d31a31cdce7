"""Command handlers: load, decide (domain), append. Dependencies come in as arguments."""

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Event,
    EventEnvelope,
    ExternalRef,
    Organisation,
    Requester,
    TicketSubmitted,
)
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.eventstore import EventStore
from ticketing.domain import FieldDefinition, OpenTicket, Ticket, TicketError, check_fields
from ticketing.numbers import TicketNumbers

PRODUCER = "ticketing"

# Ticket ids derived from an external id or an idempotency key are uuid5 names in this
# namespace, so a re-sent request maps to the ticket it opened the first time.
_TICKET_IDS = UUID("5b0b3c2e-6d1f-4a53-9d0e-5f1a3c7e2b10")


def ticket_id_for_submission(tenant_id: str, source: str, external_id: str) -> UUID:
    return uuid5(_TICKET_IDS, f"submission\x1f{tenant_id}\x1f{source}\x1f{external_id}")


def ticket_id_for_idempotency_key(tenant_id: str, key: str) -> UUID:
    return uuid5(_TICKET_IDS, f"http\x1f{tenant_id}\x1f{key}")


@dataclass(frozen=True)
class CommandContext:
    """Who asks, for which tenant, and what caused it (for the envelope)."""

    tenant_id: str
    correlation_id: UUID
    causation_id: UUID | None = None


class TicketNotFoundError(Exception):
    """No such ticket for this tenant (another tenant's ticket is not found either)."""

    def __init__(self, ticket_id: UUID) -> None:
        super().__init__(f"ticket {ticket_id} not found")


class StaleVersionError(Exception):
    """The caller decided on an older version of the ticket than the stored one."""

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"the ticket is at version {current}, not {expected}; reload it and try again"
        )
        self.current = current


def envelopes_for(ticket: Ticket, ctx: CommandContext, at: datetime) -> list[EventEnvelope[Any]]:
    """Wrap the ticket's new events, numbered after its stored version."""
    return envelopes_for_changes(ticket, ctx, at, since=0)


def envelopes_for_changes(
    ticket: Ticket, ctx: CommandContext, at: datetime, *, since: int
) -> list[EventEnvelope[Any]]:
    """Wrap the ticket's new events from `changes[since]` on (one cause among several)."""
    return wrap(ticket.id, list(ticket.pending_versions())[since:], ctx, at)


def wrap(
    aggregate_id: UUID, pending: Iterable[tuple[int, Event]], ctx: CommandContext, at: datetime
) -> list[EventEnvelope[Any]]:
    """Envelopes for an aggregate's new (version, event) pairs (a ticket, a customer...)."""
    return [
        EventEnvelope.new(
            event,
            tenant_id=ctx.tenant_id,
            producer=PRODUCER,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            aggregate_id=aggregate_id,
            aggregate_version=version,
            occurred_at=at,
        )
        for version, event in pending
    ]


async def open_ticket(
    cmd: OpenTicket,
    ctx: CommandContext,
    *,
    ticket_id: UUID,
    store: EventStore,
    numbers: TicketNumbers,
    now: datetime,
) -> Ticket:
    """Open the ticket; ConcurrencyError when this id has opened one already.

    The caller then reads that one, in a transaction of its own (a refused insert ends this
    one). Not looking first spares a round trip for what is nearly always a new ticket;
    the repeat of a request costs a second transaction and a ticket number left unused.
    """
    [number] = await numbers.reserve(ctx.tenant_id)
    ticket = Ticket.open(cmd, ticket_id=ticket_id, tenant_id=ctx.tenant_id, number=number, at=now)
    await store.append(envelopes_for(ticket, ctx, now))
    return ticket


Link = tuple[Requester, Organisation | None]
"""A requester and organisation as the directory knows them (directory_store.links)."""


def linked_command(cmd: OpenTicket, link: Link | None) -> OpenTicket:
    if link is None:
        return cmd
    return cmd.model_copy(update={"requester": link[0], "organisation": link[1]})


def _command_from(submission: TicketSubmitted) -> OpenTicket:
    return OpenTicket(
        subject=submission.subject,
        description=submission.description,
        requester=submission.requester,
        priority=submission.priority,
        channel=submission.channel,
        type=submission.type,
        tags=tuple(submission.tags),
        custom_fields=submission.custom_fields,
        organisation=submission.organisation,
        external_ref=ExternalRef(source=submission.source, external_id=submission.external_id),
        opened_by=Actor(kind=ActorKind.SYSTEM, id=submission.source),
    )


async def open_submitted_tickets(
    submissions: Sequence[EventEnvelope[Any]],
    *,
    store: EventStore,
    numbers: TicketNumbers,
    now: datetime,
    fields: Mapping[str, Mapping[str, FieldDefinition]] | None = None,
    links: Mapping[UUID, Link] | None = None,
) -> list[Rejection]:
    """Open one ticket per new (tenant, source, external id) in the batch; repeats are no-ops.

    `fields` holds each tenant's custom field definitions; a tenant with none takes none.
    `links` holds, by event id, the requester and organisation the directory knows.
    """
    wanted: dict[tuple[str, UUID], EventEnvelope[Any]] = {}
    for envelope in submissions:
        s: TicketSubmitted = envelope.payload
        key = (
            envelope.tenant_id,
            ticket_id_for_submission(envelope.tenant_id, s.source, s.external_id),
        )
        wanted.setdefault(key, envelope)
    existing = await store.versions(wanted)
    new = [(key, env) for key, env in wanted.items() if key not in existing]

    per_tenant = Counter(tenant for (tenant, _), _ in new)
    reserved = {t: iter(ns) for t, ns in (await numbers.reserve_each(per_tenant)).items()}

    rejections: list[Rejection] = []
    events: list[EventEnvelope[Any]] = []
    for (tenant, ticket_id), envelope in new:
        # The ticket opened when the customer wrote, not when we caught up; a publisher's
        # clock running ahead does not move it into the future.
        at = min(envelope.occurred_at, now)
        number = next(reserved[tenant])
        try:
            check_fields(envelope.payload.custom_fields, (fields or {}).get(tenant, {}))
            ticket = Ticket.open(
                linked_command(
                    _command_from(envelope.payload), (links or {}).get(envelope.event_id)
                ),
                ticket_id=ticket_id,
                tenant_id=tenant,
                number=number,
                at=at,
            )
        except TicketError as exc:
            rejections.append(Rejection(envelope.event_id, str(exc)))
            continue
        ctx = CommandContext(tenant, envelope.correlation_id, causation_id=envelope.event_id)
        events += envelopes_for(ticket, ctx, at)
    await store.append(events)
    return rejections


async def load(store: EventStore, tenant_id: str, ticket_id: UUID) -> Ticket:
    ticket = Ticket.from_history(await store.load(tenant_id, ticket_id))
    if ticket is None:
        raise TicketNotFoundError(ticket_id)
    return ticket


async def change_ticket(
    ticket_id: UUID,
    ctx: CommandContext,
    decide: Callable[[Ticket], object],
    *,
    store: EventStore,
    now: datetime,
    expected_version: int | None = None,
) -> Ticket:
    """Load, check the version the caller saw, let the domain decide, append what it recorded."""
    ticket = await load(store, ctx.tenant_id, ticket_id)
    if expected_version is not None and expected_version != ticket.version:
        raise StaleVersionError(expected_version, ticket.version)
    decide(ticket)
    await store.append(envelopes_for(ticket, ctx, now))
    return ticket


async def change_tickets(
    ticket_ids: Sequence[UUID],
    ctx: CommandContext,
    decide: Callable[[list[Ticket]], object],
    *,
    store: EventStore,
    now: datetime,
) -> list[Ticket]:
    """The same for a decision across tickets (merge, problems): one atomic append."""
    tickets = [await load(store, ctx.tenant_id, i) for i in ticket_ids]
    decide(tickets)
    await store.append([e for t in tickets for e in envelopes_for(t, ctx, now)])
    return tickets
