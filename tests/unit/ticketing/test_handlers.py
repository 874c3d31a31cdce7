from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from helpdesk_contracts import Actor, ActorKind, Requester, TicketOpened
from helpdesk_runtime.eventstore import ConcurrencyError, InMemoryEventStore
from ticketing.domain import FieldDefinition, FieldType, OpenTicket
from ticketing.handlers import (
    CommandContext,
    open_submitted_tickets,
    open_ticket,
    ticket_id_for_submission,
)
from ticketing.numbers import InMemoryTicketNumbers

from support.events import submitted

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def test_open_ticket_appends_ticket_opened_once_per_id() -> None:
    store, numbers = InMemoryEventStore(), InMemoryTicketNumbers()
    cmd = OpenTicket(
        subject="Hello",
        description="World",
        requester=Requester(customer_id="c-1"),
        opened_by=Actor(kind=ActorKind.AGENT, id="a-1"),
    )
    ctx = CommandContext("acme", uuid4())
    ticket_id = uuid4()
    first = await open_ticket(cmd, ctx, ticket_id=ticket_id, store=store, numbers=numbers, now=NOW)
    assert first.number == 1
    with pytest.raises(ConcurrencyError):  # the caller answers with the ticket it opened
        await open_ticket(cmd, ctx, ticket_id=ticket_id, store=store, numbers=numbers, now=NOW)
    [recorded] = store.recorded
    assert recorded.envelope.correlation_id == ctx.correlation_id
    assert recorded.envelope.producer == "ticketing"


async def test_submissions_open_one_ticket_per_external_id_numbered_per_tenant() -> None:
    store, numbers = InMemoryEventStore(), InMemoryTicketNumbers()
    batch = [
        submitted("m-1", tenant="acme"),
        submitted("m-1", tenant="acme"),  # re-sent in the same batch
        submitted("m-2", tenant="acme"),
        submitted("m-1", tenant="globex"),  # same external id, other tenant: its own ticket
    ]
    assert await open_submitted_tickets(batch, store=store, numbers=numbers, now=NOW) == []
    assert await open_submitted_tickets(batch[:1], store=store, numbers=numbers, now=NOW) == []

    opened = [r.envelope for r in store.recorded]
    assert len(opened) == 3
    assert {(e.tenant_id, e.payload.number) for e in opened} == {
        ("acme", 1),
        ("acme", 2),
        ("globex", 1),
    }
    first = opened[0]
    assert first.aggregate_id == ticket_id_for_submission("acme", "mail-gateway", "m-1")
    assert first.causation_id == batch[0].event_id
    assert isinstance(first.payload, TicketOpened)
    assert first.payload.external_ref is not None
    assert first.payload.external_ref.external_id == "m-1"


async def test_a_submission_from_the_future_opens_the_ticket_now() -> None:
    store = InMemoryEventStore()
    ahead = submitted("m-9").model_copy(update={"occurred_at": NOW + timedelta(hours=3)})
    behind = submitted("m-10").model_copy(update={"occurred_at": NOW - timedelta(minutes=5)})
    await open_submitted_tickets(
        [ahead, behind], store=store, numbers=InMemoryTicketNumbers(), now=NOW
    )
    assert [r.envelope.occurred_at for r in store.recorded] == [NOW, NOW - timedelta(minutes=5)]


async def test_a_submission_with_an_undefined_custom_field_is_rejected_with_the_reason() -> None:
    store = InMemoryEventStore()
    plan = FieldDefinition(key="plan", title="Plan", type=FieldType.DROPDOWN, options=("pro",))
    good = submitted("m-1")
    bad = submitted("m-2").model_copy(
        update={"payload": good.payload.model_copy(update={"external_id": "m-2",
                                                           "custom_fields": {"plan": "gold"}})}
    )  # fmt: skip
    rejected = await open_submitted_tickets(
        [good, bad], store=store, numbers=InMemoryTicketNumbers(), now=NOW,
        fields={"acme": {"plan": plan}},
    )  # fmt: skip
    assert [r.event_id for r in rejected] == [bad.event_id]
    assert "'plan' must be one of ['pro']" in rejected[0].reason
    assert len(store.recorded) == 1
