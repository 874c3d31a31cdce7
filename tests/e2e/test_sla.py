"""The SLA service through the real Kafka and PostgreSQL: fed by the ticketing service or by
ticket events (and watermarks) published as ticketing would, with real durable timers.

Deadlines near now come from back-dated `TicketOpened` events: the default policy's
24-hour target started about 24 hours ago.
"""

import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from helpdesk_contracts import (
    PLATFORM_TENANT,
    TOPICS,
    Actor,
    ActorKind,
    Channel,
    DlqHeader,
    Event,
    EventEnvelope,
    Priority,
    Requester,
    ResponseSent,
    TicketAssigned,
    TicketOpened,
    TicketPriorityChanged,
    TicketSolved,
    TicketStatus,
    TicketStatusChanged,
    TicketType,
    Watermark,
    dead_letter_topic,
    kafka_headers,
    kafka_key,
    parse_envelope,
)
from helpdesk_runtime.db import create_pool
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.watermarks import WatermarkPublisher
from sla.configuration import Catalogue
from sla.handlers import SLA_TOPIC, TICKETS_TOPIC, SlaHandlers
from sla.store import partition_of

from support.chaos import eventually
from support.fixtures import find_keyed, find_on_topic
from support.service import SlaService, sla_service, ticketing_service

DAY = timedelta(hours=24)
PARTITIONS = TOPICS[TICKETS_TOPIC].partitions


@pytest.fixture
async def sla(sla_database_url: str, kafka_bootstrap: str) -> AsyncIterator[SlaService]:
    async with sla_service(sla_database_url, kafka_bootstrap) as running:
        yield running


async def sla_events(
    kafka_bootstrap: str, ticket_id: UUID, *, until: int, timeout_s: float = 30
) -> list[EventEnvelope[Any]]:
    """The SLA events of one ticket, once `until` of them were published (and any more that
    follow at once: a duplicate would be seen)."""
    key = str(ticket_id).encode()
    records = await find_keyed(kafka_bootstrap, SLA_TOPIC, key, until=until, timeout_s=timeout_s)
    events = [parse_envelope(r.value) for r in records]
    assert len(events) >= until, f"{len(events)} SLA events of {until}: {kinds(events)}"
    return events


def kinds(events: list[EventEnvelope[Any]]) -> Counter[tuple[str, str]]:
    return Counter((e.event_type, e.payload.metric.value) for e in events)


class Publisher:
    """Ticket events on ticketing's topic, as ticketing publishes them."""

    def __init__(self, producer: Producer, tenant: str = "acme") -> None:
        self.producer = producer
        self.tenant = tenant
        self.ticket_id = uuid4()
        self.version = 0

    async def send(self, payload: Event, at: datetime) -> EventEnvelope[Any]:
        self.version += 1
        envelope = EventEnvelope.new(
            payload, tenant_id=self.tenant, producer="ticketing", aggregate_id=self.ticket_id,
            aggregate_version=self.version, occurred_at=at,
        )  # fmt: skip
        await self.producer.send_many([OutgoingMessage(
            TICKETS_TOPIC, envelope.to_json(), kafka_key(envelope), kafka_headers(envelope),
        )])  # fmt: skip
        return envelope

    async def watermark(self, up_to: datetime) -> None:
        """What ticketing's watermark job sends: a mark on every partition."""
        marks = []
        for partition in range(PARTITIONS):
            envelope = EventEnvelope.new(
                Watermark(partition=partition, partitions=PARTITIONS, up_to=up_to),
                tenant_id=PLATFORM_TENANT, producer="ticketing",
            )  # fmt: skip
            marks.append(OutgoingMessage(TICKETS_TOPIC, envelope.to_json(), None,
                                         kafka_headers(envelope), partition=partition))  # fmt: skip
        await self.producer.send_many(marks)

    async def open(self, at: datetime, number: int = 1) -> EventEnvelope[Any]:
        return await self.send(
            TicketOpened(
                number=number, subject="Parcel lost", description="", opened_by=SYSTEM,
                requester=Requester(customer_id="c-1"), priority=Priority.NORMAL,
                channel=Channel.EMAIL, type=TicketType.QUESTION,
            ),
            at,
        )  # fmt: skip


SYSTEM = Actor(kind=ActorKind.SYSTEM, id="webshop")
AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


async def test_a_tickets_life_through_both_services_gives_each_sla_event_once(
    database_url: str, sla_database_url: str, kafka_bootstrap: str
) -> None:
    policy = {
        "name": "Standard",
        "targets": {"any": {"first_response": {"minutes": 60},
                            "resolution": {"minutes": 8 * 60}}},
    }  # fmt: skip
    async with (
        sla_service(sla_database_url, kafka_bootstrap) as sla,
        ticketing_service(database_url, kafka_bootstrap) as ticketing,
    ):
        await ticketing.register_tenant("acme")
        saved = await sla.client.put("/v1/sla/policies/standard", json=policy,
                                     headers=sla.auth(role="admin"))  # fmt: skip
        assert saved.status_code == 200, saved.text
        assert saved.json()["version"] == 1
        agent = ticketing.auth()
        new = {"subject": "Refund", "description": "Twice", "requester": {"customer_id": "c-1"}}
        opened = await ticketing.client.post("/v1/tickets", headers=agent, json=new)
        assert opened.status_code == 201, opened.text
        ticket = f"/v1/tickets/{opened.json()['id']}"
        steps = [
            ("POST", f"{ticket}/replies", {"body": "Which order?", "status": "pending"}),
            ("PATCH", ticket, {"status": "open"}),
            ("PATCH", ticket, {"status": "solved"}),
        ]
        for method, url, change in steps:
            response = await ticketing.client.request(method, url, json=change, headers=agent)
            assert response.status_code == 200, response.text

        events = await sla_events(kafka_bootstrap, UUID(opened.json()["id"]), until=6)
        assert kinds(events) == Counter({
            ("SlaClockStarted", "first_response"): 1, ("SlaClockStarted", "resolution"): 1,
            ("SlaAchieved", "first_response"): 1, ("SlaClockPaused", "resolution"): 1,
            ("SlaClockResumed", "resolution"): 1, ("SlaAchieved", "resolution"): 1,
        })  # fmt: skip
        assert {e.payload.policy.policy_id for e in events if hasattr(e.payload, "policy")} == {
            "standard"
        }
        view = await sla.client.get(f"/v1/sla/tickets/{opened.json()['id']}", headers=sla.auth())
        assert view.status_code == 200, view.text
        clocks = {c["metric"]: c for c in view.json()["clocks"]}
        assert {m: c["verdict"] for m, c in clocks.items()} == {
            "first_response": "achieved", "resolution": "achieved"
        }  # fmt: skip
        (pause,) = clocks["resolution"]["pauses"]
        assert pause["reason"] == "pending"
        assert clocks["resolution"]["policy"]["policy_version"] == 1
        ledger = await sla.client.get(f"/v1/sla/tickets/{opened.json()['id']}/pauses?format=csv",
                                      headers=sla.auth())  # fmt: skip
        assert ledger.headers["content-type"].startswith("text/csv")
        assert ledger.text.splitlines()[1].split(",")[5] == "pending"
        # Another tenant's agents do not see the ticket.
        other = await sla.client.get(f"/v1/sla/tickets/{opened.json()['id']}",
                                     headers=sla.auth(tenant="globex"))  # fmt: skip
        assert other.status_code == 404


async def test_a_breach_waits_for_the_watermark_and_is_published_once(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    ticket = Publisher(producer)
    opened_at = datetime.now(UTC) - DAY - timedelta(seconds=5)  # the deadline passed 5 s ago
    await ticket.open(opened_at)
    deadline = opened_at + DAY
    # Warnings are for people and go by the wall clock; the breach does not.
    events = await sla_events(kafka_bootstrap, ticket.ticket_id, until=3)
    assert kinds(events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 2,
    })  # fmt: skip
    # Ticketing has not yet vouched for the time of the deadline: no verdict, and ops see
    # the breach held on the ticket's partition.
    await ticket.watermark(deadline - timedelta(seconds=1))
    partition = partition_of(ticket.ticket_id)
    supervisor = sla.auth(role="supervisor")

    async def held() -> list[Any]:
        marks = (await sla.client.get("/v1/sla/watermarks", headers=supervisor)).json()
        return [(m["partition"], m["held_breaches"]) for m in marks if m["held_breaches"]]

    await eventually(lambda: _true_async(held(), [(partition, 1)]), timeout_s=30)
    await ticket.send(ResponseSent(message_id=uuid4(), agent_id="a-1", body="Let me check",
                                   channel=Channel.EMAIL), datetime.now(UTC))  # fmt: skip
    await ticket.watermark(datetime.now(UTC))
    events = await sla_events(kafka_bootstrap, ticket.ticket_id, until=5)
    # The reply came after the deadline: breached (at the deadline), then stopped late.
    assert kinds(events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 2,
        ("SlaBreached", "first_response"): 1, ("SlaClockStopped", "first_response"): 1,
    })  # fmt: skip
    (breached,) = [e for e in events if e.event_type == "SlaBreached"]
    assert breached.occurred_at == breached.payload.deadline == deadline
    # The service's metrics moved with this traffic.
    metrics = (await sla.client.get("/metrics")).text
    group = sla.settings.tickets_group_id
    assert _sample(metrics, "helpdesk_events_consumed_total",
                   f'consumer="{group}",event_type="TicketOpened"') >= 1  # fmt: skip
    assert _sample(metrics, "helpdesk_events_produced_total", 'event_type="SlaBreached"') >= 1
    assert _sample(metrics, "helpdesk_timers_fired_total", 'kind="sla-alarm"') >= 1
    # Watermarks are idempotent by nature: they never fill the inbox.
    conn = await asyncpg.connect(sla.settings.database_url.get_secret_value())
    try:
        assert await conn.fetchval("SELECT count(*) FROM inbox WHERE tenant_id = 'system'") == 0
        assert await conn.fetchval("SELECT count(*) FROM watermarks") == PARTITIONS
    finally:
        await conn.close()


async def test_a_lagging_consumer_publishes_no_false_breach(
    sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    """A reply is sent just in time, then the SLA consumer lags while its timers run on past
    the deadline, and ticketing's watermark moves past it too. The reply is read before the
    watermark that vouches for the deadline: achieved, and no breach is ever published."""
    ticket = Publisher(producer)
    async with sla_service(sla_database_url, kafka_bootstrap) as first:
        group_id = first.settings.tickets_group_id
        opened_at = datetime.now(UTC) - DAY + timedelta(seconds=3)
        await ticket.open(opened_at)
        await sla_events(kafka_bootstrap, ticket.ticket_id, until=3)  # started, 2 warnings
    deadline = opened_at + DAY
    await ticket.send(ResponseSent(message_id=uuid4(), agent_id="a-1", body="Found it",
                                   channel=Channel.EMAIL), datetime.now(UTC))  # fmt: skip
    # Lagging: nothing is consumed, while the jobs (timers, relay) run past the deadline.
    async with sla_service(sla_database_url, kafka_bootstrap, group_id=group_id,
                           parts="api,jobs") as lagging:  # fmt: skip
        await eventually(lambda: _after(deadline), timeout_s=30)
        passed = time.monotonic()
        await ticket.watermark(datetime.now(UTC))
        timers = lagging.runtime.timers
        assert timers is not None
        await eventually(lambda: _true(timers.last_pass_at > passed), timeout_s=30)
    async with sla_service(sla_database_url, kafka_bootstrap, group_id=group_id):
        events = await sla_events(kafka_bootstrap, ticket.ticket_id, until=4)
    assert kinds(events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 2,
        ("SlaAchieved", "first_response"): 1,
    })  # fmt: skip


def _sample(metrics: str, name: str, labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name + "{") and labels in line
    )


async def _after(moment: datetime) -> bool:
    return datetime.now(UTC) > moment


async def _true(value: bool) -> bool:
    return value


async def _true_async(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_a_restart_loses_no_timer_and_doubles_none(
    sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    ticket = Publisher(producer)
    # A warning at 99.99 % of the 24-hour target falls due 4 s after the ticket is read.
    policy = {"name": "Late warning", "warnings": [0.9999],
              "targets": {"any": {"first_response": {"minutes": 24 * 60}}}}  # fmt: skip
    async with sla_service(sla_database_url, kafka_bootstrap) as first:
        saved = await first.client.put("/v1/sla/policies/late", json=policy,
                                       headers=first.auth(role="admin"))  # fmt: skip
        assert saved.status_code == 200, saved.text
        group_id = first.settings.tickets_group_id
        warn_at = datetime.now(UTC) + timedelta(seconds=4)
        await ticket.open(warn_at - DAY * 0.9999)
        await sla_events(kafka_bootstrap, ticket.ticket_id, until=1)
    # Down while the warning falls due; the next process finds the timer in the database.
    async with sla_service(sla_database_url, kafka_bootstrap, group_id=group_id):
        events = await sla_events(kafka_bootstrap, ticket.ticket_id, until=2)
    assert kinds(events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 1,
    })  # fmt: skip
    (warning,) = [e for e in events if e.event_type == "SlaWarning"]
    assert abs((warning.occurred_at - warn_at).total_seconds()) < 0.01


async def test_bad_calendars_and_policies_get_a_clear_422(sla: SlaService) -> None:
    admin = sla.auth(role="admin")
    week = {"mon": [{"start": "09:00", "end": "18:00"}]}

    async def put(url: str, body: dict[str, Any]) -> Any:
        return await sla.client.put(url, json=body, headers=admin)

    bad_zone = await put("/v1/sla/calendars/office", {"name": "O", "timezone": "Mars/Base",
                                                      "week": week})  # fmt: skip
    assert bad_zone.status_code == 422
    assert "Mars/Base" in bad_zone.json()["detail"]
    overlapping = await put("/v1/sla/calendars/office", {
        "name": "O", "timezone": "Europe/Moscow",
        "week": {"mon": [{"start": "09:00", "end": "13:00"}, {"start": "12:00", "end": "18:00"}]},
    })  # fmt: skip
    assert overlapping.status_code == 422
    assert "overlap" in overlapping.json()["detail"]
    good = await put("/v1/sla/calendars/office", {"name": "O", "timezone": "Europe/Moscow",
                                                  "week": week})  # fmt: skip
    assert good.status_code == 200, good.text

    policy = {"name": "P", "targets": {"any": {"first_response": {"minutes": 60}}}}
    unknown_calendar = await put("/v1/sla/policies/p", {**policy, "calendar_id": "nowhere"})
    assert unknown_calendar.status_code == 422
    assert "no calendar nowhere" in unknown_calendar.json()["detail"]
    zero = await put("/v1/sla/policies/p", {**policy, "targets": {"any": {
        "first_response": {"minutes": 0}}}})  # fmt: skip
    assert zero.status_code == 422
    assert zero.json()["errors"][0]["loc"][-1] == "minutes"
    unknown_field = await put("/v1/sla/policies/p", {**policy, "conditions": {"colour": ["red"]}})
    assert unknown_field.status_code == 422
    assert "colour" in str(unknown_field.json()["errors"])
    business_without_calendar = await put("/v1/sla/policies/p", {**policy, "targets": {"any": {
        "first_response": {"minutes": 60, "business_hours": True}}}})  # fmt: skip
    assert business_without_calendar.status_code == 422
    assert "need a calendar_id" in business_without_calendar.json()["detail"]
    agents_may_not = await sla.client.put("/v1/sla/policies/p", json=policy, headers=sla.auth())
    assert agents_may_not.status_code == 403

    used = await put("/v1/sla/policies/p", {**policy, "calendar_id": "office"})
    assert used.status_code == 200, used.text
    in_use = await sla.client.delete("/v1/sla/calendars/office", headers=admin)
    assert in_use.status_code == 409
    assert "used by policies p" in in_use.json()["detail"]


async def test_an_admin_previews_a_draft_calendar(sla: SlaService) -> None:
    draft = {"name": "Moscow", "timezone": "Europe/Moscow",
             "week": {d: [{"start": "09:00", "end": "18:00"}] for d in
                      ("mon", "tue", "wed", "thu", "fri")}}  # fmt: skip
    answer = await sla.client.post("/v1/sla/calendars/preview", headers=sla.auth(role="admin"),
                                   json={"calendar": draft, "start": "2026-11-27T17:00:00+03:00",
                                         "target_minutes": 120,
                                         "end": "2026-11-30T10:00:00+03:00"})  # fmt: skip
    assert answer.status_code == 200, answer.text
    # Friday 17:00 + 2 business hours: 1 h on Friday, 1 h on Monday morning.
    assert answer.json()["deadline"] == "2026-11-30T07:00:00Z"
    assert answer.json()["business_minutes"] == 120


async def test_an_invalid_ticket_event_is_dead_lettered_with_its_reason(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    ticket = Publisher(producer)
    good = await ticket.open(datetime.now(UTC))
    broken = good.model_dump(mode="json")
    broken["event_id"] = str(uuid4())
    del broken["payload"]["number"]
    key = str(ticket.ticket_id).encode()
    await producer.send_many([OutgoingMessage(TICKETS_TOPIC, json.dumps(broken).encode(), key)])
    group = sla.settings.tickets_group_id
    (letter,) = await find_on_topic(
        kafka_bootstrap, dead_letter_topic(TICKETS_TOPIC),
        lambda r: r.key == key and (DlqHeader.CONSUMER.value, group.encode()) in r.headers,
    )  # fmt: skip
    headers = dict(letter.headers)
    assert headers[DlqHeader.ERROR_TYPE.value] == b"invalid"
    assert b"number" in headers[DlqHeader.REASON.value]
    # The valid event before it was applied all the same.
    assert kinds(await sla_events(kafka_bootstrap, ticket.ticket_id, until=1))


async def _tables(database_url: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(database_url)
    try:
        return {
            table: [dict(r) for r in await conn.fetch(f"SELECT * FROM {table} ORDER BY 1")]
            for table in ("sla_tickets", "clocks")
        }
    finally:
        await conn.close()


async def test_the_clocks_rebuild_identically_from_the_input_log(
    sla: SlaService, sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    admin = sla.auth(role="admin")
    policy = {"name": "Standard", "retarget": "from_creation",
              "targets": {"any": {"first_response": {"minutes": 60},
                                  "resolution": {"minutes": 600}},
                          "urgent": {"first_response": {"minutes": 15},
                                     "resolution": {"minutes": 120}}}}  # fmt: skip
    assert (await sla.client.put("/v1/sla/policies/std", json=policy, headers=admin)).is_success
    start = datetime.now(UTC) - timedelta(hours=3)
    first, second = Publisher(producer), Publisher(producer)
    await first.open(start)
    await first.send(
        TicketStatusChanged(
            previous=TicketStatus.NEW, status=TicketStatus.PENDING, changed_by=AGENT
        ),
        start + timedelta(minutes=5),
    )
    await first.send(
        TicketStatusChanged(
            previous=TicketStatus.PENDING, status=TicketStatus.OPEN, changed_by=AGENT
        ),
        start + timedelta(minutes=50),
    )
    await first.send(
        TicketPriorityChanged(previous=Priority.NORMAL, priority=Priority.URGENT, changed_by=AGENT),
        start + timedelta(minutes=55),
    )
    # Started, paused, resumed and re-targeted, each clock: applied before the edit below.
    await sla_events(kafka_bootstrap, first.ticket_id, until=8)
    # An edit applies to new clocks only; the rebuild must keep each clock's version.
    policy["targets"]["any"]["first_response"] = {"minutes": 30}  # type: ignore[index]
    assert (await sla.client.put("/v1/sla/policies/std", json=policy, headers=admin)).is_success
    await second.open(start + timedelta(minutes=1))
    await second.send(
        ResponseSent(message_id=uuid4(), agent_id="a-1", body="Hello", channel=Channel.EMAIL),
        start + timedelta(minutes=20),
    )
    await first.watermark(datetime.now(UTC))
    await sla_events(kafka_bootstrap, second.ticket_id, until=3)
    await sla_events(kafka_bootstrap, first.ticket_id, until=9)  # the breach, once marked
    before = await _tables(sla_database_url)
    versions = {(r["ticket_id"], r["metric"]): r["policy_version"] for r in before["clocks"]}
    assert versions == {
        (first.ticket_id, "first_response"): 1, (first.ticket_id, "resolution"): 1,
        (second.ticket_id, "first_response"): 2, (second.ticket_id, "resolution"): 2,
    }  # fmt: skip

    conn = await asyncpg.connect(sla_database_url)
    try:
        async with conn.transaction():
            rebuilt = await SlaHandlers(Catalogue(), lambda: datetime.now(UTC)).rebuild(conn)
    finally:
        await conn.close()
    assert rebuilt == 2
    after = await _tables(sla_database_url)
    for table, rows in before.items():
        for old, new in zip(rows, after[table], strict=True):
            assert {k: (v, new[k]) for k, v in old.items() if new[k] != v} == {}, table
    assert after == before


async def test_what_if_recomputes_a_period_under_a_draft_and_changes_nothing(
    sla: SlaService, sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    admin = sla.auth(role="admin")
    policy: dict[str, Any] = {"name": "Standard",
                              "targets": {"any": {"first_response": {"minutes": 60}}}}  # fmt: skip
    assert (await sla.client.put("/v1/sla/policies/std", json=policy, headers=admin)).is_success
    start = datetime.now(UTC) - timedelta(hours=3)
    quick, slow = Publisher(producer), Publisher(producer)
    for ticket, minutes in ((quick, 45), (slow, 90)):
        await ticket.open(start)
        await ticket.send(
            ResponseSent(message_id=uuid4(), agent_id="a-1", body="Hi", channel=Channel.EMAIL),
            start + timedelta(minutes=minutes),
        )
    await sla_events(kafka_bootstrap, quick.ticket_id, until=2)
    await sla_events(kafka_bootstrap, slow.ticket_id, until=3)  # started, breached, stopped
    before = await _tables(sla_database_url)

    async def run(minutes: int) -> Any:
        draft = {**policy, "targets": {"any": {"first_response": {"minutes": minutes}}}}
        period = {"start": (start - timedelta(minutes=1)).isoformat(),
                  "end": (start + timedelta(minutes=1)).isoformat()}  # fmt: skip
        response = await sla.client.post("/v1/sla/what-if", headers=admin,
                                         json={**period, "policies": {"std": draft}})  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()

    # The saved policy changes after the period: replaying under no draft changes nothing,
    # because each event is replayed under the configuration it met.
    stricter = {**policy, "targets": {"any": {"first_response": {"minutes": 20}}}}
    assert (await sla.client.put("/v1/sla/policies/std", json=stricter, headers=admin)).is_success
    period = {"start": (start - timedelta(minutes=1)).isoformat(),
              "end": (start + timedelta(minutes=1)).isoformat()}  # fmt: skip
    unchanged = await sla.client.post("/v1/sla/what-if", headers=admin, json=period)
    assert unchanged.status_code == 200, unchanged.text
    assert unchanged.json()["changed"] == 0
    before = await _tables(sla_database_url)

    generous = await run(120)
    assert generous["tickets"] == 2
    (original,) = generous["original"]
    (recomputed,) = generous["what_if"]
    assert (original["achieved"], original["breached"], original["compliance"]) == (1, 1, 0.5)
    assert (recomputed["achieved"], recomputed["breached"], recomputed["compliance"]) == (2, 0, 1)
    assert [(c["ticket_id"], c["original"], c["what_if"]) for c in generous["changes"]] == [
        (str(slow.ticket_id), "breached", "achieved")
    ]
    strict = await run(30)
    assert strict["what_if"][0]["breached"] == 2
    assert strict["changed"] == 1
    assert await _tables(sla_database_url) == before  # the record is untouched
    bad = await sla.client.post("/v1/sla/what-if", headers=admin, json={
        "start": start.isoformat(), "end": start.isoformat()})  # fmt: skip
    assert bad.status_code == 422


async def test_compliance_and_support_reports(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    policy = {"name": "Standard", "targets": {"any": {"first_response": {"minutes": 60},
                                                      "resolution": {"minutes": 600}}}}  # fmt: skip
    assert (await sla.client.put("/v1/sla/policies/std", json=policy,
                                 headers=sla.auth(role="admin"))).is_success  # fmt: skip
    start = datetime.now(UTC) - timedelta(hours=3)
    solved, waiting = Publisher(producer), Publisher(producer)
    for ticket, minutes in ((solved, 45), (waiting, 90)):
        await ticket.open(start)
        await ticket.send(
            ResponseSent(message_id=uuid4(), agent_id="a-1", body="Hi", channel=Channel.EMAIL),
            start + timedelta(minutes=minutes),
        )
    await solved.send(TicketSolved(solved_by=AGENT), start + timedelta(hours=2))
    await sla_events(kafka_bootstrap, solved.ticket_id, until=4)
    await sla_events(kafka_bootstrap, waiting.ticket_id, until=4)
    supervisor = sla.auth(role="supervisor")
    period = {"start": (start - timedelta(hours=1)).isoformat(),
              "end": datetime.now(UTC).isoformat()}  # fmt: skip

    by_metric = await sla.client.get("/v1/sla/reports/compliance", params=period,
                                     headers=supervisor)  # fmt: skip
    assert by_metric.status_code == 200, by_metric.text
    lines = {line["metric"]: line for line in by_metric.json()}
    first = lines["first_response"]
    assert (first["achieved"], first["breached"], first["compliance"]) == (1, 1, 0.5)
    assert first["median_seconds"] == pytest.approx(67.5 * 60)
    assert first["p90_seconds"] == pytest.approx(85.5 * 60)
    assert (lines["resolution"]["achieved"], lines["resolution"]["median_seconds"]) == (1, 7200)

    daily = await sla.client.get("/v1/sla/reports/compliance", headers=supervisor, params={
        **period, "by": "priority", "period": "day", "timezone": "Europe/Moscow"})  # fmt: skip
    assert daily.status_code == 200, daily.text
    assert {(line["key"], line["period_start"] is not None) for line in daily.json()} == {
        ("normal", True)
    }

    support = await sla.client.get("/v1/sla/reports/support", params=period, headers=supervisor)
    assert support.status_code == 200, support.text
    report = support.json()
    assert report["requests"] == 2
    assert report["first_response_median_seconds"] == pytest.approx(67.5 * 60)
    assert report["time_to_close_median_seconds"] == pytest.approx(7200)
    assert report["backlog"]["open_tickets"] == 1
    assert report["backlog"]["by_age"]["under_1d"] == 1

    mars = {**period, "period": "day", "timezone": "Mars/Base"}
    bad_zone = await sla.client.get("/v1/sla/reports/compliance", headers=supervisor, params=mars)
    assert bad_zone.status_code == 422
    agents_may_not = await sla.client.get("/v1/sla/reports/support", params=period,
                                          headers=sla.auth())  # fmt: skip
    assert agents_may_not.status_code == 403


async def test_allowed_lateness_waits_for_back_dated_events_and_later_ones_revise(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    settings = await sla.client.put("/v1/sla/settings", json={"allowed_lateness_minutes": 10},
                                    headers=sla.auth(role="admin"))  # fmt: skip
    assert settings.status_code == 200, settings.text
    now = datetime.now(UTC)
    recent, old = Publisher(producer), Publisher(producer)
    await recent.open(now - DAY - timedelta(minutes=2))  # deadline 2 min ago: within lateness
    await old.open(now - DAY - timedelta(minutes=20))  # 20 min ago: beyond it
    await old.watermark(now)
    # Breached at once (no warning is worth sending any more); the recent one waits.
    assert kinds(await sla_events(kafka_bootstrap, old.ticket_id, until=2)) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaBreached", "first_response"): 1,
    })  # fmt: skip

    def reply() -> ResponseSent:
        return ResponseSent(message_id=uuid4(), agent_id="a-1", body="Answered by phone",
                            channel=Channel.PHONE)  # fmt: skip

    # Replies logged late in another system, stamped a minute before each deadline.
    await recent.send(reply(), now - timedelta(minutes=3))
    await old.send(reply(), now - timedelta(minutes=21))
    recent_events = await sla_events(kafka_bootstrap, recent.ticket_id, until=4)
    assert kinds(recent_events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 2,
        ("SlaAchieved", "first_response"): 1,
    })  # fmt: skip
    old_events = await sla_events(kafka_bootstrap, old.ticket_id, until=3)
    (revised,) = [e for e in old_events if e.event_type == "SlaVerdictRevised"]
    assert (revised.payload.previous, revised.payload.verdict) == ("breached", "achieved")


async def test_agents_sort_their_list_by_the_next_sla_deadline(
    database_url: str, sla_database_url: str, kafka_bootstrap: str
) -> None:
    policy = {"name": "Standard", "targets": {
        "any": {"first_response": {"minutes": 60}, "resolution": {"minutes": 600}},
        "urgent": {"first_response": {"minutes": 15}, "resolution": {"minutes": 120}}}}  # fmt: skip
    async with (
        sla_service(sla_database_url, kafka_bootstrap) as sla,
        ticketing_service(database_url, kafka_bootstrap) as ticketing,
    ):
        await ticketing.register_tenant("acme")
        assert (await sla.client.put("/v1/sla/policies/std", json=policy,
                                     headers=sla.auth(role="admin"))).is_success  # fmt: skip
        agent = ticketing.auth()
        opened = {}
        for priority in ("normal", "urgent", "low"):
            response = await ticketing.client.post("/v1/tickets", headers=agent, json={
                "subject": f"A {priority} one", "description": "Help",
                "requester": {"customer_id": "c-1"}, "priority": priority})  # fmt: skip
            assert response.status_code == 201, response.text
            opened[priority] = response.json()

        async def listed(**params: Any) -> list[Any]:
            query = {"sort": "sla_deadline", **params}
            page = await ticketing.client.get("/v1/tickets", headers=agent, params=query)
            assert page.status_code == 200, page.text
            return list(page.json()["items"])

        async def deadlines_known() -> bool:
            return all(t["sla_deadline"] for t in await listed())

        await eventually(deadlines_known, timeout_s=30)
        items = await listed()
        assert [t["priority"] for t in items] == ["urgent", "normal", "low"]
        urgent = datetime.fromisoformat(items[0]["sla_deadline"])
        opened_at = datetime.fromisoformat(opened["urgent"]["opened_at"])
        assert urgent == opened_at + timedelta(minutes=15)
        assert not any(t["sla_breached"] for t in items)
        soon = await listed(sla_due_before=(opened_at + timedelta(minutes=30)).isoformat())
        assert [t["priority"] for t in soon] == ["urgent"]
        # A first reply: the urgent ticket's next deadline is now its resolution's.
        reply = await ticketing.client.post(f"/v1/tickets/{opened['urgent']['id']}/replies",
                                            headers=agent, json={"body": "On it"})  # fmt: skip
        assert reply.status_code == 200, reply.text

        async def moved() -> bool:
            first = (await listed())[-1]
            return bool(first["id"] == opened["urgent"]["id"])

        await eventually(moved, timeout_s=30)
        (last,) = [t for t in await listed() if t["id"] == opened["urgent"]["id"]]
        assert datetime.fromisoformat(last["sla_deadline"]) == opened_at + timedelta(hours=2)


async def test_an_edited_policy_reaches_running_clocks_only_when_reapplied(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    admin = sla.auth(role="admin")
    policy: dict[str, Any] = {"name": "Standard",
                              "targets": {"any": {"first_response": {"minutes": 600}}}}  # fmt: skip
    assert (await sla.client.put("/v1/sla/policies/std", json=policy, headers=admin)).is_success
    ticket = Publisher(producer)
    opened = await ticket.open(datetime.now(UTC) - timedelta(hours=1))
    await sla_events(kafka_bootstrap, ticket.ticket_id, until=1)
    policy["targets"]["any"]["first_response"]["minutes"] = 120
    assert (await sla.client.put("/v1/sla/policies/std", json=policy, headers=admin)).is_success

    async def clock() -> Any:
        view = await sla.client.get(f"/v1/sla/tickets/{ticket.ticket_id}", headers=sla.auth())
        assert view.status_code == 200, view.text
        return view.json()["clocks"][0]

    before = await clock()
    assert (before["policy"]["policy_version"], before["target_seconds"]) == (1, 36000)
    assert before["started_by_event"] == str(opened.event_id)
    assert before["started_by_position"] >= 1  # its place in the input log
    reapplied = await sla.client.post("/v1/sla/policies/std/reapply", headers=admin)
    assert reapplied.status_code == 200, reapplied.text
    assert reapplied.json()["tickets"] == 1
    after = await clock()
    assert (after["policy"]["policy_version"], after["target_seconds"]) == (2, 7200)
    events = await sla_events(kafka_bootstrap, ticket.ticket_id, until=2)
    (retargeted,) = [e for e in events if e.event_type == "SlaClockRetargeted"]
    assert retargeted.payload.reason == "policy_reapplied"
    missing = await sla.client.post("/v1/sla/policies/nope/reapply", headers=admin)
    assert missing.status_code == 404


async def test_a_relay_held_back_across_a_deadline_publishes_no_false_breach(
    database_url: str, sla_database_url: str, kafka_bootstrap: str, producer: Producer
) -> None:
    """Ticketing commits a reply just in time but its relay is down while the deadline
    passes; its watermarks go on (computed from what the relay has published) and never
    vouch for the held-back reply. When the relay comes back: achieved, no breach."""

    # Ticketing's clock runs 24 h minus 8 s behind: the default 24-hour promise falls due
    # 8 s after the ticket opens (the stamps are ticketing's, as in production).
    def behind() -> datetime:
        return datetime.now(UTC) - DAY + timedelta(seconds=8)

    async with sla_service(sla_database_url, kafka_bootstrap) as sla:
        async with ticketing_service(database_url, kafka_bootstrap, clock=behind) as ticketing:
            await ticketing.register_tenant("acme")
            new = {"subject": "Refund", "description": "Twice", "requester": {"customer_id": "c"}}
            opened = await ticketing.client.post("/v1/tickets", headers=ticketing.auth(), json=new)
            assert opened.status_code == 201, opened.text
            ticket_id = UUID(opened.json()["id"])
            await sla_events(kafka_bootstrap, ticket_id, until=1)
        deadline = datetime.fromisoformat(opened.json()["opened_at"]) + DAY
        # The API without its jobs: the reply commits, nothing publishes it.
        async with ticketing_service(database_url, kafka_bootstrap, clock=behind,
                                     parts="api,consumers") as held:  # fmt: skip
            url = f"/v1/tickets/{ticket_id}/replies"
            reply = await held.client.post(url, headers=held.auth(), json={"body": "Refunded"})
            assert reply.status_code == 200, reply.text
            pool = await create_pool(database_url, min_size=1, max_size=2)
            marks = WatermarkPublisher(
                pool, producer, table="events", relay="kafka", topics=[TICKETS_TOPIC],
                producer_name="ticketing",
            )  # fmt: skip
            try:
                await eventually(lambda: _after(deadline + timedelta(seconds=1)), timeout_s=30)
                up_to = await marks.publish_once()  # the watermark job, running on its own
                assert up_to is not None
                assert up_to < deadline  # it does not vouch for the held-back reply
            finally:
                await pool.close()
            supervisor = sla.auth(role="supervisor")

            async def held_on_its_partition() -> bool:
                found = (await sla.client.get("/v1/sla/watermarks", headers=supervisor)).json()
                mark = next(m for m in found if m["partition"] == partition_of(ticket_id))
                return bool(mark["up_to"] and mark["held_breaches"] == 1)

            await eventually(held_on_its_partition, timeout_s=30)  # read, and holding
        async with ticketing_service(database_url, kafka_bootstrap, clock=behind):
            events = await sla_events(kafka_bootstrap, ticket_id, until=4)
    assert kinds(events) == Counter({
        ("SlaClockStarted", "first_response"): 1, ("SlaWarning", "first_response"): 2,
        ("SlaAchieved", "first_response"): 1,
    })  # fmt: skip


async def test_reports_group_a_clock_by_what_the_ticket_was_when_it_was_decided(
    sla: SlaService, kafka_bootstrap: str, producer: Producer
) -> None:
    ticket = Publisher(producer)
    start = datetime.now(UTC) - timedelta(hours=2)
    await ticket.open(start)
    await ticket.send(TicketAssigned(assignee_id="anna", group_id="billing", assigned_by=AGENT),
                      start + timedelta(minutes=1))  # fmt: skip
    answer = ResponseSent(message_id=uuid4(), agent_id="anna", body="Done", channel=Channel.EMAIL)
    await ticket.send(answer, start + timedelta(minutes=30))
    # Reassigned after the first response was judged: the verdict stays anna's.
    await ticket.send(TicketAssigned(assignee_id="boris", group_id="billing", assigned_by=AGENT),
                      start + timedelta(minutes=40))  # fmt: skip
    await sla_events(kafka_bootstrap, ticket.ticket_id, until=2)

    async def by_agent() -> list[Any]:
        report = await sla.client.get("/v1/sla/reports/compliance", headers=sla.auth(
            role="supervisor"), params={"start": start.isoformat(), "by": "agent",
                                        "end": datetime.now(UTC).isoformat()})  # fmt: skip
        assert report.status_code == 200, report.text
        return [(r["metric"], r["key"], r["achieved"]) for r in report.json()]

    await eventually(lambda: _true_async(by_agent(), [("first_response", "anna", 1)]), 30)
