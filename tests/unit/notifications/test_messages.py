"""Templates and email messages: languages, fallback, escaping, headers, reply tokens."""

import email
import email.policy
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from notifications.channels import Outgoing
from notifications.email import (
    MailIdentity,
    build_message,
    reply_address,
    signature_matches,
    ticket_of_reply,
)
from notifications.rendering import Rendered, TemplateBrokenError, Templates

IDENTITY = MailIdentity("support@acme.example", "ACME Support", "acme.example",
                        "reply.acme.example", b"secret")  # fmt: skip


def _context(**ticket: object) -> dict[str, object]:
    return {
        "sender": "ACME Support",
        "ticket": {"number": 4213, "subject": "Счёт <неверный>", **ticket},
        "requester": {"name": "Анна"},
    }


def test_a_russian_acknowledgement_names_the_ticket_and_escapes_html() -> None:
    rendered = Templates().render("ticket_opened", "ru-RU", _context())
    assert rendered.language == "ru"
    assert rendered.subject == "[#4213] Мы получили ваше обращение: Счёт <неверный>"
    assert "#4213" in rendered.text
    assert "Анна" in rendered.text
    assert "Счёт &lt;неверный&gt;" in rendered.html  # HTML is autoescaped, text is not
    assert "<неверный>" in rendered.text


def test_a_missing_variable_falls_back_to_the_default_language(
    caplog: pytest.LogCaptureFixture,
) -> None:
    templates = Templates("en")
    broken = {"sender": "S", "ticket": {"number": 1}, "requester": {"name": None}}
    with pytest.raises(TemplateBrokenError, match=r"ru: UndefinedError.*en: UndefinedError"):
        templates.render("ticket_opened", "ru", broken)  # no subject in any language
    # A language without the template falls back to English, which renders.
    rendered = templates.render("ticket_opened", "de", _context())
    assert rendered.language == "en"
    assert "We received your request" in rendered.subject


def test_an_unknown_template_is_broken_not_empty() -> None:
    with pytest.raises(TemplateBrokenError, match="no_such"):
        Templates().render("no_such", "en", _context())


def test_a_message_has_both_parts_threading_and_a_signed_reply_address() -> None:
    ticket, delivery, tenant = uuid4(), uuid4(), "acme"
    rendered = Rendered("[#7] Тема", "Текст письма", "<p>Текст</p>", "ru")
    message = build_message(IDENTITY, Outgoing(
        delivery, tenant, "customer:c-1", "anna@example.com", rendered, "TicketOpened",
        "ticket_opened", ticket, 7, "auto-replied", datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    ))  # fmt: skip
    wire = message.as_bytes()
    assert b"=?utf-8?" in wire  # the Cyrillic subject is RFC 2047-encoded
    parsed = email.message_from_bytes(wire, policy=email.policy.default)
    assert parsed["Subject"] == "[#7] Тема"
    assert parsed["Message-ID"] == f"<{delivery}@acme.example>"
    assert parsed["X-Helpdesk-Delivery-Id"] == str(delivery)
    assert parsed["References"] == parsed["In-Reply-To"] == f"<ticket-{ticket}@acme.example>"
    assert parsed["Auto-Submitted"] == "auto-replied"
    plain = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert plain is not None
    assert plain.get_content().strip() == "Текст письма"
    assert html is not None
    assert "<p>Текст</p>" in html.get_content()

    local, _, domain = str(parsed["Reply-To"]).partition("@")
    assert domain == "reply.acme.example"
    assert len(local) <= 64
    named = ticket_of_reply(IDENTITY, local)
    assert named is not None
    assert named[0] == ticket
    assert signature_matches(IDENTITY, tenant, ticket, named[1])
    assert not signature_matches(IDENTITY, "globex", ticket, named[1])  # bound to the tenant
    assert reply_address(IDENTITY, tenant, ticket) == str(parsed["Reply-To"])
    assert ticket_of_reply(IDENTITY, "someone.else") is None
