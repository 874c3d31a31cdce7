"""Incoming mail: replies, new requests, autoresponders, bounces, complaints, loops, and the
customer's new words without what their mail client quoted."""

from email.message import EmailMessage
from uuid import uuid4

from notifications.inbound import Kind, classify, customer_id_for, read, strip_quoted

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
