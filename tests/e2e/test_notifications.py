"""The notifications service end to end: ticketing and notifications on the real Kafka and
PostgreSQL, mail to a real SMTP server. A ticket opened over the API is acknowledged once,
in the customer's language, whatever is redelivered or restarted; replies and solutions
reach the requester, and theirs by mail come back with their files; a dead letter is
re-driven over the API; the feedback service's negative feedback and customers at risk
reach the right agents once."""

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import aiosmtplib
import pytest
from aiokafka import AIOKafkaConsumer

from helpdesk_contracts import (
    CustomerAtRisk,
    Event,
    EventEnvelope,
    HealthReason,
    NegativeFeedbackFlagged,
    SurveyKind,
    SurveyRequested,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.conversations import ticket_id_for_message

from support.chaos import eventually
from support.mail import Mailbox, reply_to, smtp_server
from support.service import (
    NotificationsService,
    TicketingService,
    notifications_service,
    ticketing_service,
)

TICKETS = "ticketing.tickets.v2"
PDF = b"%PDF-1.4\n" + "Заказ 4417\n".encode() * 50 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def ticketing(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def _open(ticketing: TicketingService, email: str, **requester: Any) -> dict[str, Any]:
    body = {
        "subject": "Счёт выставлен дважды",
        "description": "Списали деньги два раза.",
        "requester": {"customer_id": f"c-{uuid4().hex[:8]}", "name": "Анна", "email": email,
                      **requester},
    }  # fmt: skip
    response = await ticketing.client.post("/v1/tickets", json=body, headers=ticketing.auth())
    assert response.status_code == 201, response.text
    return dict(response.json())


async def _non_empty(items: Awaitable[list[Any]]) -> bool:
    return bool(await items)


async def _log(service: NotificationsService, ticket_id: str) -> list[dict[str, Any]]:
    response = await service.client.get(
        f"/v1/tickets/{ticket_id}/deliveries", headers=service.auth()
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def _republish_opening(kafka_bootstrap: str, producer: Producer, ticket_id: str) -> None:
    """Publish the ticket's TicketOpened record again, as a redelivery would bring it."""
    consumer = AIOKafkaConsumer(TICKETS, bootstrap_servers=kafka_bootstrap,
                                auto_offset_reset="earliest", enable_auto_commit=False)  # fmt: skip
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            async for record in consumer:
                if record.key == ticket_id.encode() and b'"TicketOpened"' in (record.value or b""):
                    headers = list(record.headers)
                    await producer.send_many(
                        [OutgoingMessage(TICKETS, record.value, record.key, headers)]
                    )
                    return
    finally:
        await consumer.stop()


async def test_an_opened_ticket_is_acknowledged_once_in_the_customers_language(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str, producer: Producer,
) -> None:  # fmt: skip
    address = f"anna.{uuid4().hex[:6]}@example.com"
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as notifications:
        group = notifications.settings.tickets_group_id.removesuffix("-tickets")
        ticket = await _open(ticketing, address, language="ru")
        [mail] = await mailbox.wait_for(address)
        assert str(mail["Subject"]) == (
            f"[#{ticket['number']}] Мы получили ваше обращение: Счёт выставлен дважды"
        )
        body = mail.get_body(("plain",))
        assert body is not None
        assert f"#{ticket['number']}" in body.get_content()
        assert "Анна" in body.get_content()

        async def sent() -> bool:  # recorded when the send's transaction commits
            return [d["state"] for d in await _log(notifications, ticket["id"])] == ["sent"]

        await eventually(sent, timeout_s=30)
        [logged] = await _log(notifications, ticket["id"])
        assert (logged["template"], logged["recipient"]) == (
            "ticket_opened", f"customer:{ticket['requester']['customer_id']}",
        )  # fmt: skip
        assert [a["outcome"] for a in logged["history"]] == ["sent"]
        scraped = (await notifications.client.get("/metrics")).text
        assert 'helpdesk_notifications_deliveries_total{channel="email",outcome="sent"} 1.0' in (
            scraped
        )
        assert mail["X-Helpdesk-Delivery-Id"] == logged["delivery_id"]
    # Restarted on the same groups, and the opening delivered again: nothing more is sent.
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port, group_id=group
    ) as notifications:
        await _republish_opening(kafka_bootstrap, producer, ticket["id"])
        reply = await ticketing.client.post(
            f"/v1/tickets/{ticket['id']}/replies", json={"body": "Деньги вернули."},
            headers=ticketing.auth(),
        )  # fmt: skip
        assert reply.status_code == 200, reply.text
        mails = await mailbox.wait_for(address, count=2)  # the reply, after the copy
        assert "Деньги вернули." in str(mails[1].get_body(("plain",)).get_content())  # type: ignore[union-attr]
        assert [str(m["Subject"]).startswith(f"[#{ticket['number']}]") for m in mails] == [True] * 2
        log = await _log(notifications, ticket["id"])
        assert sorted(d["template"] for d in log) == ["agent_replied", "ticket_opened"]
    assert len(mailbox.to(address)) == 2
    assert mails[1]["In-Reply-To"] == mails[0]["In-Reply-To"]  # one thread in the mail client


async def test_a_refused_acknowledgement_is_a_dead_letter_re_driven_over_the_api(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    address = f"bob.{uuid4().hex[:6]}@example.com"
    mailbox.refusing = "550 5.1.1 Mailbox unavailable"
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as notifications:
        ticket = await _open(ticketing, address)
        supervisor = notifications.auth(role="supervisor")

        async def dead() -> list[dict[str, Any]]:
            r = await notifications.client.get("/v1/dead-letters", headers=supervisor)
            assert r.status_code == 200, r.text
            return [d for d in r.json() if d["ticket_id"] == ticket["id"]]

        await eventually(lambda: _non_empty(dead()), timeout_s=60)
        [letter] = await dead()
        assert "550" in letter["last_error"]
        assert [a["outcome"] for a in letter["history"]] == ["permanent"]

        url = f"/v1/deliveries/{letter['delivery_id']}/redrive"
        refused = await notifications.client.post(url, headers=supervisor)
        assert refused.status_code == 403  # admins re-drive
        mailbox.refusing = None  # the address is fixed
        redriven = await notifications.client.post(url, headers=notifications.auth(role="admin"))
        assert redriven.status_code == 200, redriven.text
        [mail] = await mailbox.wait_for(address)
        again = await notifications.client.post(url, headers=notifications.auth(role="admin"))
        assert again.status_code == 409
        assert "not dead" in again.json()["detail"]
        unknown = await notifications.client.post(
            f"/v1/deliveries/{uuid4()}/redrive", headers=notifications.auth(role="admin")
        )
        assert unknown.status_code == 404
    assert mail["X-Helpdesk-Delivery-Id"] == letter["delivery_id"]
    assert UUID(letter["delivery_id"])


async def _timeline(ticketing: TicketingService, ticket_id: str) -> list[dict[str, Any]]:
    response = await ticketing.client.get(
        f"/v1/tickets/{ticket_id}/timeline", headers=ticketing.auth()
    )
    assert response.status_code == 200, response.text
    return list(response.json())


async def _files_of(
    ticketing: TicketingService, entry: dict[str, Any]
) -> list[tuple[str, str, bytes]]:
    """The files a timeline entry lists: name, type and the bytes ticketing serves."""
    files = []
    for ref in entry["data"]["attachments"]:
        download = await ticketing.client.get(
            f"/v1/attachments/{ref['attachment_id']}", headers=ticketing.auth()
        )
        assert download.status_code == 200, download.text
        files.append((ref["filename"], ref["content_type"], download.content))
    return files


async def test_a_reply_by_mail_lands_on_its_ticket_and_new_mail_opens_one(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    address = f"vera.{uuid4().hex[:6]}@example.com"
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port,
        ticketing_url=ticketing.base_url,
    ) as notifications:  # fmt: skip
        inbound = notifications.settings.inbound_smtp_port
        admin = notifications.auth(role="admin")
        support = f"support-{uuid4().hex[:6]}@acme.example"
        added = await notifications.client.put(f"/v1/mailboxes/{support}", headers=admin)
        assert added.status_code == 200, added.text
        taken = await notifications.client.put(
            f"/v1/mailboxes/{support}", headers=notifications.auth(tenant="globex", role="admin")
        )
        assert taken.status_code == 409
        ticket = await _open(ticketing, address)
        [ack] = await mailbox.wait_for(address)

        away = reply_to(ack, "I am away until Monday.", Auto_Submitted="auto-replied")
        await aiosmtplib.send(away, hostname="127.0.0.1", port=inbound)
        reply = reply_to(ack, "Вот номер заказа: 4417.\n\n> ##- Пишите ответ выше этой строки -##")
        reply.add_attachment(PDF, maintype="application", subtype="pdf",
                             filename="Заказ №4417.pdf")  # fmt: skip
        await aiosmtplib.send(reply, hostname="127.0.0.1", port=inbound)

        async def replied() -> bool:
            kinds = [e["event_type"] for e in await _timeline(ticketing, ticket["id"])]
            return "CustomerReplied" in kinds

        await eventually(replied, timeout_s=60)
        timeline = await _timeline(ticketing, ticket["id"])
        replies = [e for e in timeline if e["event_type"] == "CustomerReplied"]
        assert [r["data"]["body"] for r in replies] == ["Вот номер заказа: 4417."]  # not away
        assert await _files_of(ticketing, replies[0]) == [
            ("Заказ №4417.pdf", "application/pdf", PDF)
        ]

        fresh = EmailMessage()
        fresh["From"] = f"Oleg <oleg.{uuid4().hex[:6]}@example.com>"
        fresh["To"] = support
        fresh["Subject"] = "Не приходит счёт"
        fresh["Message-ID"] = f"<{uuid4()}@mail.example.com>"
        fresh.set_content("Здравствуйте, не приходит счёт за ноябрь.")
        fresh.add_attachment(PNG, maintype="image", subtype="png", filename="снимок экрана.png")
        await aiosmtplib.send(fresh, hostname="127.0.0.1", port=inbound)
        sender = str(fresh["From"]).split("<")[1].rstrip(">")
        [acknowledged] = await mailbox.wait_for(sender)  # a ticket opened, and acknowledged
        assert "Не приходит счёт" in str(acknowledged["Subject"])
        opened = ticket_id_for_message("acme", "email", str(fresh["Message-ID"]).strip("<>"))
        [opening, *_] = await _timeline(ticketing, str(opened))
        assert opening["event_type"] == "TicketOpened"
        assert await _files_of(ticketing, opening) == [("снимок экрана.png", "image/png", PNG)]


async def _publish_survey(
    producer: Producer, ticket: dict[str, Any], topic: str = "feedback.surveys.v1"
) -> EventEnvelope[Any]:
    survey = EventEnvelope.new(SurveyRequested(
        survey_id=uuid4(), ticket_id=UUID(ticket["id"]), ticket_number=ticket["number"],
        customer_id=ticket["requester"]["customer_id"], survey=SurveyKind.CSAT,
        answer_url="https://support.acme.example/s/token",
        expires_at=datetime.now(UTC) + timedelta(days=7),
    ), tenant_id="acme", producer="feedback")  # fmt: skip
    await producer.send_many(
        [OutgoingMessage(topic, survey.to_json(), kafka_key(survey), kafka_headers(survey))]
    )
    return survey


async def test_one_click_unsubscribe_stops_survey_mail_but_not_the_acknowledgements(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str, producer: Producer,
) -> None:  # fmt: skip
    address = f"ivan.{uuid4().hex[:6]}@example.com"
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as notifications:
        ticket = await _open(ticketing, address)
        [ack] = await mailbox.wait_for(address)
        assert ack["List-Unsubscribe"] is None  # transactional: no way to opt out of it
        await _publish_survey(producer, ticket)
        invitation = (await mailbox.wait_for(address, count=2))[1]
        assert invitation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        url = str(invitation["List-Unsubscribe"]).strip("<>")
        path = url.removeprefix(notifications.settings.public_base_url)

        shown = await notifications.client.get(path)  # a mail scanner opening the link
        assert shown.status_code == 200
        assert "Unsubscribe from survey invitations?" in shown.text
        person = f"customer:{ticket['requester']['customer_id']}"
        admin = notifications.auth(role="admin")
        untouched = await notifications.client.get(f"/v1/contacts/{person}", headers=admin)
        assert untouched.status_code == 404  # opening it changed nothing

        done = await notifications.client.post(
            path, content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert done.status_code == 200, done.text
        assert "You are unsubscribed" in done.text
        saved = await notifications.client.get(f"/v1/contacts/{person}", headers=admin)
        assert saved.json()["opted_out"] == ["survey_invitation"]
        forged = await notifications.client.post(path[:-3] + "abc")
        assert forged.status_code == 404

        second = await _publish_survey(producer, ticket)

        async def cancelled() -> bool:
            r = await notifications.client.get(f"/v1/recipients/{person}/deliveries",
                                               headers=admin)  # fmt: skip
            return any(d["event_id"] == str(second.event_id) and d["state"] == "cancelled"
                       for d in r.json())  # fmt: skip

        await eventually(cancelled, timeout_s=60)
    assert len(mailbox.to(address)) == 2  # the acknowledgement and the first invitation


async def test_admins_edit_preview_and_reset_a_tenants_templates(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str,
) -> None:  # fmt: skip
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as notifications:
        admin, agent = notifications.auth(role="admin"), notifications.auth()
        url = "/v1/templates/ticket_opened/en"
        own = {
            "subject": "Case {{ ticket.number }}: {{ ticket.subject }}",
            "text": "We have it, {{ requester.name }}.",
            "html": "<p>{{ ticket.subject }}</p>",
        }
        assert (await notifications.client.put(url, json=own, headers=agent)).status_code == 403
        unknown = await notifications.client.put(
            url, json={**own, "text": "Hi {{ customer.first_name }}"}, headers=admin
        )
        assert unknown.status_code == 422
        assert "'customer' is undefined" in unknown.json()["detail"]
        broken = await notifications.client.put(
            url, json={**own, "html": "<p>\n{% if %}</p>"}, headers=admin
        )
        assert broken.status_code == 422
        assert "line 2" in broken.json()["detail"]
        preview = await notifications.client.post(
            f"{url}/preview", json={"draft": own, "context": {"ticket": {
                "number": 7, "subject": "<b>Broken</b> printer"}}}, headers=admin,
        )  # fmt: skip
        assert preview.status_code == 200, preview.text
        assert preview.json()["subject"] == "Case 7: <b>Broken</b> printer"
        assert preview.json()["html"] == "<p>&lt;b&gt;Broken&lt;/b&gt; printer</p>"
        saved = await notifications.client.put(url, json=own, headers=admin)
        assert saved.status_code == 200, saved.text
        listed = (await notifications.client.get("/v1/templates", headers=agent)).json()
        assert {"name": "ticket_opened", "language": "en", "source": "tenant"} in listed
        assert {"name": "ticket_opened", "language": "ru", "source": "built-in"} in listed

        address = f"olga.{uuid4().hex[:6]}@example.com"
        ticket = await _open(ticketing, address, language="en")
        [mail] = await mailbox.wait_for(address)
        assert str(mail["Subject"]) == f"Case {ticket['number']}: Счёт выставлен дважды"
        other = await ticketing.client.post("/v1/tickets", headers=ticketing.auth("globex"), json={
            "subject": "Printer", "description": "Broken",
            "requester": {"customer_id": "g-1", "email": f"g.{address}"}})  # fmt: skip
        assert other.status_code == 201
        [theirs] = await mailbox.wait_for(f"g.{address}")
        assert str(theirs["Subject"]).startswith("[#")  # another tenant keeps the built-in

        reset = await notifications.client.delete(url, headers=admin)
        assert reset.status_code == 204
        back = (await notifications.client.get(url, headers=agent)).json()
        assert back["source"] == "built-in"
        assert back["subject"].startswith("[#{{ ticket.number }}]")


async def _publish(producer: Producer, *events: EventEnvelope[Any]) -> None:
    await producer.send_many([
        OutgoingMessage("feedback.events.v1", e.to_json(), kafka_key(e), kafka_headers(e))
        for e in events
    ])  # fmt: skip


def _from_feedback(payload: Event) -> EventEnvelope[Any]:
    return EventEnvelope.new(payload, tenant_id="acme", producer="feedback")


async def test_negative_feedback_and_a_customer_at_risk_alert_the_right_agents_once(
    ticketing: TicketingService, mailbox: Mailbox, notifications_database_url: str,
    kafka_bootstrap: str, producer: Producer,
) -> None:  # fmt: skip
    run = uuid4().hex[:6]
    lead, manager, credited, group = f"lead-{run}", f"am-{run}", f"agent-{run}", f"billing-{run}"
    mail = {who: f"{who}@acme.example" for who in (lead, manager, credited)}
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as notifications:
        admin = notifications.auth(role="admin")
        for who, address in mail.items():
            saved = await notifications.client.put(
                f"/v1/contacts/agent:{who}", json={"email": address}, headers=admin
            )
            assert saved.status_code == 200, saved.text
        leads = await notifications.client.put(f"/v1/groups/{group}/leads",
                                               json={"leads": [lead]}, headers=admin)  # fmt: skip
        assert leads.status_code == 200, leads.text
        ticket = await _open(ticketing, f"nina.{run}@example.com")
        customer = ticket["requester"]["customer_id"]
        assigned = await ticketing.client.patch(
            f"/v1/tickets/{ticket['id']}", json={"assignee_id": credited, "group_id": group},
            headers=ticketing.auth(),
        )  # fmt: skip
        assert assigned.status_code == 200, assigned.text
        await mailbox.wait_for(mail[credited])  # its assignment: the group is known here now

        def flag(**people: str) -> EventEnvelope[Any]:
            return _from_feedback(NegativeFeedbackFlagged(
                flag_id=uuid4(), feedback_id=uuid4(), ticket_id=UUID(ticket["id"]),
                ticket_number=ticket["number"], customer_id=customer, survey=SurveyKind.NPS,
                score=3, threshold=6, reason="slow_response", **people,
            ))  # fmt: skip

        def risk(**people: str) -> EventEnvelope[Any]:
            return _from_feedback(CustomerAtRisk(
                customer_id=customer, health=38.5, threshold=50, reasons=(HealthReason(
                    code="sla_breaches", impact=-24, detail="3 SLA breaches in the last 30 days"
                ),), **people,
            ))  # fmt: skip

        # Bad feedback: the ticket's group's lead, the account manager, the credited agent.
        # At risk without an account manager: the leads of their latest ticket's group.
        flagged, at_risk = flag(account_manager_id=manager, agent_id=credited), risk()
        await _publish(producer, flagged, at_risk)
        lead_mails = await mailbox.wait_for(mail[lead], count=2)
        assert sorted(str(m["Subject"]) for m in lead_mails) == [
            f"Customer {customer} at risk: health 38.5 (below 50)",
            f"[#{ticket['number']}] Negative NPS feedback: 3 of 10",
        ]
        await mailbox.wait_for(mail[manager])
        await mailbox.wait_for(mail[credited], count=2)
        # Both delivered again, then one more of each on the same keys (so read after the
        # copies): the copies add nothing.
        await _publish(producer, flagged, at_risk, flag(), risk(account_manager_id=manager))
        await mailbox.wait_for(mail[lead], count=3)
        await mailbox.wait_for(mail[manager], count=2)

        async def sent(who: str) -> list[str]:
            r = await notifications.client.get(
                f"/v1/recipients/agent:{who}/deliveries", headers=admin
            )
            assert r.status_code == 200, r.text
            return sorted(d["template"] for d in r.json() if d["state"] == "sent")

        async def recorded() -> bool:  # recorded when the send's transaction commits
            return len(await sent(lead)) == 3 and len(await sent(manager)) == 2

        await eventually(recorded, timeout_s=30)
        assert await sent(lead) == ["customer_at_risk", "negative_feedback", "negative_feedback"]
        assert await sent(manager) == ["customer_at_risk", "negative_feedback"]
        assert await sent(credited) == ["negative_feedback", "ticket_assigned"]
    assert [len(mailbox.to(mail[who])) for who in (lead, manager, credited)] == [3, 2, 2]
    body = mailbox.to(mail[credited])[1].get_body(("plain",))
    assert body is not None
    assert "Score: 3 of 10 (NPS; 6 or below is flagged)" in body.get_content()
    assert "Счёт выставлен дважды" in body.get_content()  # the ticket's subject, opened
