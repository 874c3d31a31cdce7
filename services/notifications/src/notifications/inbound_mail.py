"""Our inbound mail path: an SMTP listener (aiosmtpd) that turns customers' mail into the
intake events ticketing applies, and bounces and complaints into suppressions.

A message is answered "250" only once what it becomes is published to Kafka and recorded,
and its files are stored by ticketing (attachments.py), so a sending server that gets no
answer, or a 4xx, delivers it again; the intake applies each Message-ID once. The listener
runs as a job of the service (`INBOUND_SMTP_PORT`); in Kubernetes a Service exposes it to
the mail provider's MX or relay.
"""

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic_core import from_json

from helpdesk_contracts import (
    AttachmentRef,
    Channel,
    CustomerMessageReceived,
    EventEnvelope,
    Requester,
)
from helpdesk_contracts.envelope import kafka_headers, kafka_key
from helpdesk_runtime import tenancy, trace
from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys, open_documents
from helpdesk_runtime.telemetry import SpanKind, Tracer
from helpdesk_runtime.timers import schedule_many
from notifications.attachments import FilesUnavailableError, TicketingFiles, upload_key
from notifications.email import (
    MailIdentity,
    delivery_of_bounce,
    signature_matches,
    ticket_of_reply,
)
from notifications.handlers import FALLBACK_ROW, fall_back
from notifications.inbound import (
    Inbound,
    Kind,
    classify,
    customer_id_for,
    read,
    reply_local_parts,
)

log = get_logger(__name__)

SOURCE = "email"
"""The intake `source` of the mail we receive: threads and messages are ids within it."""
MAX_BODY = 65_536
MAX_FILES = 20
"""Files a message lists at most (CustomerMessageReceived.attachments); later ones are
left out, and the message says so."""


class InboundMail:
    def __init__(
        self, pool: asyncpg.Pool, producer: Producer, identity: MailIdentity, intake_topic: str,
        clock: Callable[[], datetime], keys: SubjectKeys, files: TicketingFiles,
        tracer: Tracer | None = None,
    ) -> None:  # fmt: skip
        self._pool, self._producer, self._identity = pool, producer, identity
        self._topic, self._clock, self._keys = intake_topic, clock, keys
        self._files, self._tracer = files, tracer or Tracer()

    async def accept(self, raw: bytes, recipients: Sequence[str] = ()) -> str:
        """Handle one message (`recipients`: the SMTP envelope's); the reply to give.

        A mail starts a trace: the uploads of its files and the intake message it becomes
        carry it on, to the ticket and what follows."""
        with (
            self._tracer.span("receive email", None, SpanKind.SERVER) as span,
            trace.using(span.context),
        ):
            inbound = classify(read(raw), self._identity.reply_domain, recipients)
            span.set("helpdesk.mail.kind", inbound.kind.value)
            with tenancy.all_tenants():  # which tenant is what the message says
                async with self._pool.acquire() as conn, conn.transaction():
                    reply = await self._handle(conn, inbound)
            span.set("helpdesk.smtp.reply", reply[:3])
            return reply

    async def _handle(self, conn: Connection, inbound: Inbound) -> str:
        if inbound.kind in (Kind.BOUNCE, Kind.COMPLAINT):
            return await self._reported(conn, inbound)
        if inbound.kind in (Kind.AUTO_REPLY, Kind.LOOP):
            log.info("automatic mail ignored", why=inbound.why, message_id=inbound.message_id)
            return "250 2.0.0 OK: automatic message, not added to any ticket"
        if not inbound.from_address:
            return "550 5.7.1 A message needs a sender (From)"
        if inbound.kind is Kind.REPLY:
            found = await self._ticket(conn, inbound)
            if found is None:
                return "550 5.1.1 This reply address is not valid"
            tenant, ticket_id, requester_id = found
        else:
            tenant = await conn.fetchval(
                "SELECT tenant_id FROM mailboxes WHERE address = ANY($1::text[]) LIMIT 1",
                list(inbound.to),
            )  # fmt: skip
            if tenant is None:
                return "550 5.1.1 No such mailbox here"
            ticket_id, requester_id = None, customer_id_for(inbound.from_address)
        if await _seen(conn, tenant, inbound.message_id):
            return "250 2.0.0 OK: already received"
        refs, left_out = await self._upload(tenant, inbound)
        await self._publish(tenant, inbound, ticket_id, requester_id, refs, left_out)
        await _record(conn, tenant, inbound, ticket_id, "published to the intake")
        return "250 2.0.0 OK: received"

    async def _ticket(self, conn: Connection, inbound: Inbound) -> tuple[str, UUID, str] | None:
        """The ticket a reply address names (its signature checked against the ticket's
        tenant) and the reply's author: the requester when the mail comes from their
        address, else whoever wrote (a colleague in copy is not the requester)."""
        for local in reply_local_parts(inbound, self._identity.reply_domain):
            named = ticket_of_reply(self._identity, local)
            if named is None:
                continue
            rows = await conn.fetch(
                "SELECT tenant_id, requester_id, opening::text AS opening FROM tickets"
                " WHERE ticket_id = $1", named[0],
            )  # fmt: skip
            for row in rows:
                if signature_matches(self._identity, row["tenant_id"], named[0], named[1]):
                    [opening] = await open_documents(conn, [from_json(row["opening"])], self._keys)
                    email = str(opening.payload.requester.email or "").lower()
                    author = (
                        row["requester_id"] if email == inbound.from_address
                        else customer_id_for(inbound.from_address)
                    )  # fmt: skip
                    return row["tenant_id"], named[0], author
        log.warning("reply to an unknown or forged reply address", to=list(inbound.to))
        return None

    async def _upload(
        self, tenant: str, inbound: Inbound
    ) -> tuple[tuple[AttachmentRef, ...], list[str]]:
        """The mail's files stored by ticketing, and what is said of those left out (over
        MAX_FILES, or refused by ticketing's limits: size, type). Raises
        FilesUnavailableError when ticketing cannot take them now."""
        refs: list[AttachmentRef] = []
        left_out: list[str] = []
        for position, file in enumerate(inbound.files):
            uploaded: AttachmentRef | str = f"more than {MAX_FILES} files"
            if position < MAX_FILES:
                key = upload_key(inbound.message_id, position, file)
                uploaded = await self._files.upload(tenant, file, key)
            if isinstance(uploaded, AttachmentRef):
                refs.append(uploaded)
            else:
                left_out.append(f'"{file.name}" ({uploaded})')
        if inbound.files:  # counts only: file names are personal data
            log.info("inbound files", stored=len(refs), left_out=len(left_out))
        return tuple(refs), left_out

    async def _publish(
        self, tenant: str, inbound: Inbound, ticket_id: UUID | None, requester_id: str,
        refs: tuple[AttachmentRef, ...], left_out: list[str],
    ) -> None:  # fmt: skip
        note = _left_out_note(left_out)
        body = (inbound.text[: MAX_BODY - len(note)] + note).strip() or "(no text)"
        message = CustomerMessageReceived(
            source=SOURCE, external_thread_id=inbound.thread_root[:200],
            external_message_id=inbound.message_id[:200], subject=inbound.subject, body=body,
            requester=Requester(customer_id=requester_id, name=inbound.from_name,
                                email=inbound.from_address or None),
            channel=Channel.EMAIL, ticket_id=ticket_id, attachments=refs,
        )  # fmt: skip
        envelope = EventEnvelope.new(message, tenant_id=tenant, producer="notifications",
                                     occurred_at=self._clock())  # fmt: skip
        headers = kafka_headers(envelope)
        if (context := trace.current()) is not None:
            headers.append((trace.HEADER, context.header.encode()))
        await self._producer.send_many([OutgoingMessage(
            self._topic, envelope.to_json(), kafka_key(envelope), headers
        )])  # fmt: skip

    async def _reported(self, conn: Connection, inbound: Inbound) -> str:
        """A delivery report or complaint counts only when it comes to the signed bounce
        address of one of our messages (anyone can write a report quoting a delivery id):
        then a permanent failure suppresses the address that very message went to."""
        report = inbound.report
        assert report is not None
        named = next((d for a in inbound.to if (d := delivery_of_bounce(self._identity, a))),
                     None)  # fmt: skip
        row = None
        if named is not None:
            row = await conn.fetchrow(
                "SELECT tenant_id, delivery_id, recipient, address_hash FROM deliveries"
                " WHERE delivery_id = $1 AND channel = 'email'", named,
            )  # fmt: skip
        if row is None:
            log.info("report not about a message of ours", status=report.status)
            return "250 2.0.0 OK: report received"
        tenant, delivery = row["tenant_id"], row["delivery_id"]
        report = replace(report, delivery_id=delivery)
        outcome = "complaint" if inbound.kind is Kind.COMPLAINT else "bounced"
        if report.hard:
            if row["address_hash"] is not None:
                await conn.execute(
                    "INSERT INTO suppressions (tenant_id, address_hash, reason, recipient,"
                    " delivery_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    tenant, row["address_hash"], f"{outcome}: {report.status}",
                    row["recipient"], delivery,
                )  # fmt: skip
            await conn.execute(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, last_error = $3"
                " WHERE tenant_id = $1 AND delivery_id = $2",
                tenant, delivery, f"{outcome}: {report.status}",
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO delivery_attempts (tenant_id, delivery_id, attempt, at, outcome,"
                " detail) SELECT $1, $2, attempts, $3, $4, $5 FROM deliveries"
                " WHERE tenant_id = $1 AND delivery_id = $2 ON CONFLICT DO NOTHING",
                tenant, delivery, self._clock(), outcome, report.status,
            )  # fmt: skip
            # The person's next channel, as after any failure for good.
            failed = await conn.fetchrow(FALLBACK_ROW, tenant, delivery)
            if failed is not None and (timer := await fall_back(conn, failed, self._clock())):
                await schedule_many(conn, [timer])
        await _record(conn, tenant, inbound, None, f"{outcome} ({report.status})")
        return "250 2.0.0 OK: report received"


def _left_out_note(left_out: list[str]) -> str:
    """What the agent reads below the message about files it came with but the ticket
    has not (the first MAX_FILES named: a bounded note)."""
    if not left_out:
        return ""
    more = len(left_out) - MAX_FILES
    named = ", ".join(left_out[:MAX_FILES]) + (f" and {more} more" if more > 0 else "")
    return f"\n\n[Files not added to the ticket: {named}]"


async def _seen(conn: Connection, tenant: str, message_id: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT true FROM inbound_messages WHERE tenant_id = $1 AND message_id = $2",
        tenant, message_id,
    ))  # fmt: skip


async def _record(
    conn: Connection, tenant: str, inbound: Inbound, ticket_id: UUID | None, outcome: str
) -> None:
    await conn.execute(
        "INSERT INTO inbound_messages (tenant_id, message_id, kind, ticket_id, outcome)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        tenant, inbound.message_id[:500], inbound.kind.value, ticket_id, outcome,
    )  # fmt: skip


class _Handler:
    def __init__(self, inbound: InboundMail) -> None:
        self._inbound = inbound

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        try:
            return await self._inbound.accept(envelope.original_content or b"", envelope.rcpt_tos)
        except FilesUnavailableError as exc:
            log.warning("inbound mail's files not stored; the sender will try again", why=str(exc))
            return "451 4.3.0 Temporary failure, please try again later"
        except Exception:
            log.exception("inbound mail failed; the sender will try again")
            return "451 4.3.0 Temporary failure, please try again later"


async def listen(inbound: InboundMail, host: str, port: int, max_bytes: int) -> None:
    """Serve SMTP until cancelled."""
    loop = asyncio.get_running_loop()
    handler = _Handler(inbound)

    def protocol() -> Any:
        return SMTP(handler, data_size_limit=max_bytes, hostname="helpdesk-inbound")

    server = await loop.create_server(protocol, host, port)
    log.info("inbound mail listening", host=host, port=port)
    try:
        await asyncio.Future()  # until cancelled
    finally:
        server.close()
        with suppress(Exception):
            await server.wait_closed()
