"""Templates and email messages: languages, fallback, escaping, headers, reply tokens."""

import base64
import email
import email.policy
import re
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jinja2 import TemplateError

from helpdesk_contracts import EventEnvelope, SurveyKind, SurveyRequested
from notifications.channels import Outgoing
from notifications.email import (
    Dkim,
    MailIdentity,
    bounce_address,
    build_message,
    delivery_of_bounce,
    reply_address,
    signature_matches,
    ticket_of_reply,
)
from notifications.handlers import _context as context_of
from notifications.rendering import (
    BUILT_IN_LANGUAGES,
    Custom,
    Rendered,
    TemplateBrokenError,
    Templates,
)
from notifications.samples import SAMPLES
from notifications.unsubscribe import OptOut, read_token, token_for

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


def test_every_built_in_template_renders_its_sample_in_every_built_in_language() -> None:
    templates = Templates()
    for name, sample in SAMPLES.items():
        for language in BUILT_IN_LANGUAGES:
            rendered = templates.render(name, language, sample)
            assert (rendered.language, rendered.source) == (language, "built-in"), name


def test_feedback_alerts_show_score_and_reasons_and_escape_them_in_html() -> None:
    templates = Templates()
    flagged = templates.render("negative_feedback", "ru", SAMPLES["negative_feedback"])
    assert flagged.subject == "[#4213] Негативный отзыв (CSAT): 1 из 5"
    assert "Оценка: 1 из 5 (CSAT; отмечаются оценки 2 и ниже)" in flagged.text
    assert "Причина: slow response" in flagged.text
    risk = dict(SAMPLES["customer_at_risk"]["risk"])
    risk["reasons"] = [{"code": "ticket_surge", "impact": "-10", "detail": "<b>9</b> tickets"}]
    context = {**SAMPLES["customer_at_risk"], "risk": risk}
    at_risk = templates.render("customer_at_risk", "en", context)
    assert at_risk.subject == "Customer c-1042 at risk: health 35 (below 50)"
    assert "  - <b>9</b> tickets (-10 points)" in at_risk.text
    assert "&lt;b&gt;9&lt;/b&gt; tickets" in at_risk.html
    russian = templates.render("customer_at_risk", "ru", context)
    assert "  - всплеск обращений: <b>9</b> tickets (-10)" in russian.text


def test_an_unknown_template_is_broken_not_empty() -> None:
    with pytest.raises(TemplateBrokenError, match="no_such"):
        Templates().render("no_such", "en", _context())


def test_a_message_has_both_parts_threading_and_a_signed_reply_address() -> None:
    ticket, delivery, tenant = uuid4(), uuid4(), "acme"
    rendered = Rendered("[#7] Тема", "Текст письма", "<p>Текст</p>", "ru")
    raw = build_message(IDENTITY, Outgoing(
        delivery, tenant, "customer:c-1", "anna@example.com", rendered, "TicketOpened",
        "ticket_opened", ticket, 7, "auto-replied", datetime(2026, 11, 26, 12, 0, tzinfo=UTC),
    ))  # fmt: skip
    assert b"=?utf-8?" in raw  # the Cyrillic subject is RFC 2047-encoded
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
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


def test_unsubscribe_tokens_name_one_person_and_category_and_cannot_be_forged() -> None:
    opt_out = OptOut("acme", "customer:c-1", "survey_invitation")
    token = token_for(b"secret", opt_out)
    assert read_token(b"secret", token) == opt_out
    assert read_token(b"other secret", token) is None
    mac = token.partition(".")[2]
    forged = token_for(b"secret", OptOut("acme", "customer:c-2", "survey_invitation"))
    assert read_token(b"secret", f"{forged.partition('.')[0]}.{mac}") is None
    assert read_token(b"secret", "garbage") is None


def test_a_dkim_signed_message_verifies_against_the_published_key() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())  # fmt: skip
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )).decode()  # fmt: skip
    signing = Dkim("acme.example", "hd2026", pem)
    rendered = Rendered("Как мы справились?", "Оцените", "<p>Оцените</p>", "ru")
    raw = build_message(IDENTITY, Outgoing(
        uuid4(), "acme", "customer:c-1", "anna@example.com", rendered, "SurveyRequested",
        "survey_invitation", uuid4(), 7, "auto-generated", datetime(2026, 11, 26, tzinfo=UTC),
        unsubscribe_url="https://support.acme.example/v1/unsubscribe/t.k",
    ))  # fmt: skip
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["List-Unsubscribe"] == "<https://support.acme.example/v1/unsubscribe/t.k>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    signed = signing.sign(raw)
    assert signed.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"hd2026._domainkey.acme.example."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    assert dkim.verify(signed, dnsfunc=dns)
    assert not dkim.verify(signed.replace(b"anna@example.com", b"eve@example.com"), dnsfunc=dns)


def test_a_tenants_template_wins_and_a_broken_one_falls_back_to_the_built_in() -> None:
    templates = Templates("en")
    own = Custom(
        "Заявка {{ ticket.number }} принята",
        "Номер {{ ticket.number }}",
        "<p>{{ ticket.subject }}</p>",
    )
    rendered = templates.render("ticket_opened", "ru", _context(), {("ticket_opened", "ru"): own})
    assert (rendered.subject, rendered.source) == ("Заявка 4213 принята", "tenant")
    assert rendered.html == "<p>Счёт &lt;неверный&gt;</p>"  # the tenant's HTML is escaped too
    broken = Custom("{{ ticket.nope }}", "x", "x")
    fallen = templates.render("ticket_opened", "ru", _context(), {("ticket_opened", "ru"): broken})
    assert (fallen.source, fallen.language) == ("built-in", "ru")


def test_templates_cannot_reach_outside_the_sandbox() -> None:
    escape = Custom("{{ ticket.__class__.__mro__ }}", "x", "x")
    with pytest.raises(TemplateError):
        Templates().preview(escape, _context(), "en")


def test_a_bounce_address_names_one_delivery_and_cannot_be_forged() -> None:
    delivery = uuid4()
    address = bounce_address(IDENTITY, delivery)
    assert address.endswith("@reply.acme.example")
    assert len(address.split("@")[0]) <= 64
    assert delivery_of_bounce(IDENTITY, address) == delivery
    forged = address.replace(delivery.hex, uuid4().hex)
    assert delivery_of_bounce(IDENTITY, forged) is None
    assert delivery_of_bounce(IDENTITY, "bounces@reply.acme.example") is None


def test_a_template_cannot_keep_the_process_busy() -> None:
    for draft in ("{% for i in range(100000) %}x{% endfor %}", "{{ 'x' * 10000000 }}",
                  "{{ 9 ** 99999 }}"):  # fmt: skip
        with pytest.raises(TemplateError):
            Templates().preview(Custom(draft, "x", "x"), _context(), "en")


def test_long_non_ascii_headers_fold_into_encoded_words_that_read_back_whole() -> None:
    subject = "[#4213] Мы получили ваше обращение: Счёт за ноябрь выставлен дважды — 😊 " * 3
    identity = MailIdentity("support@acme.example", "Служба поддержки ACME", "acme.example",
                            "reply.acme.example", b"secret")  # fmt: skip
    raw = build_message(identity, Outgoing(
        uuid4(), "acme", "agent:a-1", "a@acme.example", Rendered(subject, "т", "<p>т</p>", "ru"),
        "TicketOpened", "ticket_opened", None, None, None, datetime(2026, 11, 26, tzinfo=UTC),
    ))  # fmt: skip
    assert raw.count(b"\n") == raw.count(b"\r\n")  # CRLF only
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert all(len(w) <= 75 for w in re.findall(rb"=\?utf-8\?b\?[^?]*\?=", raw))
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Служба поддержки ACME"
    assert parsed["Reply-To"] is None  # an agent's notice: answers go nowhere near a ticket


def test_a_survey_invitation_offers_the_answers_of_the_page() -> None:
    def links(scale: tuple[int, ...]) -> list[tuple[str, str]]:
        request = SurveyRequested(
            survey_id=uuid4(), customer_id="c-1", survey=SurveyKind.CSAT,
            answer_url="https://support.example/surveys/t", scale=scale,
            expires_at=datetime(2026, 11, 26, tzinfo=UTC) + timedelta(days=14), language="en",
        )  # fmt: skip
        event = EventEnvelope.new(request, tenant_id="acme", producer="feedback")
        return list(context_of(event, None, "Support")["survey"]["links"])

    assert [label for label, _ in links(())] == ["Awful", "Bad", "OK", "Good", "Great"]
    assert links((1, 5)) == [("Awful", "https://support.example/surveys/t?score=1"),
                             ("Great", "https://support.example/surveys/t?score=5")]  # fmt: skip
