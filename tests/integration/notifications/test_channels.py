"""Webhooks and the messenger adapter over real HTTP, and the guard that keeps a failing
endpoint from costing every message a timeout."""

import json
from datetime import timedelta
from uuid import uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Contact,
    ContactKind,
    CustomerErased,
    CustomerProfile,
    CustomerRegistered,
    EventEnvelope,
    TicketAssigned,
)
from helpdesk_runtime.trace import TraceContext
from notifications.inbound import address_hash
from notifications.webhooks import WebhookVerificationError, verify

from support.chaos import eventually
from support.events import opened
from support.notifying import contact, rig_for, states, ticket_event
from support.receivers import http_receiver

AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


async def test_a_webhook_is_signed_retried_with_the_same_id_and_replays_are_refused(
    notifications_database_url: str,
) -> None:
    async with (
        http_receiver() as receiver,
        rig_for(notifications_database_url, webhook_private_targets=True) as rig,
    ):
        secret = rig.settings.webhook_signing_secret
        assert secret is not None
        hook = f"{receiver.base_url}/hooks/helpdesk"
        await contact(rig, "agent:a-5", channels=["webhook", "email"], webhook_url=hook)
        ticket = uuid4()
        await rig.publish(opened(ticket, number=9))
        assigned = ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=AGENT))
        receiver.status = 503  # the receiver is down at first
        await rig.publish(assigned)
        assert await rig.fire() == 2
        first = (await receiver.wait_for(1))[0]
        rig.clock.advance(10)
        receiver.status = 200
        assert await rig.fire() == 1
        second = (await receiver.wait_for(2))[1]

    assert first.headers["webhook-id"] == second.headers["webhook-id"]  # receivers deduplicate
    # The receiver can continue the trace of the assignment that caused the message.
    assert TraceContext.parse(second.headers.get("traceparent")) is not None
    body = verify(secret.get_secret_value(), second.body, second.headers)
    assert body["id"] == second.headers["webhook-id"]
    assert body["ticket"] == {"id": str(ticket), "number": 9}
    assert body["template"] == "ticket_assigned"
    assert body["subject"] == "[#9] Assigned to you: Invoice shows the wrong amount"
    tampered = second.body.replace(b"Invoice", b"Invoyce")
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(secret.get_secret_value(), tampered, second.headers)
    # The captured request, replayed ten minutes later, is refused for its timestamp.
    stale = {**second.headers,
             "webhook-timestamp": str(int(second.headers["webhook-timestamp"]) - 600)}  # fmt: skip
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(secret.get_secret_value(), second.body, stale)
    assert json.loads(first.body)["id"] == body["id"]


async def test_the_telegram_adapter_sends_to_the_chat_and_a_blocked_bot_is_a_dead_letter(
    notifications_database_url: str,
) -> None:
    async with http_receiver() as api:
        api.answer = {"ok": True, "result": {"message_id": 42}}
        async with rig_for(notifications_database_url, telegram_bot_token="123:secret",
                           telegram_api_base=api.base_url) as rig:  # fmt: skip
            await contact(rig, "agent:a-5", channels=["messenger"], messenger_id="777")
            await contact(rig, "agent:a-6", channels=["messenger"], messenger_id="888")
            first, second = uuid4(), uuid4()
            await rig.publish(opened(first, number=1), opened(second, number=2))
            await rig.fire()
            to_a5 = ticket_event(first, 2, TicketAssigned(assignee_id="a-5", assigned_by=AGENT))
            await rig.publish(to_a5)
            await rig.fire()
            [sent] = await api.wait_for(1)
            blocked = "Forbidden: bot was blocked by the user"
            api.status = 403
            api.answer = {"ok": False, "error_code": 403, "description": blocked}
            to_a6 = ticket_event(second, 2, TicketAssigned(assignee_id="a-6", assigned_by=AGENT))
            await rig.publish(to_a6)
            await rig.fire()
            dead = await states(rig, to_a6.event_id)
    assert sent.path == "bot123:secret/sendMessage"
    message = json.loads(sent.body)
    assert message["chat_id"] == "777"
    assert message["text"].startswith("[#1] Assigned to you: Invoice shows the wrong amount")
    assert dead == {"agent:a-6": ("dead", "telegram 403: Forbidden: bot was blocked by the user")}


async def test_an_endpoint_that_keeps_failing_is_not_tried_while_its_circuit_is_open(
    notifications_database_url: str,
) -> None:
    async with rig_for(notifications_database_url, breaker_threshold=2,
                       breaker_open_s=1, retry_attempts=10) as rig:  # fmt: skip
        rig.mailbox.refusing = "421 4.3.2 Service shutting down"
        tickets = [uuid4() for _ in range(3)]
        for number, ticket in enumerate(tickets, 1):
            await rig.publish(opened(ticket, number=number))
            assert await rig.fire() == 1
            rig.clock.advance(1)
        outcomes = [(await rig.delivery(t))["last_error"] for t in tickets]
        assert "421" in outcomes[0]
        assert "421" in outcomes[1]
        assert "circuit open, not tried" in outcomes[2]  # the third batch cost no timeout
        assert rig.mailbox.attempts == 2
        rig.mailbox.refusing = None

        async def all_sent() -> bool:  # once the circuit lets a try through again (1 s)
            rig.clock.advance(timedelta(hours=2).total_seconds())  # every retry is due
            await rig.fire()
            return len(rig.mailbox.to("anna@example.com")) == 3

        await eventually(all_sent, timeout_s=30)
        assert rig.mailbox.attempts == 5  # nothing was sent twice


async def test_a_channel_that_fails_for_good_falls_back_to_the_persons_next_one(
    notifications_database_url: str,
) -> None:
    async with (
        http_receiver() as receiver,
        rig_for(notifications_database_url, webhook_private_targets=True) as rig,
    ):
        receiver.status = 410  # the webhook is gone
        await contact(rig, "agent:a-5", channels=["webhook", "email"],
                      webhook_url=f"{receiver.base_url}/gone", email="a5@acme.example")  # fmt: skip
        ticket = uuid4()
        await rig.publish(opened(ticket, number=4))
        assigned = ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=AGENT))
        await rig.publish(assigned)
        assert await rig.fire() == 2  # the acknowledgement, and the webhook (refused)
        assert await rig.fire() == 1  # the same message by email, at once
        [mail] = await rig.mailbox.wait_for("a5@acme.example")
        assert str(mail["Subject"]).startswith("[#4] Assigned to you")
        async with rig.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT channel, state FROM deliveries WHERE event_id = $1 ORDER BY created_at",
                assigned.event_id,
            )
    assert [(r["channel"], r["state"]) for r in rows] == [("webhook", "dead"), ("email", "sent")]


async def test_a_webhook_to_a_private_address_is_refused(notifications_database_url: str) -> None:
    async with http_receiver() as receiver, rig_for(notifications_database_url) as rig:
        await contact(rig, "agent:a-5", channels=["webhook"],
                      webhook_url=f"{receiver.base_url}/hook")  # fmt: skip
        ticket = uuid4()
        await rig.publish(opened(ticket))
        assigned = ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=AGENT))
        await rig.publish(assigned)
        await rig.fire()
        refused = await states(rig, assigned.event_id)
    assert receiver.requests == []
    assert refused == {"agent:a-5": ("dead", "refused: 127.0.0.1 is a private address (127.0.0.1)")}


async def test_a_suppressed_address_falls_back_to_the_persons_next_channel(
    notifications_database_url: str,
) -> None:
    async with (
        http_receiver() as receiver,
        rig_for(notifications_database_url, webhook_private_targets=True) as rig,
    ):
        await contact(rig, "agent:a-5", channels=["email", "webhook"], email="a5@acme.example",
                      webhook_url=f"{receiver.base_url}/hook")  # fmt: skip
        async with rig.pool.acquire() as conn:  # a5@ bounced for good some time ago
            await conn.execute(
                "INSERT INTO suppressions (tenant_id, address_hash, reason) VALUES ($1, $2, $3)",
                "acme",
                address_hash("a5@acme.example"),
                "bounced: 5.1.1",
            )
        ticket = uuid4()
        await rig.publish(opened(ticket, number=8))
        assigned = ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=AGENT))
        await rig.publish(assigned)
        assert await rig.fire() == 2  # the acknowledgement, and the suppressed email
        assert await rig.fire() == 1  # the webhook, at once
        [hook] = await receiver.wait_for(1)
        async with rig.pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT channel, state FROM deliveries WHERE event_id = $1 ORDER BY created_at",
                assigned.event_id,
            )
    assert json.loads(hook.body)["template"] == "ticket_assigned"
    assert [(r["channel"], r["state"]) for r in rows] == [("email", "cancelled"),
                                                          ("webhook", "sent")]  # fmt: skip
    assert rig.mailbox.to("a5@acme.example") == []


async def test_a_customer_is_reached_in_the_channel_the_directory_says_they_prefer(
    notifications_database_url: str,
) -> None:
    async with http_receiver() as api:
        api.answer = {"ok": True, "result": {"message_id": 1}}
        async with rig_for(notifications_database_url, telegram_bot_token="123:secret",
                           telegram_api_base=api.base_url) as rig:  # fmt: skip
            profile = CustomerProfile(
                name="Anna", preferred_channel=ContactKind.TELEGRAM, language="ru",
                contacts=(Contact(kind=ContactKind.EMAIL, address="anna@example.com"),
                          Contact(kind=ContactKind.TELEGRAM, address="555001")),
            )  # fmt: skip
            registered = EventEnvelope.new(
                CustomerRegistered(customer_id="c-1", profile=profile, registered_by=AGENT),
                tenant_id="acme", producer="ticketing", aggregate_id=uuid4(),
                aggregate_version=1,
            )  # fmt: skip
            await rig.publish(registered)
            await rig.publish(opened(uuid4(), number=21))
            assert await rig.fire() == 1
            [sent] = await api.wait_for(1)
            assert rig.mailbox.to("anna@example.com") == []
            erased = EventEnvelope.new(
                CustomerErased(customer_id="c-1", erased_subjects=("c-1",), requested_by=AGENT),
                tenant_id="acme", producer="ticketing", aggregate_id=registered.aggregate_id,
                aggregate_version=2,
            )  # fmt: skip
            await rig.publish(erased)
            async with rig.pool.acquire() as conn:
                kept = await conn.fetchval("SELECT count(*) FROM customers")
    message = json.loads(sent.body)
    assert message["chat_id"] == "555001"
    assert message["text"].startswith("[#21] Мы получили ваше обращение")  # in their language
    assert kept == 0  # erased customers are forgotten here too
