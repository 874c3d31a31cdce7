"""The feedback service end to end: ticketing, feedback and notifications on the real Kafka
and PostgreSQL, the invitation by real SMTP, the survey page in a real Chromium.

A solved ticket's customer gets a survey invitation by mail; its one-click link only
preselects an answer; the customer's submit (by keyboard) records it, publishes
`FeedbackReceived`, moves the scores and, being bad, flags the ticket once; answering again
replaces the answer. Forged, expired and duplicate submissions get clear pages; answers
from other systems are applied once, and an invalid one is dead-lettered with its reason.
Screenshots of each page state are kept in HELPDESK_ARTIFACTS_DIR (.local/artifacts).
"""

import json
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Page

from feedback.tokens import Links, SurveyLink
from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerErased,
    DlqHeader,
    EventEnvelope,
    FeedbackReceived,
    SurveyKind,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer

from support.browser import chromium
from support.chaos import eventually
from support.fixtures import find_keyed, find_on_topic
from support.mail import Mailbox, smtp_server
from support.service import (
    FeedbackService,
    TicketingService,
    feedback_service,
    notifications_service,
    ticketing_service,
)

ARTIFACTS = Path(os.environ.get("HELPDESK_ARTIFACTS_DIR", ".local/artifacts")) / "survey-page"
RECEIVED = "feedback.received.v1"
FLAGS = "feedback.events.v1"


@pytest.fixture
async def mailbox() -> AsyncIterator[Mailbox]:
    async with smtp_server() as box:
        yield box


@pytest.fixture
async def ticketing(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


@pytest.fixture
async def feedback(
    feedback_database_url: str, kafka_bootstrap: str
) -> AsyncIterator[FeedbackService]:
    async with feedback_service(feedback_database_url, kafka_bootstrap) as running:
        admin = running.auth(role="admin")
        # Due at once, and every solve surveyed, so the test need not wait an hour.
        settings = {"delay_s": 0, "cooldown_days": 0}
        saved = await running.client.put("/v1/survey-settings", json=settings, headers=admin)
        assert saved.status_code == 200, saved.text
        yield running


async def _solved_ticket(ticketing: TicketingService, email: str) -> dict[str, Any]:
    agent = ticketing.auth()
    body = {"subject": "Не приходит счёт", "description": "Третий день жду счёт.",
            "requester": {"customer_id": f"c-{uuid4().hex[:8]}", "name": "Анна",
                          "email": email, "language": "ru"}}  # fmt: skip
    opened = await ticketing.client.post("/v1/tickets", json=body, headers=agent)
    assert opened.status_code == 201, opened.text
    ticket = dict(opened.json())
    url = f"/v1/tickets/{ticket['id']}"
    replied = await ticketing.client.post(f"{url}/replies", json={"body": "Отправили."},
                                          headers=agent)  # fmt: skip
    assert replied.status_code == 200, replied.text
    solved = await ticketing.client.patch(url, json={"status": "solved"}, headers=agent)
    assert solved.status_code == 200, solved.text
    return ticket


def _text(mail: EmailMessage) -> str:
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content())


async def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def _get(service: FeedbackService, path: str, role: str = "supervisor") -> Any:
    response = await service.client.get(path, headers=service.auth(role=role))
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_solved_ticket_is_surveyed_answered_in_the_browser_scored_and_flagged(
    ticketing: TicketingService, feedback: FeedbackService, mailbox: Mailbox,
    notifications_database_url: str, kafka_bootstrap: str,
) -> None:  # fmt: skip
    address = f"anna.{uuid4().hex[:6]}@example.com"
    async with notifications_service(
        notifications_database_url, kafka_bootstrap, mailbox.port
    ) as _:
        ticket = await _solved_ticket(ticketing, address)
        mails = await mailbox.wait_for(address, count=3, timeout_s=60)  # ack, reply, solved
        invitation = await mailbox.wait_for(address, count=4, timeout_s=60)
    [text] = [t for t in map(_text, invitation) if "/surveys/" in t]
    links = re.findall(r"(http://\S+/surveys/\S+)", text)
    assert len(links) == 5, text  # one-click CSAT answers 1..5
    one_click_bad = next(link for link in links if link.endswith("score=1"))
    assert len(mails) >= 3

    decision = await _get(feedback, f"/v1/tickets/{ticket['id']}/survey", role="agent")
    assert (decision["invited"], decision["survey"], decision["agent_id"]) == (
        True, "csat", "agent-7",
    )  # fmt: skip

    async with chromium() as browser:
        page = await browser.new_page(locale="ru-RU", viewport={"width": 390, "height": 844})
        opened = await page.goto(one_click_bad)
        assert opened is not None
        assert opened.status == 200
        await _shot(page, "1-preselected-by-one-click-link")
        assert await page.locator("html").get_attribute("lang") == "ru"
        assert await page.get_by_label("1 – Совсем не доволен").is_checked()
        # Opening the link (as a mail scanner does) recorded nothing.
        assert await _get(feedback, f"/v1/answers?ticket_id={ticket['id']}", "agent") == []

        # The customer answers by keyboard alone: every control is labelled and reachable.
        await page.get_by_label("Если что-то пошло не так, что именно?").select_option(
            "slow_response"
        )
        await page.get_by_label("Хотите что-нибудь добавить? (необязательно)").fill(
            "Ждала <b>три</b> дня"
        )
        await page.get_by_role("button", name="Отправить").focus()
        async with page.expect_navigation():
            await page.keyboard.press("Enter")
        await _shot(page, "2-answer-recorded")
        assert await page.locator("h1").inner_text() == "Спасибо!"

        answers = await _get(feedback, f"/v1/answers?ticket_id={ticket['id']}", "agent")
        assert [(a["score"], a["reason"], a["comment"], a["agent_id"]) for a in answers] == [
            (1, "slow_response", "Ждала <b>три</b> дня", "agent-7")
        ]
        scores = await _get(feedback, "/v1/scores?by=agent", "agent")
        [mine] = [s for s in scores if s["key"] == "agent-7"]
        assert (mine["answers"], mine["score"], mine["invited"], mine["response_rate"]) == (
            1, 0.0, 1, 1.0,
        )  # fmt: skip
        [flag] = await _get(feedback, "/v1/flags")
        assert (flag["score"], flag["reason"], flag["comment"]) == (
            1, "slow_response", "Ждала <b>три</b> дня",
        )  # fmt: skip

        # Answering again from the same link replaces the answer; it is still flagged once.
        await page.goto(links[-1])  # score=5
        await _shot(page, "3-answering-again")
        assert "Новый ответ заменит прежний" in await page.locator(".note").inner_text()
        await page.get_by_label("Если что-то пошло не так, что именно?").select_option("")
        await page.get_by_role("button", name="Отправить").click()
        await page.wait_for_selector("text=Спасибо!")

        forged = await page.goto(one_click_bad.replace("/surveys/", "/surveys/x"))
        assert forged is not None
        assert forged.status == 404
        await _shot(page, "4-forged-link")
        assert await page.locator("h1").inner_text() == "Ссылка не работает"

        secret = feedback.settings.survey_link_secret
        assert secret is not None
        links_of = Links(secret.get_secret_value())
        past = datetime.now(UTC) - timedelta(days=1)
        expired_token = links_of.token(SurveyLink("acme", uuid4(), past))
        expired = await page.goto(f"{feedback.base_url}/surveys/{expired_token}")
        assert expired is not None
        assert expired.status == 410
        await _shot(page, "5-expired-link")
        assert await page.locator("h1").inner_text() == "Опрос закрыт"

    answers = await _get(feedback, f"/v1/answers?ticket_id={ticket['id']}", "agent")
    assert [(a["score"], a["replaced_by"] is None) for a in answers] == [(5, True), (1, False)]
    [mine] = [s for s in await _get(feedback, "/v1/scores?by=agent", "agent")
              if s["key"] == "agent-7"]  # fmt: skip
    assert (mine["answers"], mine["score"]) == (1, 100.0)

    published = await find_keyed(kafka_bootstrap, RECEIVED, ticket["id"].encode(), until=2)
    assert sorted(json.loads(r.value)["payload"]["score"] for r in published) == [1, 5]
    replacing = next(json.loads(r.value)["payload"] for r in published
                     if json.loads(r.value)["payload"]["score"] == 5)  # fmt: skip
    assert replacing["replaces"] == answers[1]["feedback_id"]
    flagged = await find_keyed(kafka_bootstrap, FLAGS, ticket["id"].encode(), until=2,
                               timeout_s=5)  # fmt: skip
    assert len(flagged) == 1
    flag_event = json.loads(flagged[0].value)
    flag = flag_event["payload"]
    assert flag_event["event_type"] == "NegativeFeedbackFlagged"
    number = ticket["number"]
    assert (flag["score"], flag["agent_id"], flag["ticket_number"]) == (1, "agent-7", number)
    assert "comment" not in flag  # personal data stays in the feedback service


async def test_the_page_refuses_a_duplicate_submission_and_a_bad_answer(
    ticketing: TicketingService, feedback: FeedbackService, kafka_bootstrap: str,
) -> None:  # fmt: skip
    ticket = await _solved_ticket(ticketing, f"ivan.{uuid4().hex[:6]}@example.com")
    [request] = await find_keyed(kafka_bootstrap, "feedback.surveys.v1", ticket["id"].encode())
    url = json.loads(request.value)["payload"]["answer_url"]
    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(url, headers={"Accept-Language": "en"})
        assert '<html lang="ru">' in page.text
        assert page.status_code == 200
        submission = re.search(r'name="submission" value="([0-9a-f]{32})"', page.text)
        assert submission is not None
        form = {"submission": submission[1], "score": "4"}
        bad = await client.post(url, data={**form, "score": "9"})
        assert bad.status_code == 422
        assert "Пожалуйста, выберите ответ." in bad.text  # the invitation's language
        wrong_reason = await client.post(url, data={**form, "reason": "<script>"})
        assert wrong_reason.status_code == 422
        assert "<script>" not in wrong_reason.text
        first = await client.post(url, data=form)
        assert first.status_code == 200, first.text
        again = await client.post(url, data=form)  # the same form sent twice
        assert again.status_code == 409
        assert "Этот ответ уже сохранён" in again.text
    answers = await _get(feedback, f"/v1/answers?ticket_id={ticket['id']}", "agent")
    assert [a["score"] for a in answers] == [4]


async def test_answers_from_other_systems_are_applied_once_invalid_ones_dead_lettered_and_erased(
    feedback: FeedbackService, kafka_bootstrap: str, producer: Producer,
) -> None:  # fmt: skip
    customer = f"c-{uuid4().hex[:8]}"
    answer = EventEnvelope.new(
        FeedbackReceived(feedback_id=uuid4(), customer_id=customer, survey=SurveyKind.NPS,
                         score=3, comment="Приложение падает", source="app-store"),
        tenant_id="acme", producer="app-store",
    )  # fmt: skip
    message = OutgoingMessage(RECEIVED, answer.to_json(), kafka_key(answer),
                              kafka_headers(answer))  # fmt: skip
    invalid = json.loads(answer.to_json())
    invalid["event_id"] = str(uuid4())
    invalid["payload"] |= {"feedback_id": str(uuid4()), "score": 11}
    survey_id = uuid4()
    unknown = EventEnvelope.new(
        FeedbackReceived(feedback_id=uuid4(), customer_id=customer, survey=SurveyKind.CSAT,
                         score=4, source="call-centre", survey_id=survey_id),
        tenant_id="acme", producer="call-centre",
    )  # fmt: skip
    await producer.send_many([
        message, message,
        OutgoingMessage(RECEIVED, json.dumps(invalid).encode(), b"bad-" + customer.encode(),
                        []),
        OutgoingMessage(RECEIVED, unknown.to_json(), kafka_key(unknown), kafka_headers(unknown)),
    ])  # fmt: skip

    async def applied() -> bool:
        found = await _get(feedback, f"/v1/answers?customer_id={customer}", "agent")
        return len(found) == 1

    await eventually(applied, timeout_s=30)
    [flag] = [f for f in await _get(feedback, "/v1/flags") if f["customer_id"] == customer]
    assert (flag["survey"], flag["score"], flag["threshold"]) == ("nps", 3, 6)

    def dead(record: Any) -> bool:
        return customer.encode() in (record.value or b"")

    # The customer is erased: their words go, their score stays.
    erased = EventEnvelope.new(
        CustomerErased(customer_id=customer, erased_subjects=(customer,),
                       requested_by=Actor(kind=ActorKind.AGENT, id="dpo-1")),
        tenant_id="acme", producer="ticketing", aggregate_id=uuid4(), aggregate_version=3,
    )  # fmt: skip
    directory = "ticketing.directory.v1"
    await producer.send_many(
        [OutgoingMessage(directory, erased.to_json(), kafka_key(erased), kafka_headers(erased))]
    )

    async def blanked() -> bool:
        [found] = await _get(feedback, f"/v1/answers?customer_id={customer}", "agent")
        return found["comment"] is None and found["score"] == 3

    await eventually(blanked, timeout_s=30)

    letters = await find_on_topic(kafka_bootstrap, f"{RECEIVED}.dlq", dead, until=2)
    reasons = sorted(dict(r.headers)[DlqHeader.REASON].decode() for r in letters)
    assert len(reasons) == 2, reasons
    assert any("payload.score: Input should be less than or equal to 10" in r for r in reasons)
    assert any(f"survey {survey_id} was never sent by this tenant" in r for r in reasons)


async def test_a_ticket_solved_twice_is_surveyed_once_and_the_page_limits_each_address(
    ticketing: TicketingService, feedback_database_url: str, kafka_bootstrap: str
) -> None:
    async with feedback_service(feedback_database_url, kafka_bootstrap,
                                page_views_per_minute=3) as feedback:  # fmt: skip
        saved = await feedback.client.put("/v1/survey-settings", json={"delay_s": 0},
                                          headers=feedback.auth(role="admin"))  # fmt: skip
        assert saved.status_code == 200, saved.text
        ticket = await _solved_ticket(ticketing, f"oleg.{uuid4().hex[:6]}@example.com")
        key = ticket["id"].encode()
        [request] = await find_keyed(kafka_bootstrap, "feedback.surveys.v1", key)
        url = f"/v1/tickets/{ticket['id']}"
        for status in ("open", "solved"):  # reopened, and solved again
            r = await ticketing.client.patch(url, json={"status": status},
                                              headers=ticketing.auth())  # fmt: skip
            assert r.status_code == 200, r.text

        async def timer_done() -> bool:  # the second solve's timer fired, and decided nothing
            return not await _pending_timers(feedback_database_url)

        await eventually(timer_done, timeout_s=30)
        requests = await find_keyed(kafka_bootstrap, "feedback.surveys.v1", key, until=2,
                                    timeout_s=3)  # fmt: skip
        assert len(requests) == 1

        answer_url = json.loads(request.value)["payload"]["answer_url"]
        async with httpx.AsyncClient(timeout=10) as client:
            statuses = [(await client.get(answer_url)).status_code for _ in range(4)]
            assert statuses == [200, 200, 200, 429]
            # Refused before the link is read (cheaply): in the browser's language.
            limited = await client.get(answer_url, headers={"Accept-Language": "ru-RU,ru"})
        assert "Слишком много попыток" in limited.text


async def _pending_timers(database_url: str) -> int:
    conn = await asyncpg.connect(database_url)
    try:
        found: int = await conn.fetchval("SELECT count(*) FROM timers")
        return found
    finally:
        await conn.close()
