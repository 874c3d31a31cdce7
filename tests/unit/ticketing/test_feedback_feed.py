"""Bad feedback reopening its ticket, with the in-memory store: only a solved ticket, once,
and never a solve that came after the flag."""

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    EventEnvelope,
    NegativeFeedbackFlagged,
    Requester,
    SurveyKind,
    TicketReopened,
    TicketStatus,
)
from helpdesk_runtime.eventstore import InMemoryEventStore
from ticketing.domain import OpenTicket, Ticket, merge
from ticketing.feedback_feed import reopen_after_bad_feedback

from support.events import envelopes_of

SOLVED_AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FLAGGED_AT = SOLVED_AT + timedelta(hours=2)
NOW = FLAGGED_AT + timedelta(seconds=1)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def flag(ticket_id: UUID, *, tenant: str = "acme", at: datetime = FLAGGED_AT,
         flag_id: UUID | None = None) -> EventEnvelope[Any]:  # fmt: skip
    return EventEnvelope.new(
        NegativeFeedbackFlagged(
            flag_id=flag_id or uuid4(), feedback_id=uuid4(), ticket_id=ticket_id,
            customer_id="c-1", survey=SurveyKind.CSAT, score=1, threshold=2, reopen=True,
        ),
        tenant_id=tenant, producer="feedback", occurred_at=at,
    )  # fmt: skip


class Desk:
    def __init__(self) -> None:
        self.store = InMemoryEventStore()

    async def ticket(self, *, number: int = 1, tenant: str = "acme") -> Ticket:
        cmd = OpenTicket(subject="Refund", description="Charged twice",
                         requester=Requester(customer_id="c-1"), opened_by=AGENT)  # fmt: skip
        ticket = Ticket.open(cmd, ticket_id=uuid4(), tenant_id=tenant, number=number,
                             at=SOLVED_AT - timedelta(days=1))  # fmt: skip
        await self.save(ticket, SOLVED_AT - timedelta(days=1))
        return ticket

    async def save(self, ticket: Ticket, at: datetime) -> None:
        await self.store.append(envelopes_of(ticket, at))
        ticket.changes.clear()

    async def solved(self, **kwargs: Any) -> Ticket:
        ticket = await self.ticket(**kwargs)
        ticket.solve(AGENT, SOLVED_AT)
        await self.save(ticket, SOLVED_AT)
        return ticket

    async def load(self, ticket: Ticket) -> Ticket:
        found = Ticket.from_history(await self.store.load(ticket.tenant_id, ticket.id))
        assert found is not None
        return found

    async def receive(self, *flags: EventEnvelope[Any], now: datetime = NOW) -> None:
        await reopen_after_bad_feedback(flags, store=self.store, now=now)

    def reopens(self) -> list[EventEnvelope[Any]]:
        return [r.envelope for r in self.store.recorded
                if isinstance(r.envelope.payload, TicketReopened)]  # fmt: skip


async def test_a_solved_ticket_is_reopened_once_by_the_feedback_system() -> None:
    desk = Desk()
    ticket = await desk.solved()
    first = flag(ticket.id)
    await desk.receive(first, flag(ticket.id))  # a second flag in the same batch: open by then
    await desk.receive(first)  # and the same one later: open still

    [reopened] = desk.reopens()
    feedback = Actor(kind=ActorKind.SYSTEM, id="feedback")
    assert reopened.payload == TicketReopened(reopened_by=feedback, reason="negative_feedback")
    assert reopened.causation_id == first.event_id
    assert reopened.correlation_id == first.correlation_id
    assert (reopened.occurred_at, reopened.aggregate_version) == (NOW, 3)
    assert (await desk.load(ticket)).status is TicketStatus.OPEN


async def test_open_closed_merged_and_other_tenants_tickets_are_left_alone() -> None:
    desk = Desk()
    open_ticket = await desk.ticket(number=1)
    closed = await desk.solved(number=2)
    closed.close(AGENT, SOLVED_AT)
    await desk.save(closed, SOLVED_AT)
    duplicate, target = await desk.solved(number=3), await desk.ticket(number=4)
    merge(duplicate, target, AGENT, SOLVED_AT)
    await desk.save(duplicate, SOLVED_AT)
    await desk.save(target, SOLVED_AT)
    globex = await desk.solved(number=1, tenant="globex")
    before = len(desk.store.recorded)

    await desk.receive(flag(open_ticket.id), flag(closed.id), flag(duplicate.id),
                       flag(globex.id, tenant="acme"), flag(uuid4()))  # fmt: skip

    assert len(desk.store.recorded) == before
    assert (await desk.load(globex)).status is TicketStatus.SOLVED


async def test_a_flag_seen_again_after_the_ticket_was_solved_again_changes_nothing() -> None:
    desk = Desk()
    ticket = await desk.solved()
    first = flag(ticket.id)
    await desk.receive(first)
    again = await desk.load(ticket)
    again.solve(AGENT, NOW + timedelta(hours=1))
    await desk.save(again, NOW + timedelta(hours=1))

    # The same flag under a new event id (a reset group, a re-publication): the inbox
    # cannot tell, the solve that came after it does.
    replayed = flag(ticket.id, flag_id=first.payload.flag_id)
    await desk.receive(replayed, now=NOW + timedelta(hours=2))
    assert len(desk.reopens()) == 1
    assert (await desk.load(ticket)).status is TicketStatus.SOLVED

    # Bad feedback about the new solve reopens it again.
    await desk.receive(flag(ticket.id, at=NOW + timedelta(hours=3)), now=NOW + timedelta(hours=3))
    assert len(desk.reopens()) == 2
