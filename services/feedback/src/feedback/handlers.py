"""The feedback service's entry points into its domain, each in the caller's transaction:

- a batch of ticket events: each ticket's facts folded, a survey timer set when one is solved;
- survey timers: the invitation decided (domain/surveys.py), `SurveyRequested` published;
- a batch of answers (`FeedbackReceived` from other systems, or our own page's): each
  recorded once, checked against its invitation, bad ones flagged
  (`NegativeFeedbackFlagged`);
- the directory: an erased customer's comments blanked.

Events go out through the outbox, in the same transaction as what caused them.
"""

import asyncio
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg

from feedback import store
from feedback.domain.health import dropped, health_of
from feedback.domain.surveys import (
    Skip,
    SurveySettings,
    TicketFacts,
    credited_agent,
    decide,
    due_at,
    is_negative,
    scale,
)
from feedback.domain.tickets import FOLDED, apply, opened
from feedback.tokens import Links, SurveyLink
from helpdesk_contracts import (
    TOPICS,
    CustomerAtRisk,
    CustomerErased,
    CustomerMerged,
    CustomerReplied,
    EventEnvelope,
    FeedbackReceived,
    NegativeFeedbackFlagged,
    SlaAchieved,
    SlaBreached,
    SlaClockCancelled,
    SlaClockStarted,
    SlaClockStopped,
    SlaVerdictRevised,
    SurveyKind,
    SurveyRequested,
    TicketOpened,
    TicketReopened,
    TicketSolved,
)
from helpdesk_runtime import outbox, timers
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.timers import DueTimer, Timer

log = get_logger(__name__)

PRODUCER = "feedback"
INVITE = "survey-invitation"
"""The timer kind: one per solved ticket, at the survey's delay after the solve."""
TICKETS_ACCEPTS = FOLDED
RECEIVED_ACCEPTS = frozenset({FeedbackReceived.event_type})
DIRECTORY_ACCEPTS = frozenset({CustomerErased.event_type, CustomerMerged.event_type})
SLA_ACCEPTS = frozenset(e.event_type for e in TOPICS["sla.events.v1"].event_types)
HEALTH_CHUNK = 200
"""Customers evaluated per transaction of the health job."""
HEALTH_STALE_AFTER = timedelta(days=1)
"""A customer nothing happened to is evaluated again after this: its windows move on."""
_CONTACT = (TicketOpened, TicketReopened, CustomerReplied)
"""Ticket events that change a customer's health signals."""


class FeedbackHandlers:
    """Wired once, in bootstrap."""

    def __init__(self, links: Links, page_url: str, clock: Callable[[], datetime]) -> None:
        self.links = links
        self._page_url = page_url.rstrip("/")
        self._clock = clock

    def answer_url(self, link: SurveyLink) -> str:
        return f"{self._page_url}/surveys/{self.links.token(link)}"

    async def ticket_events(
        self, conn: Connection, received: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        """Fold a batch of ticket events (each ticket's in order) into the tickets' facts."""
        keys = {(e.tenant_id, e.aggregate_id) for e in received if e.aggregate_id is not None}
        tickets = await store.tickets(conn, keys)
        # Each ticket solved, with the solve's event: the survey continues its trace.
        solved: dict[tuple[str, UUID], tuple[TicketFacts, UUID]] = {}
        for envelope in received:
            assert envelope.aggregate_id is not None  # ticket events require it (contracts)
            key = (envelope.tenant_id, envelope.aggregate_id)
            if isinstance(envelope.payload, TicketOpened):
                tickets.setdefault(key, opened(envelope))  # opened twice (a replay): the first
                continue
            ticket = tickets.get(key)
            if ticket is None:
                # Opened before this service read the topic (or before retention): nothing to
                # survey or to file scores by.
                continue
            apply(ticket, envelope)
            if isinstance(envelope.payload, TicketSolved):
                solved[key] = (ticket, envelope.event_id)
        await store.save_tickets(conn, [t for t in tickets.values() if t.changed])
        await store.mark_due(conn, {
            (t.tenant_id, t.customer_id) for e in received if isinstance(e.payload, _CONTACT)
            if (t := tickets.get((e.tenant_id, e.aggregate_id))) is not None  # type: ignore[arg-type]
        })  # fmt: skip
        if solved:
            rules = await store.settings(conn, {t for t, _ in solved})
            await timers.schedule_many(conn, [
                Timer(INVITE, str(t.ticket_id), t.tenant_id,
                      due_at(t.solved_at, rules[t.tenant_id]), {}, cause=solve)
                for t, solve in solved.values()
                if t.solved_at is not None and rules[t.tenant_id].enabled
            ])  # fmt: skip
        return []

    async def invite(self, conn: Connection, due: Sequence[DueTimer]) -> None:
        """The surveys now due: decide each, record the decision, publish the invitations."""
        keys = [(t.tenant_id, UUID(t.key)) for t in due]
        done = await store.decided(conn, keys)
        pending = [t for k, t in (await store.tickets(conn, keys)).items() if k not in done]
        rules = await store.settings(conn, {t.tenant_id for t in pending})
        last = await store.last_invited(conn, {(t.tenant_id, t.customer_id) for t in pending})
        now = self._clock()
        rows: list[tuple[Any, ...]] = []
        published: list[EventEnvelope[Any]] = []
        for ticket in pending:
            customer = (ticket.tenant_id, ticket.customer_id)
            decision = decide(ticket, rules[ticket.tenant_id], last.get(customer), now)
            if decision is Skip.NOT_SOLVED:
                continue  # reopened meanwhile: its next solve sets the timer again
            if isinstance(decision, Skip):
                rows.append((ticket.tenant_id, ticket.ticket_id, ticket.number, now,
                             decision.name.lower(),
                             None, ticket.customer_id, None, None, ticket.group_id,
                             ticket.channel, ticket.priority, ticket.language, None))  # fmt: skip
                continue
            survey_id = uuid4()
            last[customer] = now  # the customer's other tickets in this batch wait their turn
            link = SurveyLink(ticket.tenant_id, survey_id, decision.expires_at)
            rows.append((ticket.tenant_id, ticket.ticket_id, ticket.number, now, None, survey_id,
                         ticket.customer_id, decision.survey.value, decision.agent_id,
                         decision.group_id, ticket.channel, ticket.priority, ticket.language,
                         decision.expires_at))  # fmt: skip
            request = SurveyRequested(
                survey_id=survey_id, ticket_id=ticket.ticket_id, ticket_number=ticket.number,
                customer_id=ticket.customer_id, survey=decision.survey,
                answer_url=self.answer_url(link), expires_at=decision.expires_at,
                channel=decision.channel, language=ticket.language, agent_id=decision.agent_id,
                scale=scale(decision.survey, rules[ticket.tenant_id]),
            )  # fmt: skip
            published.append(
                EventEnvelope.new(
                    request, tenant_id=ticket.tenant_id, producer=PRODUCER, occurred_at=now
                )
            )
        await store.save_invitations(conn, rows)
        await outbox.put(conn, published)

    async def answers(
        self, conn: Connection, received: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        """Record answers once each (by feedback id): an answer already recorded (our own
        page's, coming back from the topic; a redelivery) is skipped before any check."""
        batch = [e for e in received if isinstance(e.payload, FeedbackReceived)]
        known = await store.answers(conn, {(e.tenant_id, e.payload.feedback_id) for e in batch})
        batch = [e for e in batch if (e.tenant_id, e.payload.feedback_id) not in known]
        if not batch:
            return []
        invitations = await store.invitations(conn, {
            (e.tenant_id, e.payload.survey_id) for e in batch if e.payload.survey_id
        })  # fmt: skip
        tickets = await store.tickets(conn, {
            (e.tenant_id, t) for e in batch
            if (t := e.payload.ticket_id or _ticket_of(invitations, e)) is not None
        })  # fmt: skip
        earlier = await store.answers(conn, {
            (e.tenant_id, e.payload.replaces) for e in batch if e.payload.replaces
        })  # fmt: skip
        rules = await store.settings(conn, {e.tenant_id for e in batch})
        rows: list[dict[str, Any]] = []
        rejected: list[Rejection] = []
        for envelope in batch:
            p = envelope.payload
            invitation = invitations.get((envelope.tenant_id, p.survey_id))
            refusal = _refusal(p, invitation, earlier.get((envelope.tenant_id, p.replaces)),
                               envelope.occurred_at)  # fmt: skip
            if refusal:
                rejected.append(Rejection(envelope.event_id, refusal))
                continue
            ticket_id = p.ticket_id or (invitation["ticket_id"] if invitation else None)
            ticket = tickets.get((envelope.tenant_id, ticket_id)) if ticket_id else None
            rows.append(_answer_row(envelope, invitation, ticket, rules[envelope.tenant_id]))
        inserted = await store.insert_answers(conn, rows)
        new = [row for row in rows if row["feedback_id"] in inserted]
        await store.mark_replaced(conn, [
            (r["tenant_id"], r["replaces"], r["feedback_id"]) for r in new if r["replaces"]
        ])  # fmt: skip
        await store.mark_answered(conn, [
            (r["tenant_id"], r["survey_id"], r["feedback_id"], r["answered_at"])
            for r in new if r["survey_id"]
        ])  # fmt: skip
        await self._flag(conn, new, rules, tickets)
        await store.mark_due(conn, {(r["tenant_id"], r["customer_id"]) for r in new})
        return rejected

    async def _flag(
        self, conn: Connection, answers: Sequence[dict[str, Any]],
        rules: dict[str, SurveySettings], tickets: dict[tuple[str, UUID], TicketFacts],
    ) -> None:  # fmt: skip
        bad = [
            a for a in answers
            if is_negative(SurveyKind(a["survey"]), a["score"], rules[a["tenant_id"]])
        ]  # fmt: skip
        if not bad:
            return
        now = self._clock()
        flags = {uuid4(): a for a in bad}
        raised = await store.insert_flags(conn, [
            (a["tenant_id"], flag_id, a["survey_id"] or a["feedback_id"], a["feedback_id"],
             a["ticket_id"], a["customer_id"], a["survey"], a["score"],
             rules[a["tenant_id"]].threshold(SurveyKind(a["survey"])), a["reason"],
             a["agent_id"], a["group_id"], now, a["organisation_id"])
            for flag_id, a in flags.items()
        ])  # fmt: skip
        published = []
        for flag_id in raised:
            a = flags[flag_id]
            settings = rules[a["tenant_id"]]
            ticket = tickets.get((a["tenant_id"], a["ticket_id"])) if a["ticket_id"] else None
            threshold = settings.threshold(SurveyKind(a["survey"]))
            assert threshold is not None  # it was flagged by it
            flag = NegativeFeedbackFlagged(
                flag_id=flag_id, feedback_id=a["feedback_id"], ticket_id=a["ticket_id"],
                ticket_number=ticket.number if ticket else None, customer_id=a["customer_id"],
                organisation_id=a["organisation_id"],
                account_manager_id=ticket.account_manager_id if ticket else None,
                agent_id=a["agent_id"], group_id=a["group_id"], survey=SurveyKind(a["survey"]),
                score=a["score"], threshold=threshold, reason=a["reason"],
                reopen=settings.reopen_on_negative and ticket is not None
                and ticket.status == "solved",
            )  # fmt: skip
            published.append(EventEnvelope.new(flag, tenant_id=a["tenant_id"],
                                               producer=PRODUCER, occurred_at=now))  # fmt: skip
            log.info("bad feedback flagged", flag_id=str(flag_id), survey=a["survey"],
                     score=a["score"], tenant_id=a["tenant_id"])  # fmt: skip
        await outbox.put(conn, published)

    async def sla_events(
        self, conn: Connection, received: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        """Keep each SLA clock's verdict and elapsed time; a breach (or a revised verdict)
        moves its customer's health."""
        rows = [row for e in received if (row := _clock_row(e)) is not None]
        await store.save_clocks(conn, rows)
        judged = {(r["tenant_id"], r["ticket_id"]) for r in rows if r["verdict"] is not None}
        await store.mark_due(conn, await store.customers_of(conn, judged))
        return []

    async def evaluate_health(self, conn: Connection, limit: int = HEALTH_CHUNK) -> int:
        """Evaluate a chunk of the customers due; publish CustomerAtRisk for each that fell
        below its tenant's threshold (once per drop). How many were evaluated."""
        due = await store.take_due(conn, limit)
        if not due:
            return 0
        now = self._clock()
        found = await store.signals(conn, "customer", due, now)
        rules = await store.settings(conn, {t for t, _ in due})
        before = await store.previous_health(conn, due)
        rows: list[tuple[Any, ...]] = []
        published: list[EventEnvelope[Any]] = []
        for key in due:
            tenant_id, customer_id = key
            seen = found[key]
            health = health_of(seen.signals, now)
            threshold = rules[tenant_id].at_risk_below
            previous = before.get(key)
            at_risk, publish = dropped(bool(previous and previous[1]), health.score, threshold)
            reasons = json.dumps([r.model_dump(mode="json") for r in health.reasons])
            rows.append((tenant_id, customer_id, seen.organisation_id, health.score, reasons,
                         at_risk, now))  # fmt: skip
            if publish:
                risk = CustomerAtRisk(
                    customer_id=customer_id, organisation_id=seen.organisation_id,
                    account_manager_id=seen.account_manager_id, health=health.score,
                    previous_health=previous[0] if previous else None, threshold=threshold,
                    reasons=health.reasons,
                )  # fmt: skip
                published.append(EventEnvelope.new(risk, tenant_id=tenant_id, producer=PRODUCER,
                                                   occurred_at=now))  # fmt: skip
                log.info("customer at risk", tenant_id=tenant_id, health=health.score,
                         reasons=[r.code for r in health.reasons])  # fmt: skip
        await store.save_health(conn, rows)
        await outbox.put(conn, published)
        return len(due)

    async def health_job(self, pool: asyncpg.Pool, idle_s: float = 1.0) -> None:
        """The health job: works through the queue of customers due, and once a while
        queues those evaluated more than HEALTH_STALE_AFTER ago. Replicas share the work."""
        restaled = self._clock() - HEALTH_STALE_AFTER
        while True:
            async with pool.acquire() as conn, conn.transaction():
                evaluated = await self.evaluate_health(conn)
                if not evaluated and self._clock() - restaled > timedelta(hours=1):
                    restaled = self._clock()
                    await store.mark_stale(conn, restaled - HEALTH_STALE_AFTER)
            if not evaluated:
                await asyncio.sleep(idle_s)  # a queue in a table: nothing to wait on but time

    async def directory(
        self, conn: Connection, received: Sequence[EventEnvelope[Any]]
    ) -> list[Rejection]:
        """An erased customer's comments are blanked (their scores stay: CustomerErased); a
        merged duplicate's history counts for the customer it became part of."""
        for envelope in received:
            p, tenant_id = envelope.payload, envelope.tenant_id
            if isinstance(p, CustomerErased):
                await store.blank_comments(conn, tenant_id, p.erased_subjects)
            elif isinstance(p, CustomerMerged):
                await store.merge_customer(conn, tenant_id, p.customer_id, p.into_customer_id)
                await store.mark_due(conn, [(tenant_id, p.into_customer_id)])
        return []


def _ticket_of(invitations: dict[Any, Any], envelope: EventEnvelope[Any]) -> UUID | None:
    invitation = invitations.get((envelope.tenant_id, envelope.payload.survey_id))
    return invitation["ticket_id"] if invitation is not None else None


def _refusal(answer: FeedbackReceived, invitation: Any, earlier: Any, at: datetime) -> str | None:
    """Why an answer cannot be recorded (it goes to the dead letters with this reason)."""
    if answer.survey_id is not None:
        if invitation is None:
            return f"survey {answer.survey_id} was never sent by this tenant"
        if invitation["customer_id"] != answer.customer_id:
            return f"survey {answer.survey_id} was sent to another customer"
        if invitation["survey"] != answer.survey.value:
            return f"survey {answer.survey_id} is a {invitation['survey']} survey"
        if answer.ticket_id is not None and answer.ticket_id != invitation["ticket_id"]:
            return f"survey {answer.survey_id} is about another ticket"
        if at > invitation["expires_at"]:
            return f"survey {answer.survey_id} closed at {invitation['expires_at'].isoformat()}"
    if answer.replaces is not None and (
        earlier is None
        or earlier["customer_id"] != answer.customer_id
        or earlier["survey_id"] != answer.survey_id
    ):
        return f"answer {answer.replaces} is not an earlier answer to the same survey"
    return None


def _answer_row(
    envelope: EventEnvelope[FeedbackReceived], invitation: Any, ticket: TicketFacts | None,
    settings: SurveySettings,
) -> dict[str, Any]:  # fmt: skip
    """The answer, filed by the dimensions of its invitation (else its ticket, else what the
    publisher said), so scores group without joins."""
    p = envelope.payload
    if invitation is not None:
        agent_id, group_id = invitation["agent_id"], invitation["group_id"]
    elif ticket is not None:
        agent_id = p.agent_id or credited_agent(ticket, settings.credit)
        group_id = ticket.group_id
    else:
        agent_id, group_id = p.agent_id, None
    return {
        "tenant_id": envelope.tenant_id, "feedback_id": p.feedback_id, "survey_id": p.survey_id,
        "ticket_id": p.ticket_id or (invitation["ticket_id"] if invitation else None),
        "customer_id": p.customer_id, "survey": p.survey.value, "score": p.score,
        "reason": p.reason, "comment": p.comment, "agent_id": agent_id, "group_id": group_id,
        "channel": ticket.channel if ticket else None,
        "priority": ticket.priority if ticket else None,
        "organisation_id": ticket.organisation_id if ticket else None,
        "source": p.source, "answered_at": envelope.occurred_at, "replaces": p.replaces,
    }  # fmt: skip


def _clock_row(envelope: EventEnvelope[Any]) -> dict[str, Any] | None:
    """What an SLA event says of its clock (None: unchanged), or None for an event that says
    nothing this service keeps (warnings, pauses)."""
    p = envelope.payload
    row: dict[str, Any] = {
        "tenant_id": envelope.tenant_id, "clock_id": getattr(p, "clock_id", None),
        "ticket_id": getattr(p, "ticket_id", None), "metric": getattr(p, "metric", None),
        "verdict": None, "elapsed_seconds": None, "decided_at": None, "assignee_id": None,
        "group_id": None,
    }  # fmt: skip
    match p:
        case SlaClockStarted():
            pass
        case SlaBreached():
            row |= {"verdict": "breached", "decided_at": p.deadline,
                    "assignee_id": p.assignee_id, "group_id": p.group_id}  # fmt: skip
        case SlaAchieved():
            row |= {"verdict": "achieved", "decided_at": p.achieved_at,
                    "elapsed_seconds": p.elapsed_seconds}  # fmt: skip
        case SlaClockStopped():
            row |= {"elapsed_seconds": p.elapsed_seconds}
        case SlaVerdictRevised():
            row |= {"verdict": p.verdict.value, "decided_at": p.decided_at}
        case SlaClockCancelled():
            row |= {"verdict": "none"}
        case _:
            return None
    row["metric"] = row["metric"].value
    return row
