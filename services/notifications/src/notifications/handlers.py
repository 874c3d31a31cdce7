"""The consumer that decides what to send, and the timers that send it.

Deciding and sending are apart on purpose. The consumer only records, in the batch's
transaction with its inbox rows, one delivery per (event, recipient, channel) and a timer
for it: no network, no personal data opened, so a month-start spike is decided at the
database's pace and a redelivered batch adds nothing. The timers of each lane are fired by
a scheduler of their own (bootstrap: urgent and bulk); a firing opens the personal fields
with the subjects' keys (a replica of ticketing's), renders, sends, and records each
outcome in the transaction that consumed the timer. A failure is never raised out of a
batch (the scheduler would fire the delivered ones again): each delivery is retried, or
given up, on its own.

Exactly once in effect, at least once on the wire: a crash between the SMTP server's
"250 OK" and the commit sends that message again, with the same Message-ID and
X-Helpdesk-Delivery-Id, so receivers can drop the copy.
"""

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic_core import from_json

from helpdesk_contracts import (
    ResponseSent,
    SurveyKind,
    SurveyRequested,
    TicketOpened,
    TicketSolved,
)
from helpdesk_contracts.pii import ERASED
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.eventstore import Envelope
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys, open_documents
from helpdesk_runtime.timers import DueTimer, Timer, schedule_many
from notifications.domain.notices import REQUESTER, Lane, Notice, customer, delivery_id, notices_for
from notifications.domain.retries import Backoff, Failure
from notifications.email import Failed, Mail, MailIdentity, SmtpChannel, build_message
from notifications.rendering import TemplateBrokenError, Templates

log = get_logger(__name__)

DELIVER = {Lane.URGENT: "deliver-urgent", Lane.BULK: "deliver-bulk"}
"""The timer kind of each lane; each is fired by a scheduler of its own."""

ACCEPTS = frozenset({TicketOpened.event_type, ResponseSent.event_type, TicketSolved.event_type})
SURVEY_ACCEPTS = frozenset({SurveyRequested.event_type})

KEY_WAIT_S = 2.0
"""A sealed field whose key has not reached our replica yet (a first-time customer's key
and their ticket's events travel on different topics): tried again this soon, not counted
as a failed attempt, for up to KEY_WAIT_LIMIT."""
KEY_WAIT_LIMIT = timedelta(hours=1)

SURVEY_LABELS = {
    SurveyKind.CSAT: {"en": ["Awful", "Bad", "OK", "Good", "Great"],
                      "ru": ["Ужасно", "Плохо", "Нормально", "Хорошо", "Отлично"]},
}  # fmt: skip


@dataclass
class Notifier:
    """The service's two handlers and what they need (wired in bootstrap)."""

    keys: SubjectKeys
    templates: Templates
    channel: SmtpChannel
    identity: MailIdentity
    backoff: Backoff
    clock: Callable[[], datetime]
    stale_after: timedelta = timedelta(days=1)
    """An event older than this when read notifies no one: a service deployed onto years of
    history, or back from a long outage, must not mail every customer about old tickets."""
    rng: random.Random = field(default_factory=random.Random)

    # -- deciding (the consumers) ---------------------------------------------------------

    async def record_notices(self, conn: Connection, events: Sequence[Envelope]) -> list[Rejection]:
        """Keep the tickets' openings and record one delivery (and its timer) per notice."""
        await _keep_openings(conn, [e for e in events if isinstance(e.payload, TicketOpened)])
        now = self.clock()
        fresh = [e for e in events if now - e.occurred_at <= self.stale_after]
        if len(fresh) < len(events):
            log.info("no notices for old events", events=len(events) - len(fresh),
                     stale_after_s=self.stale_after.total_seconds())  # fmt: skip
        wanted = [(e, n) for e in fresh for n in notices_for(e.payload, _ticket_of(e))]
        requesters = await _requesters(
            conn, {(e.tenant_id, n.ticket_id) for e, n in wanted if n.recipient == REQUESTER}
        )
        rows: list[tuple[Any, ...]] = []
        for envelope, notice in wanted:
            recipient = notice.recipient
            if recipient == REQUESTER:
                about = notice.ticket_id
                requester = requesters.get((envelope.tenant_id, about)) if about else None
                if requester is None:  # opened before this service read the topic
                    log.info("no notice: ticket unknown here", event_id=str(envelope.event_id),
                             event_type=envelope.event_type)  # fmt: skip
                    continue
                recipient = customer(requester)
            rows.append(_delivery_row(envelope, notice, recipient, now))
        created = await _insert_deliveries(conn, rows)
        await schedule_many(conn, [
            Timer(DELIVER[Lane(lane)], str(d), tenant, now, {}) for tenant, d, lane in created
        ])  # fmt: skip
        return []

    # -- sending (the timers) ---------------------------------------------------------------

    async def deliver(self, conn: Connection, timers: Sequence[DueTimer]) -> None:
        """Send the deliveries these timers name; record each outcome, retry or give up."""
        rows = await conn.fetch(_PENDING, [t.tenant_id for t in timers],
                                [UUID(t.key) for t in timers])  # fmt: skip
        if not rows:
            return
        opened = await _open(conn, rows, self.keys)
        now = self.clock()
        outcomes: dict[UUID, Outcome] = {}
        mails: list[Mail] = []
        for row, (event, opening) in zip(rows, opened, strict=True):
            prepared = await self._prepare(conn, row, event, opening, now)
            if isinstance(prepared, Mail):
                mails.append(prepared)
            else:
                outcomes[row["delivery_id"]] = prepared
        if mails:
            results = await self.channel.send_many([build_message(self.identity, m) for m in mails])
            for mail, result in zip(mails, results, strict=True):
                outcomes[mail.delivery_id] = (
                    Outcome("sent", result.detail)
                    if not isinstance(result, Failed)
                    else Outcome(result.failure.value, result.detail)
                )
        await self._record(conn, rows, outcomes, now)

    async def _prepare(
        self, conn: Connection, row: Any, event: Envelope, opening: Envelope | None, now: datetime
    ) -> "Mail | Outcome":
        kind, _, subject = row["recipient"].partition(":")
        address = _address(kind, subject, opening)
        if address is None:
            return Outcome(
                Failure.PERMANENT.value, f"no email address known for {row['recipient']}"
            )
        if address == ERASED:
            if subject in await self.keys.destroyed(conn, row["tenant_id"], [subject]):
                return Outcome("cancelled", "the recipient's personal data was erased")
            if now - row["created_at"] < KEY_WAIT_LIMIT:
                return Outcome("wait", "the recipient's key has not arrived yet")
            return Outcome(Failure.TEMPORARY.value, "the recipient's key has not arrived yet")
        context = _context(event, opening, self.identity.from_name)
        try:
            rendered = self.templates.render(row["template"], _language(event, opening), context)
        except TemplateBrokenError as exc:
            return Outcome(Failure.PERMANENT.value, str(exc)[:2000])
        return Mail(
            delivery_id=row["delivery_id"], tenant_id=row["tenant_id"], to=address,
            rendered=rendered, ticket_id=row["ticket_id"], sent_at=now,
            auto_submitted=_AUTO_SUBMITTED.get(row["template"], "auto-generated"),
        )  # fmt: skip

    async def _record(
        self, conn: Connection, rows: Sequence[Any], outcomes: dict[UUID, "Outcome"], now: datetime
    ) -> None:
        retries: list[Timer] = []
        updates: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        for row in rows:
            outcome = outcomes[row["delivery_id"]]
            tenant, delivery, lane = row["tenant_id"], row["delivery_id"], Lane(row["lane"])
            if outcome.kind == "wait":
                retries.append(Timer(DELIVER[lane], str(delivery), tenant,
                                     now + timedelta(seconds=KEY_WAIT_S), {}))  # fmt: skip
                continue
            attempt = row["attempts"] + 1
            state = {"sent": "sent", "cancelled": "cancelled", "permanent": "dead"}.get(
                outcome.kind, "pending"
            )
            if outcome.kind == Failure.TEMPORARY.value:
                delay = self.backoff.next_delay_s(attempt - row["redriven_at_attempt"], self.rng)
                if delay is None:
                    state = "dead"
                    outcome = Outcome(
                        outcome.kind, f"gave up after {attempt} attempts: {outcome.detail}"
                    )
                else:
                    retries.append(Timer(DELIVER[lane], str(delivery), tenant,
                                         now + timedelta(seconds=delay), {}))  # fmt: skip
            if state == "dead":
                log.warning("delivery failed for good", delivery_id=str(delivery),
                            tenant_id=tenant, error=outcome.detail)  # fmt: skip
            sent = state == "sent"
            error = None if sent else outcome.detail
            updates.append((tenant, delivery, state, attempt, error, now if sent else None))
            attempts.append((tenant, delivery, attempt, now, outcome.kind, outcome.detail[:2000]))
        if updates:
            await conn.execute(_UPDATE, *(list(c) for c in zip(*updates, strict=True)))
            await conn.execute(_ATTEMPTS, *(list(c) for c in zip(*attempts, strict=True)))
        await schedule_many(conn, retries)


@dataclass(frozen=True)
class Outcome:
    kind: str  # sent | temporary | permanent | cancelled | wait
    detail: str


_AUTO_SUBMITTED = {"ticket_opened": "auto-replied", "agent_replied": None}


def _ticket_of(envelope: Envelope) -> UUID | None:
    if isinstance(envelope.payload, SurveyRequested):
        return envelope.payload.ticket_id
    return envelope.aggregate_id


def _delivery_row(
    envelope: Envelope, notice: Notice, recipient: str, now: datetime
) -> tuple[Any, ...]:
    return (
        envelope.tenant_id, delivery_id(envelope.event_id, recipient, notice.channel),
        envelope.event_id, envelope.event_type, envelope.to_json().decode(), notice.ticket_id,
        recipient, notice.channel.value, notice.template, notice.lane.value,
        notice.transactional, now,
    )  # fmt: skip


async def _keep_openings(conn: Connection, openings: Sequence[Envelope]) -> None:
    if not openings:
        return
    await conn.execute(
        "INSERT INTO tickets (tenant_id, ticket_id, number, requester_id, opening)"
        " SELECT * FROM unnest($1::text[], $2::uuid[], $3::bigint[], $4::text[], $5::jsonb[])"
        " ON CONFLICT (tenant_id, ticket_id) DO NOTHING",
        [e.tenant_id for e in openings], [e.aggregate_id for e in openings],
        [e.payload.number for e in openings],
        [e.payload.requester.customer_id for e in openings],
        [e.to_json().decode() for e in openings],
    )  # fmt: skip


async def _requesters(
    conn: Connection, tickets: set[tuple[str, UUID | None]]
) -> dict[tuple[str, UUID], str]:
    known = [(t, k) for t, k in tickets if k is not None]
    if not known:
        return {}
    rows = await conn.fetch(
        "SELECT t.tenant_id, t.ticket_id, t.requester_id FROM tickets t"
        " JOIN unnest($1::text[], $2::uuid[]) AS x(n, k)"
        " ON t.tenant_id = x.n AND t.ticket_id = x.k",
        [t for t, _ in known], [k for _, k in known],
    )  # fmt: skip
    return {(r["tenant_id"], r["ticket_id"]): r["requester_id"] for r in rows}


async def _insert_deliveries(
    conn: Connection, rows: list[tuple[Any, ...]]
) -> list[tuple[str, UUID, str]]:
    if not rows:
        return []
    created = await conn.fetch(
        """
        INSERT INTO deliveries (tenant_id, delivery_id, event_id, event_type, event, ticket_id,
            recipient, channel, template, lane, transactional, created_at)
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[],
            $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[],
            $12::timestamptz[])
        ON CONFLICT (tenant_id, delivery_id) DO NOTHING
        RETURNING tenant_id, delivery_id, lane
        """,
        *(list(c) for c in zip(*rows, strict=True)),
    )
    return [(r["tenant_id"], r["delivery_id"], r["lane"]) for r in created]


async def _open(
    conn: Connection, rows: Sequence[Any], keys: SubjectKeys
) -> list[tuple[Envelope, Envelope | None]]:
    """Each delivery's event and its ticket's opening, personal fields opened."""
    documents = [from_json(r["event"]) for r in rows]
    openings = [
        (i, from_json(r["opening"])) for i, r in enumerate(rows) if r["opening"] is not None
    ]
    opened = await open_documents(conn, documents + [d for _, d in openings], keys)
    events, rest = opened[: len(rows)], opened[len(rows) :]
    by_row: dict[int, Envelope] = {i: e for (i, _), e in zip(openings, rest, strict=True)}
    return [(event, by_row.get(i)) for i, event in enumerate(events)]


def _address(kind: str, subject: str, opening: Envelope | None) -> str | None:
    if kind == "customer" and opening is not None:
        requester = opening.payload.requester
        if requester.customer_id == subject:
            return str(requester.email) if requester.email else None
    return None


def _language(event: Envelope, opening: Envelope | None) -> str | None:
    if isinstance(event.payload, SurveyRequested) and event.payload.language:
        return event.payload.language
    return opening.payload.requester.language if opening is not None else None


def _context(event: Envelope, opening: Envelope | None, sender: str) -> dict[str, Any]:
    """What templates see: `ticket`, `requester`, `message`, `resolution`, `survey`, `sender`."""
    context: dict[str, Any] = {"sender": sender, "ticket": None, "requester": None}
    if opening is not None:
        o = opening.payload
        context["ticket"] = {
            "number": o.number, "subject": o.subject, "id": str(opening.aggregate_id),
            "priority": o.priority.value,
        }  # fmt: skip
        context["requester"] = {"name": o.requester.name, "id": o.requester.customer_id}
    p = event.payload
    if isinstance(p, ResponseSent):
        context["message"] = {"body": p.body}
    if isinstance(p, TicketSolved):
        context["resolution"] = p.resolution
    if isinstance(p, SurveyRequested):
        language = (_language(event, opening) or "en").split("-")[0]
        low, high = {SurveyKind.CSAT: (1, 5), SurveyKind.NPS: (0, 10), SurveyKind.CES: (1, 7)}[
            p.survey
        ]
        labels = SURVEY_LABELS.get(p.survey, {}).get(language) or [
            str(s) for s in range(low, high + 1)
        ]
        separator = "&" if "?" in p.answer_url else "?"
        context["survey"] = {
            "kind": p.survey.value,
            "links": [(label, f"{p.answer_url}{separator}score={score}")
                      for score, label in zip(range(low, high + 1), labels, strict=False)],
            "expires_at": p.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }  # fmt: skip
    return context


_PENDING = """
    SELECT d.tenant_id, d.delivery_id, d.event::text AS event, d.ticket_id, d.recipient,
           d.template, d.lane, d.attempts, d.redriven_at_attempt, d.created_at,
           t.opening::text AS opening
    FROM unnest($1::text[], $2::uuid[]) AS x(n, k)
    JOIN deliveries d ON d.tenant_id = x.n AND d.delivery_id = x.k AND d.state = 'pending'
    LEFT JOIN tickets t ON t.tenant_id = d.tenant_id AND t.ticket_id = d.ticket_id
    ORDER BY d.created_at
"""

_UPDATE = """
    UPDATE deliveries d SET state = x.s, attempts = x.a, last_error = x.e, sent_at = x.t
    FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::timestamptz[])
        AS x(n, k, s, a, e, t)
    WHERE d.tenant_id = x.n AND d.delivery_id = x.k
"""

_ATTEMPTS = """
    INSERT INTO delivery_attempts (tenant_id, delivery_id, attempt, at, outcome, detail)
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::int[], $4::timestamptz[], $5::text[],
        $6::text[])
    ON CONFLICT DO NOTHING
"""
