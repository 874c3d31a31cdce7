"""Bad feedback that asks for its ticket back: `NegativeFeedbackFlagged` from
`feedback.events.v1`.

Ticketing reads the feedback service's topic like any other consumer (neither service
reads the other's database). When the tenant's survey settings ask for it, the feedback
service sets `reopen` on the flag, and the ticket is reopened through the ticket's own
rules, as an agent's reopen would be: a `TicketReopened` by the system actor `feedback`
with the reason `negative_feedback`, in the event log and on `ticketing.tickets.v2`. Only
a solved ticket is reopened. One that is open again (the customer or an agent got there
first), closed for good, or merged into another is left as it is, and the log says why:
the flag itself still reaches the people who follow it up (notifications).

Once, whatever is delivered again. The inbox drops a redelivered record (by event id),
but it is kept per consumer group: a group renamed or reset to the topic's start, or a
flag the feedback service publishes again under a new event id, would pass it. So the
event log has the last word: a flag reopens only a solve that came before it. Reopened,
then solved again, the ticket's `solved_at` is later than the flag, and the same flag
seen again changes nothing. That compares the feedback service's clock (the flag's
`occurred_at`) with ticketing's (the solve's); they are milliseconds apart, and a
customer's answer never comes milliseconds after the solve it is about.
"""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_contracts import (
    Actor,
    ActorKind,
    EventEnvelope,
    NegativeFeedbackFlagged,
    TicketStatus,
    topic_for,
)
from helpdesk_runtime.consumer import BatchHandler, Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.eventstore import EventStore
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.tenants import known
from ticketing.domain import Ticket
from ticketing.handlers import CommandContext, envelopes_for_changes
from ticketing.unit_of_work import unit_of_work

log = get_logger(__name__)

FEEDBACK_TOPIC = topic_for(NegativeFeedbackFlagged.event_type).name
ACCEPTS = frozenset({NegativeFeedbackFlagged.event_type})
"""`CustomerAtRisk`, on the same topic, is not ticketing's business: skipped."""
REOPENED_BY = Actor(kind=ActorKind.SYSTEM, id="feedback")
REASON = "negative_feedback"


def feedback_handler(clock: Callable[[], datetime], keys: SubjectKeys) -> BatchHandler:
    """The batch handler of the feedback consumer, inside its transaction."""

    async def handle(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> Sequence[Rejection]:
        wanted = [e for e in batch if e.payload.reopen and e.payload.ticket_id is not None]
        if not wanted:
            return []
        # As for intake: a suspended tenant's tickets do not change; the dead letter can be
        # re-driven once it is resumed.
        registered = await known(conn, (e.tenant_id for e in wanted))
        rejections = [
            Rejection(e.event_id, f"tenant {e.tenant_id!r} is not registered, or suspended")
            for e in wanted
            if e.tenant_id not in registered
        ]
        await reopen_after_bad_feedback(
            [e for e in wanted if e.tenant_id in registered],
            store=unit_of_work(conn, keys).events,
            now=clock(),
        )
        return rejections

    return handle


def why_left_alone(ticket: Ticket, flagged_at: datetime) -> str | None:
    """Why a flag asking to reopen `ticket` leaves it as it is; None: reopen it."""
    if ticket.merged_into is not None:
        return f"merged into ticket {ticket.merged_into}"
    if ticket.status is not TicketStatus.SOLVED:
        return f"the ticket is {ticket.status}, not solved"
    if ticket.solved_at is not None and ticket.solved_at > flagged_at:
        return "solved again since the flag was raised: the feedback was about an earlier solve"
    return None


async def reopen_after_bad_feedback(
    flags: Sequence[EventEnvelope[Any]], *, store: EventStore, now: datetime
) -> None:
    """Reopen each flag's ticket (tenant-scoped: another tenant's id finds nothing) if the
    rules above allow it; one append for the batch, in the consumer's transaction."""
    tickets: dict[tuple[str, UUID], Ticket | None] = {}
    events: list[EventEnvelope[Any]] = []
    for envelope in flags:
        flag: NegativeFeedbackFlagged = envelope.payload
        assert flag.ticket_id is not None  # the handler keeps only flags naming a ticket
        key = (envelope.tenant_id, flag.ticket_id)
        if key not in tickets:
            tickets[key] = Ticket.from_history(await store.load(*key))
        ticket = tickets[key]
        context = {"tenant_id": envelope.tenant_id, "ticket_id": str(flag.ticket_id),
                   "flag_id": str(flag.flag_id)}  # fmt: skip
        if ticket is None:
            log.info("bad feedback names no ticket of its tenant", **context)
            continue
        why = why_left_alone(ticket, envelope.occurred_at)
        if why is not None:
            log.info("bad feedback leaves its ticket as it is", reason=why, **context)
            continue
        before = len(ticket.changes)
        ticket.reopen(REOPENED_BY, now, reason=REASON)
        ctx = CommandContext(envelope.tenant_id, envelope.correlation_id, envelope.event_id)
        events += envelopes_for_changes(ticket, ctx, now, since=before)
        log.info("ticket reopened after bad feedback", **context)
    await store.append(events)
