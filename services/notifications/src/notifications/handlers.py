"""The consumers that decide what to send, and the timers that send it.

Deciding and sending are apart on purpose. A consumer only records, in the batch's
transaction with its inbox rows, one delivery per (event, recipient, channel) and a timer
for it: no network and no personal data opened, so a month-start spike is decided at the
database's pace and a redelivered batch adds nothing. The rules (domain/notices.py) say who
hears of an event; each person's preferences (domain/preferences.py) say through what and
when. A person who opted out, or cannot be reached, gets a cancelled delivery with the
reason, so the log says why nothing was sent.

The timers of each lane are fired by a scheduler of their own (bootstrap: urgent, bulk). A
firing opens the personal fields with the subjects' keys (a replica of ticketing's),
renders, sends through each channel at once, and records every outcome in the transaction
that consumed the timer. A failure is never raised out of a batch (the scheduler would fire
the delivered ones again): each delivery is retried, or given up, on its own.

Exactly once in effect, at least once on the wire: a crash between a provider's "OK" and
the commit sends that message again, with the same delivery id, so receivers can drop it.
"""

import asyncio
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from prometheus_client import Counter
from pydantic_core import from_json

from helpdesk_contracts import (
    SCORE_RANGES,
    ContactKind,
    CustomerAtRisk,
    CustomerReplied,
    NegativeFeedbackFlagged,
    ResponseSent,
    SlaBreached,
    SlaWarning,
    SurveyKind,
    SurveyRequested,
    TicketAssigned,
    TicketOpened,
    TicketSolved,
)
from helpdesk_contracts.pii import ERASED
from helpdesk_runtime import trace
from helpdesk_runtime.consumer import Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.eventstore import Envelope
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys, open_documents
from helpdesk_runtime.telemetry import SpanKind, Tracer, ended
from helpdesk_runtime.timers import DueTimer, Timer, schedule_many
from notifications import store
from notifications.channels import Failed, Outgoing, Sender
from notifications.domain.notices import (
    WITHOUT_TICKET,
    Lane,
    Rule,
    Situation,
    TicketFacts,
    delivery_id,
    group_of,
)
from notifications.domain.notices import recipients as audience_of
from notifications.domain.planning import plan
from notifications.domain.preferences import Channel, Preferences
from notifications.domain.retries import Backoff, Failure
from notifications.inbound import address_hash
from notifications.rendering import Customs, TemplateBrokenError, Templates
from notifications.unsubscribe import OptOut

log = get_logger(__name__)

DELIVER = {Lane.URGENT: "deliver-urgent", Lane.BULK: "deliver-bulk"}
"""The timer kind of each lane; each is fired by a scheduler of its own."""

ACCEPTS = frozenset({TicketOpened.event_type, ResponseSent.event_type, TicketSolved.event_type,
                     TicketAssigned.event_type, CustomerReplied.event_type,
                     *(e.event_type for e in store.FACT_EVENTS)})  # fmt: skip
SURVEY_ACCEPTS = frozenset({SurveyRequested.event_type})
DIRECTORY_ACCEPTS = frozenset(e.event_type for e in store.DIRECTORY_EVENTS)
SLA_ACCEPTS = frozenset({SlaWarning.event_type, SlaBreached.event_type})
FEEDBACK_ACCEPTS = frozenset({NegativeFeedbackFlagged.event_type, CustomerAtRisk.event_type})

URGENT_BEHIND_S = 3.0
"""Bulk mail (survey invitations) is not even claimed while urgent messages are behind (due
for this long or more): the two lanes have schedulers of their own, and on the same cores
and providers the bulk lane gives way (`Notifier.bulk_may_fire`, the bulk lane's gate)."""

KEY_WAIT_S = 2.0
"""What a message needs has not arrived yet (a first-time customer's key, or a ticket's
opening, travel on other topics than what they are needed for): tried again this soon,
not counted as a failed attempt, for up to KEY_WAIT_LIMIT."""
KEY_WAIT_LIMIT = timedelta(hours=1)

SURVEY_LABELS = {
    SurveyKind.CSAT: {"en": ["Awful", "Bad", "OK", "Good", "Great"],
                      "ru": ["Ужасно", "Плохо", "Нормально", "Хорошо", "Отлично"]},
}  # fmt: skip
_AUTO_SUBMITTED: dict[str, str | None] = {"ticket_opened": "auto-replied", "agent_replied": None}


@dataclass(frozen=True)
class Outcome:
    kind: str  # sent | temporary | permanent | cancelled | wait
    detail: str


@dataclass
class Notifier:
    """The service's handlers and what they need (wired in bootstrap)."""

    keys: SubjectKeys
    templates: Templates
    senders: Mapping[str, Sender]
    """Channel name -> its sender."""
    backoff: Backoff
    clock: Callable[[], datetime]
    stale_after: timedelta = timedelta(days=1)
    """An event older than this when read notifies no one: a service deployed onto years of
    history, or back from a long outage, must not mail every customer about old tickets."""
    sender_name: str = "Support"
    unsubscribe_link: Callable[[OptOut], str] | None = None
    """The one-click unsubscribe URL of a message that is not transactional."""
    rng: random.Random = field(default_factory=random.Random)
    outcomes: Counter | None = None
    """helpdesk_notifications_deliveries_total{channel, outcome}, once a runtime registers it."""
    tracer: Tracer = field(default_factory=Tracer)
    """The runtime's: each message sent is a client span of the trace that caused it."""

    # -- deciding (the consumers) ---------------------------------------------------------

    async def record_notices(self, conn: Connection, events: Sequence[Envelope]) -> list[Rejection]:
        """Record one delivery (and its timer) per person each event's rule names."""
        # Each event's JSON once (it is kept with every delivery it makes, and the opening).
        documents = {e.event_id: e.to_json().decode() for e in events}
        await store.keep_tickets(conn, events, documents)
        await store.keep_customers(conn, events, documents)
        now = self.clock()
        fresh = [e for e in events if now - e.occurred_at <= self.stale_after]
        if len(fresh) < len(events):
            log.info("no notices for old events", events=len(events) - len(fresh),
                     stale_after_s=self.stale_after.total_seconds())  # fmt: skip
        tenants = {e.tenant_id for e in fresh}
        rules = await store.rules(conn, tenants) if tenants else {}
        wanted = [
            (e, r) for e in fresh
            if (r := rules[e.tenant_id].get(e.event_type)) is not None and r.enabled
        ]  # fmt: skip
        if not wanted:
            return []
        facts = await store.tickets(
            conn, {(e.tenant_id, t) for e, _ in wanted if (t := _ticket_of(e)) is not None}
        )
        latest = await store.latest_tickets(conn, {
            (e.tenant_id, e.payload.customer_id) for e, _ in wanted
            if isinstance(e.payload, CustomerAtRisk)
        })  # fmt: skip
        about = {e.event_id: _about(e, facts, latest) for e, _ in wanted}
        leads = await store.group_leads(conn, {
            (e.tenant_id, g) for e, _ in wanted
            if (g := group_of(e.payload, about[e.event_id])) is not None
        })  # fmt: skip
        people: list[tuple[Envelope, Rule, str, bool]] = []
        for envelope, rule in wanted:
            ticket = about[envelope.event_id]
            if ticket is None and envelope.event_type not in WITHOUT_TICKET:
                log.info("no notice: ticket unknown here", event_id=str(envelope.event_id),
                         event_type=envelope.event_type)  # fmt: skip
                continue
            situation = Situation(ticket, leads.get(envelope.tenant_id, {}))
            found = audience_of(rule, envelope.payload, situation)
            if not found and rule.escalation:
                log.info("escalation reaches no one", event_id=str(envelope.event_id),
                         event_type=envelope.event_type, tenant_id=envelope.tenant_id)  # fmt: skip
            # Nothing waits when the event's ticket is urgent: its own, not a customer's latest.
            urgent = (ticket is not None and ticket.priority == "urgent"
                      and not isinstance(envelope.payload, CustomerAtRisk))  # fmt: skip
            people += [(envelope, rule, person, urgent) for person in found]
        everyone = {(e.tenant_id, p) for e, _, p, _ in people}
        prefs = _with_directory(
            await store.preferences(conn, everyone),
            await store.directory_preferences(conn, everyone),
        )
        hours = await store.business_hours(conn, tenants)
        rows = []
        for envelope, rule, person, urgent in people:
            planned = plan(
                rule, person, prefs.get((envelope.tenant_id, person), Preferences()),
                urgent=urgent, now=now, hours=hours.get(envelope.tenant_id),
            )  # fmt: skip
            rows.append((
                envelope.tenant_id, delivery_id(envelope.event_id, person, planned.channel),
                envelope.event_id, envelope.event_type, documents[envelope.event_id],
                _ticket_of(envelope), person, planned.channel, rule.template, rule.lane.value,
                rule.transactional, now, "cancelled" if planned.skipped else "pending",
                planned.skipped, planned.due_at,
            ))  # fmt: skip
        created = await _insert_deliveries(conn, rows)
        await schedule_many(conn, [
            Timer(DELIVER[Lane(r["lane"])], str(r["delivery_id"]), r["tenant_id"],
                  r["scheduled_for"], {}, cause=r["event_id"])
            for r in created if r["state"] == "pending"
        ])  # fmt: skip
        return []

    # -- sending (the timers) ---------------------------------------------------------------

    async def bulk_may_fire(self, conn: Connection) -> bool:
        """The bulk lane's gate: survey mail waits while urgent messages are behind."""
        return not await _urgent_due(conn, self.clock())

    async def deliver(self, conn: Connection, timers: Sequence[DueTimer]) -> None:
        """Send the deliveries these timers name; record each outcome, retry or give up."""
        rows = await conn.fetch(_PENDING, [t.tenant_id for t in timers],
                                [UUID(t.key) for t in timers])  # fmt: skip
        if not rows:
            return
        opened = await _open(conn, rows, self.keys)
        customs = await store.templates(conn, {r["tenant_id"] for r in rows})
        now = self.clock()
        outcomes: dict[UUID, Outcome] = {}
        ready: list[tuple[str, Outgoing]] = []
        for row, (event, opening, profile) in zip(rows, opened, strict=True):
            custom = customs.get(row["tenant_id"], {})
            prepared = await self._prepare(conn, row, event, opening, profile, now, custom)
            if isinstance(prepared, Outgoing):
                ready.append((row["channel"], prepared))
            else:
                outcomes[row["delivery_id"]] = prepared
        mails = [o for c, o in ready if c == Channel.EMAIL]
        suppressed = await _suppressed(conn, mails)
        hashes = {m.delivery_id: address_hash(m.address) for m in mails}
        by_channel: dict[str, list[Outgoing]] = {}
        for channel, item in ready:
            if item.delivery_id in suppressed:
                outcomes[item.delivery_id] = Outcome("suppressed", suppressed[item.delivery_id])
            else:
                by_channel.setdefault(channel, []).append(item)
        # Every channel at once: a slow provider does not hold the others back.
        sent = await asyncio.gather(*(self._send(c, items) for c, items in by_channel.items()))
        for results in sent:
            outcomes |= results
        await self._record(conn, rows, outcomes, now, hashes)

    async def _send(self, channel: str, items: list[Outgoing]) -> dict[UUID, Outcome]:
        sender = self.senders.get(channel)
        if sender is None:
            return {i.delivery_id: Outcome(Failure.PERMANENT.value,
                                           f"the {channel} channel is not configured")
                    for i in items}  # fmt: skip
        # The timer's span (a recorded trace's timer fires alone); not sampled, nothing is built.
        parent = trace.current()
        spans = [
            self.tracer.start(f"send {channel}", parent, SpanKind.CLIENT, {
                "helpdesk.channel": channel, "helpdesk.template": item.template,
                "helpdesk.delivery_id": str(item.delivery_id), "helpdesk.tenant_id": item.tenant_id,
            })
            for item in items
        ] if self.tracer.recording and parent is not None and parent.sampled else []  # fmt: skip
        # A receiver that traces (a webhook's) continues the sending span's trace.
        contexts: list[str | None]
        if spans:
            contexts = [span.context.header for span in spans]
        else:
            contexts = [parent.header if parent is not None else None] * len(items)
        items = [replace(i, traceparent=c) for i, c in zip(items, contexts, strict=True)]
        with ended(spans):
            results = await sender.send_many(items)
            for span, result in zip(spans, results, strict=False):
                if isinstance(result, Failed):
                    span.set("helpdesk.delivery.failure", result.failure.value)
                    span.fail(result.detail)
        return {
            item.delivery_id: Outcome(result.failure.value, result.detail)
            if isinstance(result, Failed) else Outcome("sent", result.detail)
            for item, result in zip(items, results, strict=True)
        }  # fmt: skip

    async def _prepare(
        self, conn: Connection, row: Any, event: Envelope, opening: Envelope | None,
        profile: Envelope | None, now: datetime, custom: Customs,
    ) -> Outgoing | Outcome:  # fmt: skip
        kind, _, person = row["recipient"].partition(":")
        address = _address(row, kind, person, opening, profile)
        if address is None and kind == "customer" and opening is None and row["ticket_id"]:
            # The ticket's opening (with the customer's address) is read from another topic
            # than, say, a survey invitation about it: it may not be here yet.
            return _missing(row, now, "the ticket's opening has not arrived yet")
        if address is None:
            return Outcome(Failure.PERMANENT.value,
                           f"no {row['channel']} address known for {row['recipient']}")  # fmt: skip
        if address == ERASED:
            if person in await self.keys.destroyed(conn, row["tenant_id"], [person]):
                return Outcome("cancelled", "the recipient's personal data was erased")
            return _missing(row, now, "the data subject's key has not arrived yet")
        subject = opening.payload.requester.customer_id if opening is not None else None
        if (
            subject is not None
            and _erased_in(event, opening)
            and subject not in (await self.keys.destroyed(conn, row["tenant_id"], [subject]))
        ):
            # The ticket's words would read "[erased]" only because its key is on its way.
            return _missing(row, now, "the data subject's key has not arrived yet")
        context = _context(event, opening, self.sender_name)
        # An agent's language is theirs alone; a customer's, else their ticket's or survey's.
        language = row["language"] or (_language(event, opening) if kind == "customer" else None)
        try:
            rendered = self.templates.render(row["template"], language, context, custom)
        except TemplateBrokenError as exc:
            return Outcome(Failure.PERMANENT.value, str(exc)[:2000])
        return Outgoing(
            delivery_id=row["delivery_id"], tenant_id=row["tenant_id"],
            recipient=row["recipient"], address=address, rendered=rendered,
            event_type=event.event_type, template=row["template"], ticket_id=row["ticket_id"],
            ticket_number=opening.payload.number if opening is not None else _number(event),
            auto_submitted=_AUTO_SUBMITTED.get(row["template"], "auto-generated"), sent_at=now,
            unsubscribe_url=None if row["transactional"] or self.unsubscribe_link is None
            else self.unsubscribe_link(OptOut(row["tenant_id"], row["recipient"], row["template"])),
        )  # fmt: skip

    async def _record(
        self, conn: Connection, rows: Sequence[Any], outcomes: dict[UUID, Outcome],
        now: datetime, hashes: Mapping[UUID, str],
    ) -> None:  # fmt: skip
        retries: list[Timer] = []
        updates: list[tuple[Any, ...]] = []
        attempts: list[tuple[Any, ...]] = []
        fallbacks: list[Any] = []
        for row in rows:
            outcome = outcomes[row["delivery_id"]]
            tenant, delivery, lane = row["tenant_id"], row["delivery_id"], Lane(row["lane"])
            if outcome.kind == "wait":
                retries.append(Timer(DELIVER[lane], str(delivery), tenant,
                                     now + timedelta(seconds=KEY_WAIT_S), {}))  # fmt: skip
                continue
            attempt = row["attempts"] + 1
            state = {"sent": "sent", "cancelled": "cancelled", "permanent": "dead",
                     "suppressed": "cancelled"}.get(outcome.kind, "pending")  # fmt: skip
            if outcome.kind == Failure.TEMPORARY.value:
                delay = self.backoff.next_delay_s(attempt - row["redriven_at_attempt"], self.rng)
                if delay is None:
                    state = "dead"
                    detail = f"gave up after {attempt} attempts: {outcome.detail}"
                    outcome = Outcome(outcome.kind, detail)
                else:
                    retries.append(Timer(DELIVER[lane], str(delivery), tenant,
                                         now + timedelta(seconds=delay), {}))  # fmt: skip
            if state == "dead":
                log.warning("delivery failed for good", delivery_id=str(delivery),
                            tenant_id=tenant, error=outcome.detail)  # fmt: skip
            if state == "dead" or outcome.kind == "suppressed":
                fallbacks.append(row)
            if self.outcomes is not None:
                self.outcomes.labels(row["channel"], outcome.kind).inc()
            sent = state == "sent"
            error = None if sent else outcome.detail
            updates.append((tenant, delivery, state, attempt, error, now if sent else None,
                            hashes.get(delivery)))  # fmt: skip
            kind = "cancelled" if outcome.kind == "suppressed" else outcome.kind
            attempts.append((tenant, delivery, attempt, now, kind, outcome.detail[:2000]))
        if updates:
            await conn.execute(_UPDATE, *(list(c) for c in zip(*updates, strict=True)))
            await conn.execute(_ATTEMPTS, *(list(c) for c in zip(*attempts, strict=True)))
        for row in fallbacks:
            if (timer := await fall_back(conn, row, now)) is not None:
                retries.append(timer)
        await schedule_many(conn, retries)


def _with_directory(
    own: dict[tuple[str, str], Preferences], directory: dict[tuple[str, str], Preferences]
) -> dict[tuple[str, str], Preferences]:
    """A customer's preferences: how to reach them and their language and time zone from
    the directory, what they chose here (opt-outs, quiet hours) from their contact row."""
    merged = dict(own)
    for key, known in directory.items():
        mine = own.get(key)
        merged[key] = known if mine is None else replace(
            mine, channels=known.channels, addresses=known.addresses,
            language=mine.language or known.language,
            time_zone=known.time_zone if mine.time_zone == "UTC" else mine.time_zone,
        )  # fmt: skip
    return merged


async def _urgent_due(conn: Connection, now: datetime) -> bool:
    """Whether urgent messages are behind: due for longer than a scheduler's poll takes to
    fire them. A steady trickle of them never holds bulk mail back; a spike does."""
    return bool(await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM timers WHERE kind = $1 AND due_at <= $2)",
        DELIVER[Lane.URGENT], now - timedelta(seconds=URGENT_BEHIND_S),
    ))  # fmt: skip


async def _suppressed(conn: Connection, mails: Sequence[Outgoing]) -> dict[UUID, str]:
    """The mails whose address bounced for good or complained: why, by delivery id."""
    if not mails:
        return {}
    hashes = [address_hash(m.address) for m in mails]
    rows = await conn.fetch(
        "SELECT s.tenant_id, s.address_hash, s.reason, s.since FROM suppressions s"
        " JOIN unnest($1::text[], $2::text[]) AS x(n, h)"
        " ON s.tenant_id = x.n AND s.address_hash = x.h",
        [m.tenant_id for m in mails], hashes,
    )  # fmt: skip
    found = {(r["tenant_id"], r["address_hash"]): r for r in rows}
    return {
        m.delivery_id: f"address suppressed since {r['since']:%Y-%m-%d}: {r['reason']}"
        for m, h in zip(mails, hashes, strict=True)
        if (r := found.get((m.tenant_id, h))) is not None
    }


def _missing(row: Any, now: datetime, what: str) -> Outcome:
    """Something the message needs is on its way: wait, without counting a try, for a
    while; then it counts as a temporary failure."""
    if now - row["created_at"] < KEY_WAIT_LIMIT:
        return Outcome("wait", what)
    return Outcome(Failure.TEMPORARY.value, what)


_ERASED_JSON = f'"{ERASED}"'


def _erased_in(*envelopes: Envelope | None) -> bool:
    """Whether a personal field of these events could not be opened."""
    return any(
        e is not None and type(e.payload).personal_fields
        and _ERASED_JSON in e.payload.model_dump_json()
        for e in envelopes
    )  # fmt: skip


async def fall_back(conn: Connection, row: Any, now: datetime) -> Timer | None:
    """The same message through the person's next reachable channel, as a delivery of its
    own, after this one (`row`: a delivery with its person's contact columns) failed for
    good; its timer to schedule, or None if there is no next channel."""
    channel = _fallback(row)
    if channel is None:
        return None
    made = await conn.fetchrow(
        _FALL_BACK, row["tenant_id"], row["delivery_id"],
        delivery_id(row["event_id"], row["recipient"], channel), channel, now,
    )  # fmt: skip
    if made is None:
        return None
    return Timer(DELIVER[Lane(made["lane"])], str(made["delivery_id"]), row["tenant_id"], now, {})


FALLBACK_ROW = """
    SELECT d.tenant_id, d.delivery_id, d.event_id, d.recipient, d.channel, c.email,
           c.webhook_url, c.messenger_id, c.channels
    FROM deliveries d
    LEFT JOIN contacts c ON c.tenant_id = d.tenant_id AND c.person = d.recipient
    WHERE d.tenant_id = $1 AND d.delivery_id = $2
"""
"""What `fall_back` needs of a delivery."""


def _fallback(row: Any) -> str | None:
    """The channel after this delivery's in the person's order that they can be reached on."""
    order = [Channel(c) for c in (row["channels"] or [Channel.EMAIL.value])]
    reachable = {c for c, column in store.ADDRESS_COLUMNS.items() if row[column]}
    if row["recipient"].startswith("customer:"):
        reachable.add(Channel.EMAIL)  # the address their ticket came with
    current = Channel(row["channel"])
    later = order[order.index(current) + 1 :] if current in order else []
    return next((c.value for c in later if c in reachable), None)


def _ticket_of(envelope: Envelope) -> UUID | None:
    # isinstance, not getattr: a pydantic model's missing attribute is a slow exception.
    payload = envelope.payload
    if isinstance(payload, SurveyRequested | SlaWarning | SlaBreached | NegativeFeedbackFlagged):
        return payload.ticket_id
    if isinstance(payload, CustomerAtRisk):
        return None  # about a customer, not a ticket
    return envelope.aggregate_id


def _about(
    envelope: Envelope, facts: Mapping[store.TicketKey, TicketFacts],
    latest: Mapping[tuple[str, str], TicketFacts],
) -> TicketFacts | None:  # fmt: skip
    """The ticket an event's audience is resolved against: its own; for a customer at risk,
    their latest one known here (its group's leads stand in for a missing account manager)."""
    if isinstance(envelope.payload, CustomerAtRisk):
        return latest.get((envelope.tenant_id, envelope.payload.customer_id))
    ticket_id = _ticket_of(envelope)
    return facts.get((envelope.tenant_id, ticket_id)) if ticket_id else None


async def _insert_deliveries(conn: Connection, rows: list[tuple[Any, ...]]) -> list[Any]:
    if not rows:
        return []
    return list(await conn.fetch(
        """
        INSERT INTO deliveries (tenant_id, delivery_id, event_id, event_type, event, ticket_id,
            recipient, channel, template, lane, transactional, created_at, state, last_error,
            scheduled_for)
        SELECT * FROM unnest($1::text[], $2::uuid[], $3::uuid[], $4::text[], $5::jsonb[],
            $6::uuid[], $7::text[], $8::text[], $9::text[], $10::text[], $11::boolean[],
            $12::timestamptz[], $13::text[], $14::text[], $15::timestamptz[])
        ON CONFLICT (tenant_id, delivery_id) DO NOTHING
        RETURNING tenant_id, delivery_id, event_id, lane, state, scheduled_for
        """,
        *(list(c) for c in zip(*rows, strict=True)),
    ))  # fmt: skip


async def _open(
    conn: Connection, rows: Sequence[Any], keys: SubjectKeys
) -> list[tuple[Envelope, Envelope | None, Envelope | None]]:
    """Each delivery's event, its ticket's opening and its customer's directory profile,
    personal fields opened (one lookup of keys for all)."""
    documents = [from_json(r["event"]) for r in rows]
    extra = [(i, column, from_json(r[column])) for i, r in enumerate(rows)
             for column in ("opening", "profile") if r[column]]  # fmt: skip
    # An acknowledgement's event is its ticket's opening: opened (and parsed) once.
    itself = {i for i, column, d in extra
              if column == "opening" and d["event_id"] == documents[i]["event_id"]}  # fmt: skip
    extra = [x for x in extra if not (x[1] == "opening" and x[0] in itself)]
    opened = await open_documents(conn, documents + [d for *_, d in extra], keys)
    events, rest = opened[: len(rows)], opened[len(rows) :]
    by_row = {(i, column): e for (i, column, _), e in zip(extra, rest, strict=True)}
    by_row |= {(i, "opening"): events[i] for i in itself}
    return [(event, by_row.get((i, "opening")), by_row.get((i, "profile")))
            for i, event in enumerate(events)]  # fmt: skip


def _address(
    row: Any, kind: str, person: str, opening: Envelope | None, profile: Envelope | None
) -> str | None:
    """Where this delivery goes: an agent's address for its channel (contacts); a
    customer's email from their ticket's opening, else the directory; their messenger id
    from the directory."""
    channel = Channel(row["channel"])
    column = store.ADDRESS_COLUMNS.get(channel)
    if column and row[column]:
        return str(row[column])
    if kind != "customer":
        return None
    if channel is Channel.EMAIL and opening is not None:
        requester = opening.payload.requester
        if requester.customer_id == person and requester.email:
            return str(requester.email)
    wanted = {Channel.EMAIL: ContactKind.EMAIL, Channel.MESSENGER: ContactKind.TELEGRAM}
    if profile is not None and channel in wanted:
        found = [c.address for c in profile.payload.profile.contacts if c.kind == wanted[channel]]
        return str(found[0]) if found else None
    return None


def _number(event: Envelope) -> int | None:
    """The ticket number an event carries, for a ticket whose opening is not known here."""
    p = event.payload
    return p.ticket_number if isinstance(p, SurveyRequested | NegativeFeedbackFlagged) else None


def _language(event: Envelope, opening: Envelope | None) -> str | None:
    if isinstance(event.payload, SurveyRequested) and event.payload.language:
        return event.payload.language
    return opening.payload.requester.language if opening is not None else None


def _context(event: Envelope, opening: Envelope | None, sender: str) -> dict[str, Any]:
    """What templates see: `ticket`, `requester`, `message`, `resolution`, `survey`, `sla`,
    `assignment`, `feedback`, `risk`, `sender`."""
    context: dict[str, Any] = {"sender": sender, "ticket": None, "requester": None}
    if opening is not None:
        o = opening.payload
        context["ticket"] = {
            "number": o.number, "subject": o.subject, "id": str(opening.aggregate_id),
            "priority": o.priority.value,
        }  # fmt: skip
        context["requester"] = {"name": o.requester.name, "id": o.requester.customer_id}
    p = event.payload
    if isinstance(p, ResponseSent | CustomerReplied):
        context["message"] = {"body": p.body}
    if isinstance(p, TicketSolved):
        context["resolution"] = p.resolution
    if isinstance(p, TicketAssigned):
        context["assignment"] = {"assignee_id": p.assignee_id, "group_id": p.group_id,
                                 "by": p.assigned_by.id}  # fmt: skip
    if isinstance(p, SlaWarning | SlaBreached):
        context["sla"] = {
            "metric": p.metric.value.replace("_", " "),
            "deadline": p.deadline.strftime("%Y-%m-%d %H:%M UTC"),
            "percent": round(p.threshold * 100) if isinstance(p, SlaWarning) else 100,
        }  # fmt: skip
    if isinstance(p, SurveyRequested):
        language = (_language(event, opening) or "en").split("-")[0]
        low, high = SCORE_RANGES[p.survey]
        scores = list(p.scale) or list(range(low, high + 1))  # the page's answers
        labels = SURVEY_LABELS.get(p.survey, {}).get(language)
        separator = "&" if "?" in p.answer_url else "?"
        context["survey"] = {
            "kind": p.survey.value,
            "links": [(labels[score - low] if labels else str(score),
                       f"{p.answer_url}{separator}score={score}") for score in scores],
            "expires_at": p.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        }  # fmt: skip
    if isinstance(p, NegativeFeedbackFlagged):
        requester = context["requester"]
        named = requester is not None and requester["id"] == p.customer_id
        context["feedback"] = {
            "kind": p.survey.value.upper(), "score": p.score,
            "best": SCORE_RANGES[p.survey][1], "threshold": p.threshold,
            "reason": p.reason.replace("_", " ") if p.reason else None,
            "ticket_number": p.ticket_number or (opening.payload.number if opening else None),
            "customer_id": p.customer_id,
            "customer_name": requester["name"] if named else None,
            "reopened": p.reopen,
        }  # fmt: skip
    if isinstance(p, CustomerAtRisk):
        context["risk"] = {
            "customer_id": p.customer_id, "organisation_id": p.organisation_id,
            "health": _points(p.health), "threshold": _points(p.threshold),
            "previous_health": None if p.previous_health is None else _points(p.previous_health),
            "reasons": [{"code": r.code, "detail": r.detail, "impact": _points(r.impact)}
                        for r in p.reasons],
        }  # fmt: skip
    return context


def _points(value: float) -> str:
    """A health figure as people write it: 42.5, 50 (not 50.0)."""
    return f"{round(value, 1):g}"


_PENDING = """
    SELECT d.tenant_id, d.delivery_id, d.event::text AS event, d.ticket_id, d.recipient,
           d.channel, d.template, d.lane, d.transactional, d.attempts, d.redriven_at_attempt,
           d.created_at,
           d.event_id, t.opening::text AS opening, c.email, c.webhook_url, c.messenger_id,
           coalesce(c.language, cu.language) AS language, c.channels,
           cu.profile::text AS profile
    FROM unnest($1::text[], $2::uuid[]) AS x(n, k)
    JOIN deliveries d ON d.tenant_id = x.n AND d.delivery_id = x.k AND d.state = 'pending'
    LEFT JOIN tickets t ON t.tenant_id = d.tenant_id AND t.ticket_id = d.ticket_id
    LEFT JOIN contacts c ON c.tenant_id = d.tenant_id AND c.person = d.recipient
    LEFT JOIN customers cu ON cu.tenant_id = d.tenant_id
        AND d.recipient = 'customer:' || cu.customer_id
    ORDER BY d.created_at
"""

_FALL_BACK = """
    INSERT INTO deliveries (tenant_id, delivery_id, event_id, event_type, event, ticket_id,
        recipient, channel, template, lane, transactional, created_at, scheduled_for)
    SELECT tenant_id, $3, event_id, event_type, event, ticket_id, recipient, $4, template,
        lane, transactional, $5, $5
    FROM deliveries WHERE tenant_id = $1 AND delivery_id = $2
    ON CONFLICT (tenant_id, delivery_id) DO NOTHING
    RETURNING delivery_id, lane
"""

_UPDATE = """
    UPDATE deliveries d SET state = x.s, attempts = x.a, last_error = x.e, sent_at = x.t,
        address_hash = coalesce(x.h, d.address_hash)
    FROM unnest($1::text[], $2::uuid[], $3::text[], $4::int[], $5::text[], $6::timestamptz[],
                $7::text[]) AS x(n, k, s, a, e, t, h)
    WHERE d.tenant_id = x.n AND d.delivery_id = x.k
"""

_ATTEMPTS = """
    INSERT INTO delivery_attempts (tenant_id, delivery_id, attempt, at, outcome, detail)
    SELECT * FROM unnest($1::text[], $2::uuid[], $3::int[], $4::timestamptz[], $5::text[],
        $6::text[])
    ON CONFLICT DO NOTHING
"""
