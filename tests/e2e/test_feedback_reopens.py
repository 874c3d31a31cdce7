"""Bad feedback reopens its ticket: `NegativeFeedbackFlagged` on the real Kafka, consumed by
the real ticketing service, for tickets worked over its API. Only a solved ticket of the
flag's tenant, only when the flag asks, once however often the flag comes."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpdesk_contracts import (
    EventEnvelope,
    NegativeFeedbackFlagged,
    SurveyKind,
    kafka_headers,
    kafka_key,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing import tenants

from support.chaos import eventually
from support.service import TicketingService, ticketing_service

FEEDBACK_EVENTS = "feedback.events.v1"
FEEDBACK = {"kind": "system", "id": "feedback"}


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[TicketingService]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


async def _ticket(service: TicketingService, tenant: str = "acme", *, solved: bool) -> str:
    body = {"subject": "Refund never arrived", "description": "Still waiting.",
            "requester": {"customer_id": f"c-{uuid4().hex[:8]}", "name": "Anna"}}  # fmt: skip
    opened = await service.client.post("/v1/tickets", json=body, headers=service.auth(tenant))
    assert opened.status_code == 201, opened.text
    ticket_id = str(opened.json()["id"])
    if solved:
        await _solve(service, ticket_id, tenant)
    return ticket_id


async def _solve(service: TicketingService, ticket_id: str, tenant: str = "acme") -> None:
    solved = await service.client.patch(
        f"/v1/tickets/{ticket_id}", json={"status": "solved", "resolution": "refunded"},
        headers=service.auth(tenant),
    )  # fmt: skip
    assert solved.status_code == 200, solved.text


async def _timeline(service: TicketingService, ticket_id: str, tenant: str = "acme") -> list[Any]:
    response = await service.client.get(
        f"/v1/tickets/{ticket_id}/timeline", headers=service.auth(tenant)
    )
    assert response.status_code == 200, response.text
    return list(response.json())


def _flag(ticket_id: str, *, tenant: str = "acme", reopen: bool = True) -> EventEnvelope[Any]:
    return EventEnvelope.new(NegativeFeedbackFlagged(
        flag_id=uuid4(), feedback_id=uuid4(), ticket_id=UUID(ticket_id), customer_id="c-1",
        survey=SurveyKind.CSAT, score=1, threshold=2, reason="slow_response", reopen=reopen,
    ), tenant_id=tenant, producer="feedback")  # fmt: skip


async def _publish(producer: Producer, *flags: EventEnvelope[Any]) -> None:
    await producer.send_many([
        OutgoingMessage(FEEDBACK_EVENTS, f.to_json(), kafka_key(f), kafka_headers(f))
        for f in flags
    ])  # fmt: skip


async def _seen(service: TicketingService) -> tuple[float, float, float]:
    """(applied, duplicates, dead letters) of the service's feedback consumer so far."""
    text = (await service.client.get("/metrics")).text
    group = service.settings.feedback_group_id
    names = ("helpdesk_events_consumed_total", "helpdesk_events_duplicate_total",
             "helpdesk_events_dead_lettered_total")  # fmt: skip
    counts = dict.fromkeys(names, 0.0)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in counts and s.labels.get("consumer") == group:
                counts[s.name] += s.value
    applied, duplicates, dead = (counts[n] for n in names)
    return applied, duplicates, dead


async def _until_seen(
    service: TicketingService, applied: int, duplicates: int = 0, dead: int = 0
) -> None:
    async def done() -> bool:
        return await _seen(service) == (applied, duplicates, dead)

    await eventually(done, timeout_s=60)


def _reopens(timeline: list[Any]) -> list[dict[str, Any]]:
    return [e["data"] for e in timeline if e["event_type"] == "TicketReopened"]


async def test_bad_feedback_reopens_a_solved_ticket_once(
    service: TicketingService, producer: Producer
) -> None:
    solved = await _ticket(service, solved=True)
    still_open = await _ticket(service, solved=False)
    not_asked = await _ticket(service, solved=True)
    theirs = await _ticket(service, "globex", solved=True)
    untouched = {t: await _timeline(service, t) for t in (still_open, not_asked)}
    untouched_theirs = await _timeline(service, theirs, "globex")

    flag = _flag(solved)
    # The last one names globex's ticket in a flag of acme.
    await _publish(producer, flag, _flag(still_open), _flag(not_asked, reopen=False),
                   _flag(theirs))  # fmt: skip
    await _publish(producer, flag)  # delivered twice

    async def reopened() -> bool:
        return bool(_reopens(await _timeline(service, solved)))

    await eventually(reopened, timeout_s=60)
    await _until_seen(service, applied=4, duplicates=1)  # every flag handled, the copy too
    assert _reopens(await _timeline(service, solved)) == [
        {"reopened_by": FEEDBACK, "reason": "negative_feedback"}
    ]
    [entry] = [e for e in await _timeline(service, solved) if e["event_type"] == "TicketReopened"]
    assert entry["correlation_id"] == str(flag.correlation_id)
    state = (await service.client.get(f"/v1/tickets/{solved}", headers=service.auth())).json()
    assert state["status"] == "open"
    for ticket_id, timeline in untouched.items():
        assert await _timeline(service, ticket_id) == timeline
    assert await _timeline(service, theirs, "globex") == untouched_theirs

    # Solved again, then the same flag once more: as a redelivered record (the inbox drops
    # it) and as a re-publication under a new event id (the later solve outranks it).
    await _solve(service, solved)
    again = flag.model_copy(update={"event_id": uuid4()})
    await _publish(producer, flag, again)
    await _until_seen(service, applied=5, duplicates=2)
    timeline = await _timeline(service, solved)
    assert len(_reopens(timeline)) == 1
    assert timeline[-1]["event_type"] == "TicketSolved"


async def test_a_suspended_tenants_flag_is_a_dead_letter_and_its_ticket_stays_solved(
    service: TicketingService, producer: Producer, database_url: str
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    ticket_id = await _ticket(service, tenant, solved=True)
    before = await _timeline(service, ticket_id, tenant)
    conn = await asyncpg.connect(database_url)
    try:
        assert await tenants.suspend(conn, tenant, True)
        await _publish(producer, _flag(ticket_id, tenant=tenant))
        await _until_seen(service, applied=0, dead=1)  # to re-drive once it is resumed
        assert await tenants.suspend(conn, tenant, False)
    finally:
        await conn.close()

    async def answered() -> bool:  # the API's tenant gate sees the resumption
        url = f"/v1/tickets/{ticket_id}/timeline"
        return (await service.client.get(url, headers=service.auth(tenant))).status_code == 200

    await eventually(answered, timeout_s=30)
    assert await _timeline(service, ticket_id, tenant) == before
