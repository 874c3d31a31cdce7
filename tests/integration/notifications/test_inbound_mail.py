"""Our SMTP listener against the real Kafka and PostgreSQL: a reply to one of our emails
becomes a message on that ticket's intake, with its files stored by the real ticketing API
first; an autoresponder's answer nothing, a bounce a suppression that stops the next
message."""

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from email.message import EmailMessage
from typing import Any
from uuid import UUID, uuid4

import aiosmtplib
import pytest

from helpdesk_contracts import CustomerMessageReceived, parse_envelope
from helpdesk_runtime.kafka import Producer
from helpdesk_runtime.tokens import ServiceTokens
from notifications.attachments import TicketingFiles
from notifications.bootstrap import identity_of
from notifications.email import bounce_address
from notifications.inbound_mail import InboundMail, listen

from support.events import opened
from support.fixtures import consume, topic_size
from support.mail import reply_to
from support.notifying import Rig, rig_for
from support.service import free_port, ticketing_service

PDF = b"%PDF-1.4\n" + "Счёт 4417: 1 200,00 ₽\n".encode() * 40 + b"%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
EXE = b"MZ\x90\x00" + bytes(200)


@asynccontextmanager
async def listening(
    rig: Rig, producer: Producer, topic: str, ticketing_url: str = "http://127.0.0.1:9"
) -> AsyncIterator[int]:
    """The service's inbound listener on a free port, publishing to `topic` and uploading
    files to the ticketing API at `ticketing_url`."""
    port = free_port()
    files = TicketingFiles(ticketing_url, ServiceTokens(rig.settings), timeout_s=10)
    inbound = InboundMail(rig.pool, producer, identity_of(rig.settings), topic, rig.clock,
                          rig.notifier.keys, files)  # fmt: skip
    task = asyncio.create_task(listen(inbound, "127.0.0.1", port, 1_000_000))
    try:
        async with asyncio.timeout(10):
            while True:  # until it accepts connections
                try:
                    await asyncio.open_connection("127.0.0.1", port)
                    break
                except OSError:
                    await asyncio.sleep(0.05)
        yield port
    finally:
        task.cancel()
        await files.aclose()


async def test_a_reply_names_its_ticket_and_an_autoresponder_is_ignored(
    notifications_database_url: str, kafka_bootstrap: str, producer: Producer,
    new_topic: Callable[..., Awaitable[str]],
) -> None:  # fmt: skip
    topic = await new_topic(3)
    ticket = uuid4()
    async with rig_for(notifications_database_url) as rig, listening(rig, producer, topic) as port:
        await rig.publish(opened(ticket, number=12))
        await rig.fire()
        [ack] = await rig.mailbox.wait_for("anna@example.com")
        text = "Спасибо, но счёт всё ещё неверный.\n\n> ##- Пишите ответ выше этой строки -##\n"
        reply = reply_to(ack, text)
        answer = await aiosmtplib.send(reply, hostname="127.0.0.1", port=port)
        assert answer[1] == "2.0.0 OK: received"
        again = await aiosmtplib.send(reply, hostname="127.0.0.1", port=port)  # a re-send
        assert again[1] == "2.0.0 OK: already received"
        away = reply_to(ack, "I am out of office until Monday.", Auto_Submitted="auto-replied")
        ignored = await aiosmtplib.send(away, hostname="127.0.0.1", port=port)
        assert "automatic message" in ignored[1]
        forged = reply_to(ack, "let me in")
        forged.replace_header("To", str(ack["Reply-To"]).replace("reply+", "reply+0"))
        try:
            await aiosmtplib.send(forged, hostname="127.0.0.1", port=port)
            refused = ""
        except aiosmtplib.SMTPDataError as exc:
            refused = f"{exc.code} {exc.message}"
        assert refused.startswith("550")
    # Published before the listener answered 250: the topic holds it already, once.
    assert await topic_size(kafka_bootstrap, topic) == 1
    [record] = await consume(kafka_bootstrap, topic, until=1)
    envelope = parse_envelope(record.value)
    message = envelope.payload
    assert isinstance(message, CustomerMessageReceived)
    assert (envelope.tenant_id, message.ticket_id, message.source) == ("acme", ticket, "email")
    assert message.requester.customer_id == "c-1"  # from the requester's own address
    assert message.body == "Спасибо, но счёт всё ещё неверный."
    assert message.external_message_id == str(reply["Message-ID"]).strip("<>")


def _with_files(reply: EmailMessage) -> EmailMessage:
    """The reply with what a customer attaches: a PDF and a screenshot named in Cyrillic,
    and a program the tickets do not take."""
    reply.add_attachment(PDF, maintype="application", subtype="pdf", filename="Счёт №4417.pdf")
    reply.add_attachment(PNG, maintype="image", subtype="png", filename="снимок экрана.png")
    reply.add_attachment(EXE, maintype="application", subtype="octet-stream",
                         filename="счёт.exe")  # fmt: skip
    return reply


async def _send(reply: EmailMessage, port: int) -> str:
    """The listener's answer to the message: "<code> <text>"."""
    try:
        _, text = await aiosmtplib.send(reply, hostname="127.0.0.1", port=port)
    except aiosmtplib.SMTPDataError as exc:
        return f"{exc.code} {exc.message}"
    return f"250 {text}"


async def test_a_replys_files_are_stored_by_ticketing_before_250_and_once_when_resent(
    notifications_database_url: str, database_url: str, kafka_bootstrap: str,
    producer: Producer, new_topic: Callable[..., Awaitable[str]],
    capfd: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    topic = await new_topic(1)
    ticket = uuid4()
    async with (
        rig_for(notifications_database_url) as rig,
        ticketing_service(database_url, kafka_bootstrap, parts="api") as ticketing,
    ):
        await rig.publish(opened(ticket, number=12))
        await rig.fire()
        [ack] = await rig.mailbox.wait_for("anna@example.com")
        reply = _with_files(reply_to(ack, "Счёт во вложении."))
        # Ticketing away: a temporary failure, nothing published; the sender retries later.
        async with listening(rig, producer, topic) as port:
            assert (await _send(reply, port)).startswith("451 4.3.0")
        assert await topic_size(kafka_bootstrap, topic) == 0
        async with listening(rig, producer, topic, ticketing.base_url) as port:
            assert await _send(reply, port) == "250 2.0.0 OK: received"
            # As if the listener had died after publishing, before it recorded the message:
            # the sender delivers it again, and it names the files stored the first time.
            async with rig.pool.acquire() as conn:
                await conn.execute("DELETE FROM inbound_messages")
            assert await _send(reply, port) == "250 2.0.0 OK: received"
        records = await consume(kafka_bootstrap, topic, until=2)
        first, again = [parse_envelope(r.value).payload for r in records]
        assert isinstance(first, CustomerMessageReceived)
        assert isinstance(again, CustomerMessageReceived)
        assert first.ticket_id == ticket
        assert [(a.filename, a.content_type, a.size, a.sha256) for a in first.attachments] == [
            ("Счёт №4417.pdf", "application/pdf", len(PDF), hashlib.sha256(PDF).hexdigest()),
            ("снимок экрана.png", "image/png", len(PNG), hashlib.sha256(PNG).hexdigest()),
        ]
        assert again.attachments == first.attachments  # the same uploads, not copies
        assert first.body == (
            'Счёт во вложении.\n\n[Files not added to the ticket: "счёт.exe" (a type not accepted)]'
        )
        for ref, data in zip(first.attachments, (PDF, PNG), strict=True):
            download = await ticketing.client.get(
                f"/v1/attachments/{ref.attachment_id}", headers=ticketing.auth()
            )
            assert (download.status_code, download.content) == (200, data)
    logged = "".join(capfd.readouterr())
    assert "inbound files" in logged  # counted, and never named (personal data)
    assert not any(name in logged for name in ("Счёт", "снимок", "счёт", "%D0%A1"))


async def test_a_hard_bounce_suppresses_the_address_until_lifted(
    notifications_database_url: str, producer: Producer,
    new_topic: Callable[..., Awaitable[str]],
) -> None:  # fmt: skip
    topic = await new_topic(1)
    async with rig_for(notifications_database_url) as rig, listening(rig, producer, topic) as port:
        first, second = uuid4(), uuid4()
        await rig.publish(opened(first, number=1))
        await rig.fire()
        [ack] = await rig.mailbox.wait_for("anna@example.com")
        delivery_id = str(ack["X-Helpdesk-Delivery-Id"])
        bounce = _dsn(delivery_id)
        # A report sent anywhere but the message's own (signed) bounce address: ignored.
        await aiosmtplib.send(
            bounce, sender="mailer-daemon@mx.example.com",
            recipients=["bounces@reply.helpdesk.localhost"], hostname="127.0.0.1", port=port,
        )  # fmt: skip
        assert (await rig.delivery(first))["state"] == "sent"
        verp = bounce_address(identity_of(rig.settings), UUID(delivery_id))
        await aiosmtplib.send(
            bounce, sender="mailer-daemon@mx.example.com", recipients=[verp],
            hostname="127.0.0.1", port=port,
        )  # fmt: skip
        delivery = await rig.delivery(first)
        assert (delivery["state"], delivery["last_error"]) == ("dead", "bounced: 5.1.1")
        assert await rig.outcomes(delivery["delivery_id"]) == ["sent", "bounced"]
        await rig.publish(opened(second, number=2))
        await rig.fire()
        suppressed = await rig.delivery(second)
        assert suppressed["state"] == "cancelled"
        assert "address suppressed" in suppressed["last_error"]
        assert len(rig.mailbox.to("anna@example.com")) == 1
        async with rig.pool.acquire() as conn:
            stored: Any = await conn.fetchval("SELECT address_hash FROM suppressions")
        assert "anna" not in stored  # kept hashed


def _dsn(delivery_id: str) -> bytes:
    return f"""From: MAILER-DAEMON@mx.example.com
To: bounces@helpdesk.localhost
Subject: Undelivered Mail Returned to Sender
Message-ID: <{uuid4()}@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

The mail system could not deliver your message.
--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; anna@example.com
Action: failed
Status: 5.1.1

--B
Content-Type: text/rfc822-headers

To: anna@example.com
X-Helpdesk-Delivery-Id: {delivery_id}

--B--
""".replace("\n", "\r\n").encode()
