"""Incoming mail: replies, new requests, autoresponders, bounces, complaints, loops, the
customer's new words without what their mail client quoted, and the files they sent."""

from email.message import EmailMessage
from uuid import uuid4

import pytest
from pydantic import ValidationError

from helpdesk_contracts import AttachmentRef
from notifications.config import Settings
from notifications.inbound import (
    MAX_NAME,
    Kind,
    MailFile,
    classify,
    customer_id_for,
    read,
    strip_quoted,
)

REPLIES = "reply.acme.example"


def _mail(body: str = "Still broken.", **headers: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = headers.pop("From", "Anna <anna@example.com>")
    message["To"] = headers.pop(
        "To", "reply+0123456789abcdef0123456789abcdef.abcdefghijklmnop@reply.acme.example"
    )
    message["Subject"] = headers.pop("Subject", "Re: [#7] We received your request")
    message["Message-ID"] = headers.pop("Message_ID", "<m-1@example.com>")
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content(body)
    return read(message.as_bytes())


def test_a_reply_to_a_reply_address_is_a_reply_with_the_thread_it_continues() -> None:
    inbound = classify(_mail(References="<ticket-1@acme.example> <d-1@acme.example>"), REPLIES)
    assert inbound.kind is Kind.REPLY
    assert inbound.thread_root == "ticket-1@acme.example"
    assert (inbound.from_address, inbound.from_name) == ("anna@example.com", "Anna")
    assert inbound.text == "Still broken."


def test_mail_to_any_other_address_is_a_new_request_threaded_by_its_own_id() -> None:
    inbound = classify(_mail(To="support@acme.example"), REPLIES)
    assert inbound.kind is Kind.NEW
    assert inbound.thread_root == inbound.message_id == "m-1@example.com"


def test_autoresponders_are_recognised_by_the_headers_mail_systems_set() -> None:
    automatic = [
        {"Auto_Submitted": "auto-replied"},
        {"X_Autoreply": "yes"},
        {"Precedence": "bulk"},
        {"X_Auto_Response_Suppress": "OOF, AutoReply"},
        {"From": "MAILER-DAEMON@mx.example.com"},
    ]
    for headers in automatic:
        inbound = classify(_mail(**headers), REPLIES)
        assert inbound.kind is Kind.AUTO_REPLY, headers
        assert inbound.why
    assert classify(_mail(Auto_Submitted="no"), REPLIES).kind is Kind.REPLY


def test_our_own_message_coming_back_is_a_loop() -> None:
    inbound = classify(_mail(X_Helpdesk_Delivery_Id=str(uuid4())), REPLIES)
    assert inbound.kind is Kind.LOOP


def _report(report_type: str, status_fields: str, original_headers: str) -> EmailMessage:
    dsn = report_type == "delivery-status"
    status_type = "message/delivery-status" if dsn else "message/feedback-report"
    original_type = "text/rfc822-headers" if dsn else "message/rfc822"
    raw = f"""From: MAILER-DAEMON@mx.example.com
To: bounces@acme.example
Subject: Undelivered Mail Returned to Sender
Message-ID: <r-1@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type={report_type}; boundary="B"

--B
Content-Type: text/plain

This is the mail system.
--B
Content-Type: {status_type}

{status_fields}
--B
Content-Type: {original_type}

{original_headers}
--B--
"""
    return read(raw.encode())


def test_a_hard_bounce_names_the_address_and_our_delivery() -> None:
    delivery = uuid4()
    bounce = _report(
        "delivery-status",
        "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; Anna@Example.com\n"
        "Action: failed\nStatus: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 User unknown\n",
        f"From: support@acme.example\nTo: anna@example.com\nX-Helpdesk-Delivery-Id: {delivery}\n",
    )
    inbound = classify(bounce, REPLIES)
    assert inbound.kind is Kind.BOUNCE
    assert inbound.report is not None
    assert inbound.report.hard
    assert inbound.report.recipients == ("anna@example.com",)
    assert inbound.report.delivery_id == delivery
    delayed = _report(
        "delivery-status",
        "Reporting-MTA: dns; mx.example.com\n\nFinal-Recipient: rfc822; anna@example.com\n"
        "Action: delayed\nStatus: 4.4.1\n",
        f"X-Helpdesk-Delivery-Id: {delivery}\n",
    )
    soft = classify(delayed, REPLIES)
    assert soft.kind is Kind.BOUNCE
    assert soft.report is not None
    assert not soft.report.hard


def test_a_complaint_suppresses_like_a_hard_bounce() -> None:
    delivery = uuid4()
    complaint = _report(
        "feedback-report",
        "Feedback-Type: abuse\nUser-Agent: SomeISP\nVersion: 1\n",
        f"From: support@acme.example\nTo: anna@example.com\nX-Helpdesk-Delivery-Id: {delivery}\n"
        "Subject: hi\n\nbody\n",
    )
    inbound = classify(complaint, REPLIES)
    assert inbound.kind is Kind.COMPLAINT
    assert inbound.report is not None
    assert inbound.report.hard
    assert inbound.report.delivery_id == delivery
    assert inbound.report.recipients == ("anna@example.com",)


def test_quoted_text_is_cut_in_any_language() -> None:
    russian_gmail = (
        "Спасибо, но счёт всё ещё неверный.\n\n"
        "чт, 26 нояб. 2026 г. в 17:06, Support <support@acme.example>:\n"
        "> ##- Пишите ответ выше этой строки -##\n> Здравствуйте!\n"
    )
    assert strip_quoted(russian_gmail) == "Спасибо, но счёт всё ещё неверный."
    english = "Thanks!\n\nOn Thu, 26 Nov 2026 at 17:06, Support <s@acme.example> wrote:\n> Hello\n"
    assert strip_quoted(english) == "Thanks!"
    unquoted_marker = "Here it is.\n\n##- Please type your reply above this line -##\nHello Anna"
    assert strip_quoted(unquoted_marker) == "Here it is."


def test_a_new_senders_id_is_a_hash_not_their_address() -> None:
    assert customer_id_for("Anna@Example.com") == customer_id_for("anna@example.com")
    assert "anna" not in customer_id_for("anna@example.com")


PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)


def test_a_reply_brings_its_attachments_inline_images_and_forwarded_mail_as_files() -> None:
    message = _mail()
    message.add_alternative("<p>Still broken <img src='cid:shot'></p>", subtype="html")
    [_, html] = message.iter_parts()
    assert isinstance(html, EmailMessage)
    html.add_related(PNG, maintype="image", subtype="png", cid="<shot>")  # shown, no name
    message.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf",
                           filename="Счёт №4417.pdf")  # fmt: skip
    forwarded = EmailMessage()
    forwarded["Subject"] = "the original invoice"
    forwarded.set_content("Invoice 4417")
    message.add_attachment(forwarded)
    message.add_attachment(b"", maintype="application", subtype="pdf", filename="empty.pdf")
    inbound = classify(read(message.as_bytes()), REPLIES)
    assert inbound.text == "Still broken."
    assert [f.name for f in inbound.files] == [
        "attachment-1.png", "Счёт №4417.pdf", "attachment-3.eml"
    ]  # fmt: skip
    assert inbound.files[0].data == PNG
    assert b"Invoice 4417" in inbound.files[2].data


def test_file_names_are_made_fit_for_a_reference_without_losing_their_extension() -> None:
    raw = (
        "From: anna@example.com\r\nTo: support@acme.example\r\nMessage-ID: <f@example.com>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nSee the files.\r\n"
        # Outlook's way: an encoded word in the quoted name.
        "--B\r\nContent-Type: application/pdf\r\n"
        'Content-Disposition: attachment; filename="=?UTF-8?B?0KHRh9GR0YIucGRm?="\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n"
        "--B\r\nContent-Type: text/plain\r\n"
        'Content-Disposition: attachment; filename="../logs/app\tlog.txt"\r\n\r\nlog\r\n'
        "--B\r\nContent-Type: image/png\r\n"
        f'Content-Disposition: attachment; filename="{"я" * 300}.png"\r\n\r\npng\r\n'
        "--B--\r\n"
    )
    files = classify(read(raw.encode()), REPLIES).files
    assert [f.name for f in files[:2]] == ["Счёт.pdf", "applog.txt"]
    assert files[0].data == b"%PDF-1.4\n"
    assert len(files[2].name) == MAX_NAME
    assert files[2].name.endswith("я.png")
    for file in files:  # each a name the contracts take
        AttachmentRef(attachment_id=uuid4(), filename=file.name, content_type="text/plain",
                      size=1, sha256=file.sha256)  # fmt: skip


def test_automatic_mail_brings_no_files() -> None:
    message = _mail(Auto_Submitted="auto-replied")
    message.add_attachment(PNG, maintype="image", subtype="png", filename="logo.png")
    assert classify(read(message.as_bytes()), REPLIES).files == ()
    assert MailFile("a.png", PNG).sha256 == MailFile("b.png", PNG).sha256


def test_outside_local_the_listener_needs_the_service_token_secret() -> None:
    production = {"environment": "production", "jwt_secret": "j" * 40,
                  "stream_token_secret": "s" * 40, "reply_address_secret": "r" * 40,
                  "webhook_signing_secret": "whsec_" + "w" * 40}  # fmt: skip
    with pytest.raises(ValidationError, match="SERVICE_TOKEN_SECRET"):
        Settings.model_validate(production)
    assert Settings.model_validate({**production, "inbound_smtp_port": 0})
    assert Settings.model_validate({**production, "service_token_secret": "t" * 40})
