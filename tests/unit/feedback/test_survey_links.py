"""Survey links: signed, so forged or altered ones name nothing; the page's words."""

from datetime import UTC, datetime
from uuid import uuid4

from feedback.page_text import Words, language_of
from feedback.tokens import Links, SurveyLink
from helpdesk_contracts import SurveyKind

LINK = SurveyLink("acme", uuid4(), datetime(2026, 12, 1, 12, 0, tzinfo=UTC))


def test_a_token_reads_back_as_its_link() -> None:
    links = Links("secret")
    assert links.read(links.token(LINK)) == LINK


def test_forged_altered_and_foreign_tokens_name_nothing() -> None:
    links, token = Links("secret"), Links("secret").token(LINK)
    assert Links("another deployment").read(token) is None
    body, _, signature = token.rpartition(".")
    assert links.read(f"{body}x.{signature}") is None
    assert links.read(f"{body}.{signature[:-2]}") is None
    assert links.read("not-a-token") is None


def test_the_page_speaks_the_invitations_language_else_the_browsers() -> None:
    assert language_of("ru", "en-GB,en;q=0.9", "en") == "ru"
    assert language_of(None, "de-DE,ru;q=0.8", "en") == "ru"
    assert language_of("de", None, "en") == "en"
    ru = Words("ru")
    assert ru("send") == "Отправить"
    assert ru("thanks.title") == "Спасибо!"
    assert Words("fr")("send") == "Send"
    assert ru.option(SurveyKind.CSAT, False, 5, (1, 2, 3, 4, 5)) == "5 – Очень доволен"
    assert Words("en").option(SurveyKind.NPS, False, 10, tuple(range(11))).endswith("likely")
