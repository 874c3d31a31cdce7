"""Deciding and sending against the real PostgreSQL and a real SMTP server (aiosmtpd): one
message per (event, recipient, channel) whatever is redelivered, temporary failures
retried with backoff, permanent ones dead letters, and personal data opened only to send."""

from datetime import UTC, datetime, time, timedelta
from typing import Any
from uuid import uuid4

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerReplied,
    EventEnvelope,
    PolicyRef,
    Requester,
    SlaBreached,
    SlaMetric,
    SurveyKind,
    SurveyRequested,
    TicketAssigned,
    TicketFollowersChanged,
)
from helpdesk_runtime.keyring import KeyRing
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS
from helpdesk_runtime.timer_scheduler import TimerScheduler
from notifications.domain.notices import Lane
from notifications.handlers import DELIVER

from support.events import opened
from support.notifying import Rig, contact, states, ticket_event, with_requester


async def test_an_opened_ticket_is_acknowledged_once_with_its_number(rig: Rig) -> None:
    ticket = uuid4()
    event = opened(ticket, number=4213)
    await rig.publish(event)
    await rig.publish(event)  # redelivered: the same delivery, no second timer
    assert await rig.fire() == 1
    [mail] = await rig.mailbox.wait_for("anna@example.com")
    assert "[#4213]" in str(mail["Subject"])
    assert "Invoice shows the wrong amount" in str(mail["Subject"])
    await rig.publish(event)  # and again after it was sent
    assert await rig.fire() == 0
    assert len(rig.mailbox.to("anna@example.com")) == 1
    delivery = await rig.delivery(ticket)
    assert (delivery["state"], delivery["attempts"]) == ("sent", 1)
    assert mail["X-Helpdesk-Delivery-Id"] == str(delivery["delivery_id"])
    async with rig.pool.acquire() as conn:  # nothing personal is kept in plain text
        stored = await conn.fetchval("SELECT event::text || opening::text FROM deliveries"
                                     " JOIN tickets USING (tenant_id, ticket_id)")  # fmt: skip
    assert "anna@example.com" not in stored
    assert "Invoice" not in stored


async def test_an_smtp_outage_is_retried_with_backoff_then_sent_once(rig: Rig) -> None:
    ticket = uuid4()
    rig.mailbox.refusing = "451 4.3.0 Try again later"
    await rig.publish(opened(ticket, number=7))
    assert await rig.fire() == 1
    delivery = await rig.delivery(ticket)
    assert (delivery["state"], delivery["attempts"]) == ("pending", 1)
    assert "451" in delivery["last_error"]
    assert await rig.fire() == 0  # not before its backoff
    rig.clock.advance(10)  # the first retry is 5..10 s later
    rig.mailbox.refusing = None
    assert await rig.fire() == 1
    assert len(await rig.mailbox.wait_for("anna@example.com")) == 1
    assert await rig.outcomes(delivery["delivery_id"]) == ["temporary", "sent"]


async def test_a_server_that_stays_away_makes_a_dead_letter_with_the_reason(rig: Rig) -> None:
    ticket = uuid4()
    rig.mailbox.refusing = "421 4.7.0 Service not available"
    await rig.publish(opened(ticket))
    for _ in range(3):  # retry_attempts=3
        assert await rig.fire() == 1
        rig.clock.advance(60)
    delivery = await rig.delivery(ticket)
    assert delivery["state"] == "dead"
    assert "gave up after 3 attempts" in delivery["last_error"]
    assert await rig.fire() == 0


async def test_a_permanent_refusal_is_a_dead_letter_at_once(rig: Rig) -> None:
    ticket = uuid4()
    rig.mailbox.refusing = "550 5.1.1 No such user"
    await rig.publish(opened(ticket))
    assert await rig.fire() == 1
    delivery = await rig.delivery(ticket)
    assert delivery["state"] == "dead"
    assert "550" in delivery["last_error"]
    assert await rig.outcomes(delivery["delivery_id"]) == ["permanent"]


async def test_a_key_not_replicated_yet_waits_and_an_erased_recipient_is_cancelled(
    rig: Rig,
) -> None:
    waiting, erased = uuid4(), uuid4()
    await rig.publish(opened(waiting, number=1), subject="c-1")
    late = with_requester(
        opened(erased, number=2), Requester(customer_id="c-2", email="bob@example.com")
    )
    await rig.publish(late, subject="c-2")
    async with rig.pool.acquire() as conn:  # c-1's key has not arrived; c-2 was erased
        saved = await conn.fetchrow("SELECT * FROM subject_keys WHERE subject_id = 'c-1'")
        assert saved is not None
        await conn.execute("DELETE FROM subject_keys WHERE subject_id = 'c-1'")
        await rig.notifier.keys.destroy(conn, "acme", ["c-2"])
    rig.notifier.keys = SubjectKeys(
        KeyRing.parse(DEV_PII_MASTER_KEYS)
    )  # a process that never unwrapped them
    assert await rig.fire() == 2
    assert (await rig.delivery(erased))["state"] == "cancelled"
    wait = await rig.delivery(waiting)
    assert (wait["state"], wait["attempts"]) == ("pending", 0)  # not counted as a failure
    async with rig.pool.acquire() as conn:  # the key arrives
        await conn.execute(
            "INSERT INTO subject_keys SELECT $1, $2, $3, $4, $5, $6, $7",
            *saved.values(),
        )
    rig.clock.advance(2)
    assert await rig.fire() == 1
    assert len(await rig.mailbox.wait_for("anna@example.com")) == 1
    assert rig.mailbox.to("bob@example.com") == []


async def test_a_language_without_templates_falls_back_to_english(rig: Rig) -> None:
    ticket = uuid4()
    event = with_requester(
        opened(ticket, number=12),
        Requester(customer_id="c-1", email="anna@example.com", language="de"),
    )
    await rig.publish(event)
    await rig.fire()
    [mail] = await rig.mailbox.wait_for("anna@example.com")
    assert str(mail["Subject"]).startswith("[#12] We received your request")
    assert mail["Content-Language"] == "en"


async def test_events_older_than_a_day_notify_no_one(rig: Rig) -> None:
    ticket = uuid4()
    old = opened(ticket).model_copy(update={"occurred_at": rig.clock.now - timedelta(days=2)})
    await rig.publish(old)
    assert await rig.fire() == 0
    async with rig.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM deliveries") == 0
        assert await conn.fetchval("SELECT count(*) FROM tickets") == 1  # replies may follow


async def test_a_survey_invitation_offers_one_link_per_answer_in_the_bulk_lane(rig: Rig) -> None:
    ticket = uuid4()
    await rig.publish(opened(ticket, number=31))
    assert await rig.fire() == 1  # the acknowledgement
    survey = EventEnvelope.new(
        SurveyRequested(
            survey_id=uuid4(), ticket_id=ticket, ticket_number=31, customer_id="c-1",
            survey=SurveyKind.CSAT, answer_url="https://support.example/s/tok",
            expires_at=rig.clock.now + timedelta(days=7), language="ru",
        ),
        tenant_id="acme", producer="feedback",
    )  # fmt: skip
    await rig.publish(survey)
    async with rig.pool.acquire() as conn:
        lane = await conn.fetchval(
            "SELECT kind FROM timers WHERE key = (SELECT delivery_id::text FROM deliveries"
            " WHERE event_id = $1)", survey.event_id,
        )  # fmt: skip
    assert lane == "deliver-bulk"
    assert await rig.fire() == 1
    mails = await rig.mailbox.wait_for("anna@example.com", count=2)
    assert str(mails[1]["Subject"]) == "[#31] Как мы справились?"
    assert mails[1]["Auto-Submitted"] == "auto-generated"
    html = mails[1].get_body(("html",))
    assert html is not None
    links = [f'href="https://support.example/s/tok?score={n}"' for n in range(1, 6)]
    assert all(link in html.get_content() for link in links)
    assert ">Отлично<" in html.get_content()


async def test_agents_hear_of_assignments_in_their_language_or_the_log_says_why_not(
    rig: Rig,
) -> None:
    ticket = uuid4()
    await contact(rig, "agent:a-5", email="a5@acme.example", language="ru")
    await rig.publish(opened(ticket, number=77))
    agent = Actor(kind=ActorKind.AGENT, id="a-1")
    to_a5 = ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=agent))
    followers = ticket_event(ticket, 3, TicketFollowersChanged(
        previous=(), followers=("a-6",), changed_by=agent))  # fmt: skip
    await rig.publish(to_a5, followers)
    assert await rig.fire() == 2  # the acknowledgement and a-5's assignment
    [mail] = await rig.mailbox.wait_for("a5@acme.example")
    assert str(mail["Subject"]) == "[#77] Назначено вам: Invoice shows the wrong amount"
    assert mail["Auto-Submitted"] == "auto-generated"
    assert await states(rig, followers.event_id) == {
        "agent:a-6": ("cancelled", "no address for agent:a-6 in any of their channels"),
    }


async def test_a_breach_waits_for_business_hours_and_reaches_the_leads(rig: Rig) -> None:
    ticket = uuid4()
    await contact(rig, "agent:lead-1", email="lead@acme.example")
    async with rig.pool.acquire() as conn:
        await conn.execute("INSERT INTO group_leads VALUES ('acme', 'billing', '{lead-1}')")
        await conn.execute(
            "INSERT INTO business_hours VALUES ('acme', 'UTC', '{0,1,2,3,4}', '09:00', '18:00')"
        )
    rig.clock.now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)  # a Saturday
    await rig.publish(opened(ticket, number=5).model_copy(update={"occurred_at": rig.clock.now}))
    await rig.fire()
    breach = EventEnvelope.new(SlaBreached(
        ticket_id=ticket, ticket_number=5, clock_id=uuid4(), metric=SlaMetric.FIRST_RESPONSE,
        policy=PolicyRef(policy_id="p", policy_version=1, business_hours=True),
        target_seconds=3600, deadline=rig.clock.now, group_id="billing",
    ), tenant_id="acme", producer="sla", occurred_at=rig.clock.now)  # fmt: skip
    await rig.publish(breach)
    assert await rig.fire() == 0  # held until Monday 09:00
    rig.clock.now = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    assert await rig.fire() == 1
    [mail] = await rig.mailbox.wait_for("lead@acme.example")
    assert str(mail["Subject"]) == "[#5] SLA first response breached"


async def test_quiet_hours_defer_a_survey_and_an_opt_out_cancels_it(rig: Rig) -> None:
    ticket = uuid4()
    rig.clock.now = datetime(2026, 11, 26, 23, 0, tzinfo=UTC)
    await rig.publish(opened(ticket).model_copy(update={"occurred_at": rig.clock.now}))
    await rig.fire()
    await contact(rig, "customer:c-1", quiet_from=time(22), quiet_until=time(7))

    def survey() -> EventEnvelope[Any]:
        return EventEnvelope.new(SurveyRequested(
            survey_id=uuid4(), ticket_id=ticket, customer_id="c-1", survey=SurveyKind.CSAT,
            answer_url="https://support.example/s/t", expires_at=rig.clock.now + timedelta(days=7),
        ), tenant_id="acme", producer="feedback", occurred_at=rig.clock.now)  # fmt: skip

    await rig.publish(survey())
    assert await rig.fire() == 0  # 23:00: quiet until 07:00
    rig.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    assert await rig.fire() == 1
    assert len(await rig.mailbox.wait_for("anna@example.com", count=2)) == 2
    async with rig.pool.acquire() as conn:
        await conn.execute("UPDATE contacts SET opted_out = '{survey_invitation}'")
    unwanted = survey()
    await rig.publish(unwanted)
    assert await states(rig, unwanted.event_id) == {
        "customer:c-1": ("cancelled", "opted out of survey_invitation"),
    }
    assert await rig.fire() == 0


async def test_bulk_mail_gives_way_while_urgent_messages_are_behind(rig: Rig) -> None:
    ticket = uuid4()
    bulk = TimerScheduler(rig.pool, {DELIVER[Lane.BULK]: rig.notifier.deliver}, clock=rig.clock,
                          gate=rig.notifier.bulk_may_fire)  # fmt: skip
    urgent = TimerScheduler(rig.pool, {DELIVER[Lane.URGENT]: rig.notifier.deliver},
                            clock=rig.clock)  # fmt: skip
    survey = EventEnvelope.new(SurveyRequested(
        survey_id=uuid4(), ticket_id=ticket, customer_id="c-1", survey=SurveyKind.CSAT,
        answer_url="https://support.example/s/t", expires_at=rig.clock.now + timedelta(days=7),
    ), tenant_id="acme", producer="feedback")  # fmt: skip
    await rig.publish(opened(ticket, number=3), survey)
    rig.clock.advance(5)  # the acknowledgement has waited 5 s: the urgent lane is behind
    assert await bulk.fire_due() == 0  # the gate is shut: the invitation is not even claimed
    async with rig.pool.acquire() as conn:
        waiting = await conn.fetchval("SELECT count(*) FROM timers WHERE kind = $1",
                                      DELIVER[Lane.BULK])  # fmt: skip
    assert (waiting, rig.mailbox.attempts) == (1, 0)
    assert await urgent.fire_due() == 1
    assert await bulk.fire_due() == 1  # nothing urgent is behind any more
    mails = await rig.mailbox.wait_for("anna@example.com", count=2)
    assert [str(m["Subject"]).split("] ")[1][:8] for m in mails] == ["We recei", "How did "]


async def test_a_customers_reply_reaches_the_tickets_assignee_and_followers_as_they_are_now(
    rig: Rig,
) -> None:
    ticket = uuid4()
    agent = Actor(kind=ActorKind.AGENT, id="a-1")
    await rig.publish(opened(ticket))
    await rig.publish(
        ticket_event(ticket, 2, TicketAssigned(assignee_id="a-5", assigned_by=agent)),
        ticket_event(ticket, 3, TicketFollowersChanged(previous=(), followers=("a-6", "a-7"),
                                                       changed_by=agent)),
        ticket_event(ticket, 4, TicketAssigned(assignee_id="a-8", assigned_by=agent)),
        ticket_event(ticket, 5, TicketFollowersChanged(previous=("a-6", "a-7"),
                                                       followers=("a-7",), changed_by=agent)),
    )  # fmt: skip
    asked = CustomerReplied(message_id=uuid4(), customer_id="c-1", body="Any news?",
                            channel=Channel.EMAIL)  # fmt: skip
    reply = ticket_event(ticket, 6, asked)
    await rig.publish(reply)
    assert set(await states(rig, reply.event_id)) == {"agent:a-8", "agent:a-7"}
