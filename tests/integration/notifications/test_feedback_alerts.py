"""The feedback service's conclusions as agents' alerts, against the real PostgreSQL and a
real SMTP server: negative feedback reaches the ticket's team leads, the account manager and
the credited agent once each; a customer at risk reaches their account manager, else the
leads of their latest ticket's group, within business hours."""

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerAtRisk,
    EventEnvelope,
    HealthReason,
    NegativeFeedbackFlagged,
    Priority,
    SurveyKind,
    TicketAssigned,
    TicketPriorityChanged,
)

from support.events import opened
from support.notifying import Rig, contact, states, ticket_event

ADMIN = Actor(kind=ActorKind.AGENT, id="a-1")


def _at(event: EventEnvelope[Any], rig: Rig) -> EventEnvelope[Any]:
    """The event as if it happened now on the rig's clock (older ones notify no one)."""
    return event.model_copy(update={"occurred_at": rig.clock.now})


async def _leads(rig: Rig, group: str, *leads: str) -> None:
    async with rig.pool.acquire() as conn:
        await conn.execute("INSERT INTO group_leads VALUES ('acme', $1, $2)", group, list(leads))


async def _ticket(rig: Rig, number: int, group: str, **changes: Any) -> UUID:
    """A ticket of customer c-1 in `group`, as ticketing's events tell this service."""
    ticket = uuid4()
    events = [
        opened(ticket, number=number),
        ticket_event(ticket, 2, TicketAssigned(group_id=group, assigned_by=ADMIN)),
    ]
    if "priority" in changes:
        events.append(ticket_event(ticket, 3, TicketPriorityChanged(
            previous=Priority.NORMAL, priority=changes["priority"], changed_by=ADMIN)))  # fmt: skip
    await rig.publish(*(_at(e, rig) for e in events))
    return ticket


async def test_negative_feedback_alerts_leads_manager_and_credited_agent_once_each(
    rig: Rig,
) -> None:
    await contact(rig, "agent:lead-1", email="lead@acme.example")
    await contact(rig, "agent:am-1", email="am@acme.example", language="ru")
    await contact(rig, "agent:a-5", email="a5@acme.example")
    await _leads(rig, "billing", "lead-1")
    ticket = await _ticket(rig, 41, "billing")
    assert await rig.fire() == 1  # the acknowledgement
    flag = _at(EventEnvelope.new(NegativeFeedbackFlagged(
        flag_id=uuid4(), feedback_id=uuid4(), ticket_id=ticket, ticket_number=41,
        customer_id="c-1", account_manager_id="am-1", agent_id="a-5", survey=SurveyKind.CSAT,
        score=1, threshold=2, reason="slow_response", reopen=True,
    ), tenant_id="acme", producer="feedback"), rig)  # fmt: skip
    await rig.publish(flag)
    await rig.publish(flag)  # redelivered: nothing more
    assert await rig.fire() == 3

    [lead] = await rig.mailbox.wait_for("lead@acme.example")
    assert str(lead["Subject"]) == "[#41] Negative CSAT feedback: 1 of 5"
    text = lead.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Invoice shows the wrong amount" in text  # the ticket's subject, opened to send
    assert "Customer: Anna (c-1)" in text
    assert "Score: 1 of 5 (CSAT; 2 or below is flagged)" in text
    assert "Reason: slow response" in text
    assert "reopened" in text
    assert lead["List-Unsubscribe"] is not None  # not transactional: one may opt out
    assert lead["In-Reply-To"] == f"<ticket-{ticket}@helpdesk.localhost>"  # the ticket's thread
    [manager] = await rig.mailbox.wait_for("am@acme.example")
    assert str(manager["Subject"]) == "[#41] Негативный отзыв (CSAT): 1 из 5"
    [agent] = await rig.mailbox.wait_for("a5@acme.example")
    assert str(agent["Subject"]) == str(lead["Subject"])
    assert await states(rig, flag.event_id) == {
        "agent:lead-1": ("sent", None), "agent:am-1": ("sent", None),
        "agent:a-5": ("sent", None),
    }  # fmt: skip
    await rig.publish(flag)  # and again after it was sent
    assert await rig.fire() == 0
    assert len(rig.mailbox.messages) == 4  # the acknowledgement and one alert each


async def test_a_customer_at_risk_alerts_the_manager_else_their_latest_tickets_leads(
    rig: Rig,
) -> None:
    await contact(rig, "agent:lead-1", email="lead1@acme.example")
    await contact(rig, "agent:lead-2", email="lead2@acme.example")
    await contact(rig, "agent:am-9", email="am9@acme.example")
    await _leads(rig, "billing", "lead-1")
    await _leads(rig, "support", "lead-2")
    async with rig.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO business_hours VALUES ('acme', 'UTC', '{0,1,2,3,4}', '09:00', '18:00')"
        )
    rig.clock.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday
    await _ticket(rig, 50, "billing")
    await _ticket(rig, 51, "support", priority=Priority.URGENT)  # the latest
    assert await rig.fire() == 2  # the acknowledgements

    def risk(manager: str | None) -> EventEnvelope[Any]:
        return _at(EventEnvelope.new(CustomerAtRisk(
            customer_id="c-1", organisation_id="org-7", account_manager_id=manager,
            health=35.0, previous_health=72.5, threshold=50.0, reasons=(
                HealthReason(code="sla_breaches", impact=-24,
                             detail="3 SLA breaches in the last 30 days"),
                HealthReason(code="many_reopens", impact=-6.7,
                             detail="1 reopens over 3 tickets in the last 90 days"),
            ),
        ), tenant_id="acme", producer="feedback"), rig)  # fmt: skip

    unmanaged, managed = risk(None), risk("am-9")
    await rig.publish(unmanaged, managed)
    assert await states(rig, unmanaged.event_id) == {"agent:lead-2": ("pending", None)}
    assert await states(rig, managed.event_id) == {"agent:am-9": ("pending", None)}
    # About no ticket: the latest ticket being urgent does not make it so; Monday 09:00.
    assert await rig.fire() == 0
    rig.clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert await rig.fire() == 2
    [lead] = await rig.mailbox.wait_for("lead2@acme.example")
    assert str(lead["Subject"]) == "Customer c-1 at risk: health 35 (below 50)"
    text = lead.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "Customer c-1 (organisation org-7) is at risk" in text
    assert "down from 72.5, below the threshold of 50" in text
    assert "  - 3 SLA breaches in the last 30 days (-24 points)\n" in text
    assert "  - 1 reopens over 3 tickets in the last 90 days (-6.7 points)\n" in text
    assert lead["In-Reply-To"] is None  # no ticket's thread
    assert len(await rig.mailbox.wait_for("am9@acme.example")) == 1
    assert rig.mailbox.to("lead1@acme.example") == []  # an older ticket's group
    async with rig.pool.acquire() as conn:
        sent = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE event_type = 'CustomerAtRisk'"
            " AND ticket_id IS NULL AND state = 'sent'"
        )
    assert sent == 2
