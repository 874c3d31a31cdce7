"""Customers' messages from other systems, with fakes: reply, new ticket or follow-up."""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from helpdesk_contracts import Actor, ActorKind, TicketOpened, TicketStatus
from helpdesk_runtime.eventstore import InMemoryEventStore
from ticketing.conversations import receive_customer_messages
from ticketing.domain import Ticket, merge
from ticketing.numbers import InMemoryTicketNumbers
from ticketing.threads import InMemoryThreads

from support.events import customer_message, envelopes_of

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


class Desk:
    def __init__(self) -> None:
        self.store = InMemoryEventStore()
        self.numbers = InMemoryTicketNumbers()
        self.threads = InMemoryThreads()

    async def receive(self, *messages: Any) -> None:
        rejected = await receive_customer_messages(
            messages, store=self.store, numbers=self.numbers, threads=self.threads, now=NOW
        )
        assert rejected == []

    def kinds(self) -> list[tuple[int, str]]:
        return [
            (r.envelope.payload.number if isinstance(r.envelope.payload, TicketOpened) else 0,
             r.envelope.event_type)
            for r in self.store.recorded
        ]  # fmt: skip

    async def ticket_of(self, thread: str) -> Ticket:
        ticket_id = self.threads.tickets[("acme", "mail-gateway", thread)]
        ticket = Ticket.from_history(await self.store.load("acme", ticket_id))
        assert ticket is not None
        return ticket


async def test_the_first_message_opens_a_ticket_and_the_next_ones_reply_to_it() -> None:
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"), customer_message("t-1", "m-2"))
    await desk.receive(customer_message("t-1", "m-3"))
    assert desk.kinds() == [(1, "TicketOpened"), (0, "CustomerReplied"), (0, "CustomerReplied")]
    ticket = await desk.ticket_of("t-1")
    assert ticket.customer_replies == 2
    assert ticket.external_ref is not None
    assert ticket.external_ref.external_id == "t-1"
    opened = desk.store.recorded[0].envelope.payload
    assert isinstance(opened, TicketOpened)
    assert opened.opened_by.kind is ActorKind.CUSTOMER


async def test_a_re_sent_message_changes_nothing() -> None:
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"), customer_message("t-1", "m-2"))
    await desk.receive(customer_message("t-1", "m-1"), customer_message("t-1", "m-2"))
    assert len(desk.store.recorded) == 2


async def test_a_message_to_a_closed_tickets_thread_opens_a_linked_follow_up() -> None:
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"))
    closed = await desk.ticket_of("t-1")
    closed.solve(AGENT, NOW)
    closed.close(AGENT, NOW)
    await desk.store.append(envelopes_of(closed, NOW))

    await desk.receive(customer_message("t-1", "m-2", body="It broke again"))
    await desk.receive(customer_message("t-1", "m-3"))
    await desk.receive(customer_message("t-1", "m-2"))  # re-sent: still one follow-up
    follow_up = await desk.ticket_of("t-1")
    assert follow_up.id != closed.id
    assert follow_up.follow_up_of == closed.id
    assert (follow_up.number, follow_up.description, follow_up.customer_replies) == (
        2, "It broke again", 1,
    )  # fmt: skip
    assert [k for _, k in desk.kinds()].count("TicketOpened") == 2


async def test_a_customer_reply_moves_a_pending_ticket_back_to_open() -> None:
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"))
    ticket = await desk.ticket_of("t-1")
    ticket.move_to(TicketStatus.PENDING, AGENT, NOW)
    await desk.store.append(envelopes_of(ticket, NOW))
    await desk.receive(customer_message("t-1", "m-2"))
    assert (await desk.ticket_of("t-1")).status is TicketStatus.OPEN


async def test_a_message_to_a_merged_duplicates_thread_goes_to_the_ticket_it_was_merged_into() -> (
    None
):
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"), customer_message("t-2", "m-2"))
    duplicate, target = await desk.ticket_of("t-1"), await desk.ticket_of("t-2")
    merge(duplicate, target, AGENT, NOW)
    await desk.store.append(envelopes_of(duplicate, NOW) + envelopes_of(target, NOW))

    await desk.receive(customer_message("t-1", "m-3", body="Any update?"))
    assert (await desk.ticket_of("t-1")).id == target.id
    after = await desk.ticket_of("t-2")
    assert after.customer_replies == 1
    assert [k for _, k in desk.kinds()].count("TicketOpened") == 2  # no follow-up opened


async def test_a_reply_naming_a_ticket_continues_it_and_its_thread_follows() -> None:
    desk = Desk()
    await desk.receive(customer_message("t-1", "m-1"))  # a ticket, opened some other way
    ticket = await desk.ticket_of("t-1")
    reply = customer_message("reply-thread", "m-2")
    named = reply.model_copy(update={"payload": reply.payload.model_copy(
        update={"ticket_id": ticket.id})})  # fmt: skip
    await desk.receive(named)
    await desk.receive(customer_message("reply-thread", "m-3"))  # the thread goes on there
    assert desk.kinds() == [(1, "TicketOpened"), (0, "CustomerReplied"), (0, "CustomerReplied")]
    assert (await desk.ticket_of("reply-thread")).id == ticket.id
    unknown = customer_message("other", "m-4")
    elsewhere = unknown.model_copy(update={"payload": unknown.payload.model_copy(
        update={"ticket_id": uuid4()})})  # fmt: skip
    await desk.receive(elsewhere)  # no such ticket here: a new conversation, a new ticket
    assert desk.kinds()[-1] == (2, "TicketOpened")
