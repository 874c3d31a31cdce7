"""Command handlers: load, decide (domain), append. Dependencies come in as arguments."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid5

from helpdesk_contracts import Actor, ActorKind, EventEnvelope, ExternalRef, TicketSubmitted
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.eventstore import EventStore
from ticketing.domain import OpenTicket, Ticket, TicketError
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


def envelopes_for(ticket: Ticket, ctx: CommandContext, at: datetime) -> list[EventEnvelope[Any]]:
    """Wrap the ticket's new events, numbered after its stored version."""
    return [
        EventEnvelope.new(
            event,
            tenant_id=ctx.tenant_id,
            producer=PRODUCER,
            correlation_id=ctx.correlation_id,
            causation_id=ctx.causation_id,
            aggregate_id=ticket.id,
            aggregate_version=version,
            occurred_at=at,
        )
        for version, event in ticket.pending_versions()
    ]


async def open_ticket(
    cmd: OpenTicket,
    ctx: CommandContext,
    *,
    ticket_id: UUID,
    store: EventStore,
    numbers: TicketNumbers,
    now: datetime,
) -> tuple[Ticket, bool]:
    """Open the ticket, or return the one this id already opened (created=False)."""
    existing = Ticket.from_history(await store.load(ctx.tenant_id, ticket_id))
    if existing is not None:
        return existing, False
    number = await numbers.reserve(ctx.tenant_id)
    ticket = Ticket.open(cmd, ticket_id=ticket_id, tenant_id=ctx.tenant_id, number=number, at=now)
    await store.append(envelopes_for(ticket, ctx, now))
    return ticket, True


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
) -> list[Rejection]:
    """Open one ticket per new (tenant, source, external id) in the batch; repeats are no-ops."""
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

    # Reserved in tenant order so that concurrent batches lock counter rows in one order.
    per_tenant = Counter(tenant for (tenant, _), _ in new)
    next_number = {t: await numbers.reserve(t, n) for t, n in sorted(per_tenant.items())}

    rejections: list[Rejection] = []
    events: list[EventEnvelope[Any]] = []
    for (tenant, ticket_id), envelope in new:
        # The ticket opened when the customer wrote, not when we caught up; a publisher's
        # clock running ahead does not move it into the future.
        at = min(envelope.occurred_at, now)
        number = next_number[tenant]
        next_number[tenant] += 1
        try:
            ticket = Ticket.open(
                _command_from(envelope.payload),
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
