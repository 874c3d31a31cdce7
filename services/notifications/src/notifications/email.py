"""Email: messages built with the standard library, sent over SMTP with aiosmtplib.

Every message names its delivery (Message-ID and X-Helpdesk-Delivery-Id are the delivery's
stable id, so a receiver can drop a copy sent again after a crash) and its ticket's thread
(References and In-Reply-To name the ticket, so mail clients thread every message of a
ticket together). The reply address carries a signed token of the ticket: the inbound path
turns the customer's answer into a message on that ticket, and a forged address names none.
"""

import asyncio
import base64
import hashlib
import hmac
import re
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import format_datetime
from uuid import UUID

import aiosmtplib
import dkim

from notifications.channels import Failed, Outgoing, Result, Sent
from notifications.domain.retries import Failure

_TOKEN = re.compile(r"^reply\+([0-9a-f]{32})\.([a-z2-7]{16})$")


@dataclass(frozen=True)
class Dkim:
    """DomainKeys Identified Mail: the signing domain, selector and private key (PEM); the
    public key is published in DNS at `<selector>._domainkey.<domain>`."""

    domain: str
    selector: str
    private_key: bytes

    SIGNED = (
        b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"references",
        b"in-reply-to", b"list-unsubscribe", b"list-unsubscribe-post", b"auto-submitted",
    )  # fmt: skip

    def sign(self, raw: bytes) -> bytes:
        """The message with its DKIM-Signature header first."""
        header = dkim.sign(raw, self.selector.encode(), self.domain.encode(), self.private_key,
                           include_headers=list(self.SIGNED))  # fmt: skip
        return bytes(header) + raw


@dataclass(frozen=True)
class MailIdentity:
    """Who our mail is from and where its replies go (from the settings)."""

    from_address: str
    from_name: str
    mail_domain: str
    reply_domain: str
    reply_secret: bytes
    dkim: Dkim | None = None


def _signature(secret: bytes, tenant_id: str, ticket_id: UUID) -> str:
    digest = hmac.new(secret, f"{tenant_id}/{ticket_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode().lower()


def reply_address(identity: MailIdentity, tenant_id: str, ticket_id: UUID) -> str:
    """`reply+<ticket>.<signature>@<reply domain>`: 55 characters before the @, under the
    64 that RFC 5321 allows. The signature binds the ticket to its tenant."""
    signature = _signature(identity.reply_secret, tenant_id, ticket_id)
    return f"reply+{ticket_id.hex}.{signature}@{identity.reply_domain}"


def ticket_of_reply(identity: MailIdentity, local_part: str) -> tuple[UUID, str] | None:
    """The ticket a reply address names and its signature, if it has the right shape; the
    caller checks the signature against the ticket's tenant (`signature_matches`)."""
    match = _TOKEN.match(local_part.lower())
    return (UUID(match[1]), match[2]) if match else None


def signature_matches(identity: MailIdentity, tenant_id: str, ticket_id: UUID, sig: str) -> bool:
    return hmac.compare_digest(_signature(identity.reply_secret, tenant_id, ticket_id), sig)


def build_message(identity: MailIdentity, mail: Outgoing) -> bytes:
    """The message as sent: plain text and HTML alternatives, UTF-8 in base64, non-ASCII
    headers as RFC 2047 encoded words, CRLF line ends.

    Written out here rather than through the standard library's `email` package, whose
    header folding and generator cost more than half the CPU of sending (py-spy, in the
    month-start drain benchmark); the tests read every message back with that package."""
    headers = [
        ("From", f"{_encoded(identity.from_name)} <{identity.from_address}>"),
        ("To", mail.address),
        ("Subject", _encoded(mail.rendered.subject)),
        ("Date", format_datetime(mail.sent_at)),
        ("Message-ID", f"<{mail.delivery_id}@{identity.mail_domain}>"),
        ("X-Helpdesk-Delivery-Id", str(mail.delivery_id)),
    ]
    if mail.ticket_id is not None:
        thread = f"<ticket-{mail.ticket_id}@{identity.mail_domain}>"
        headers += [("In-Reply-To", thread), ("References", thread)]
        if mail.recipient.startswith("customer:"):
            # Only a customer's answer belongs on the ticket as theirs; an agent who answers
            # a notice by mail reaches the support address, not the ticket.
            headers.append(("Reply-To", reply_address(identity, mail.tenant_id, mail.ticket_id)))
    if mail.auto_submitted:
        headers.append(("Auto-Submitted", mail.auto_submitted))
    if mail.unsubscribe_url:
        headers += [("List-Unsubscribe", f"<{mail.unsubscribe_url}>"),
                    ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]  # fmt: skip
    boundary = f"=_{mail.delivery_id.hex}"
    headers += [
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
        ("Content-Language", mail.rendered.language),
    ]
    lines = [f"{name}: {value}" for name, value in headers]
    for subtype, content in (("plain", mail.rendered.text), ("html", mail.rendered.html)):
        lines += ["", f"--{boundary}", f'Content-Type: text/{subtype}; charset="utf-8"',
                  "Content-Transfer-Encoding: base64", "", _base64_lines(content)]  # fmt: skip
    lines += ["", f"--{boundary}--", ""]
    return "\r\n".join(lines).encode("ascii")


def _encoded(value: str) -> str:
    """A header value: as it is when printable ASCII, else RFC 2047 encoded words of at
    most 75 characters each (whole characters in each), one per folded line."""
    if value.isascii() and value.isprintable():
        return value
    words, chunk = [], b""
    for char in value:
        data = char.encode()
        if len(chunk) + len(data) > 45:  # 45 bytes -> 60 in base64, 72 with the markers
            words.append(chunk)
            chunk = b""
        chunk += data
    words.append(chunk)
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w).decode()}?=" for w in words)


def _base64_lines(text: str) -> str:
    data = base64.b64encode(text.encode()).decode()
    return "\r\n".join(data[i : i + 76] for i in range(0, len(data), 76))


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    security: str = "none"  # none | starttls | tls
    username: str | None = None
    password: str | None = None
    timeout_s: float = 30.0
    connections: int = 4


class EmailSender:
    """Sends batches of messages, a few connections at a time, each message's outcome
    classified: a refusal of the recipient or of the message (5xx at RCPT or DATA) is
    permanent; anything else (4xx, a 5xx at MAIL FROM or login, which are the server's
    trouble, not the message's; the server away; a timeout) is temporary, retried later."""

    def __init__(self, server: SmtpServer, identity: MailIdentity) -> None:
        self._server = server
        self.identity = identity
        # Connections kept open between batches: a handshake (and TLS) per batch and
        # connection cost as much as the messages of a small batch.
        self._idle: list[tuple[float, aiosmtplib.SMTP]] = []

    async def send_many(self, items: Sequence[Outgoing]) -> list[Result]:
        results: list[Result | None] = [None] * len(items)
        lanes = min(self._server.connections, len(items)) or 1
        await asyncio.gather(
            *(self._send_over_one(items, list(range(i, len(items), lanes)), results)
              for i in range(lanes))
        )  # fmt: skip
        return [r or Failed(Failure.TEMPORARY, "not attempted") for r in results]

    async def _send_over_one(
        self, items: Sequence[Outgoing], which: list[int], results: list[Result | None]
    ) -> None:
        try:
            client = await self._client()
        except (aiosmtplib.SMTPException, OSError) as exc:
            for i in which:
                results[i] = Failed(Failure.TEMPORARY, f"cannot connect: {_describe(exc)}")
            return
        for i in which:
            results[i] = await _send_one(client, items[i], self.identity)
        if client.is_connected and len(self._idle) < self._server.connections:
            self._idle.append((time.monotonic(), client))
        else:
            await _close(client)

    async def _client(self) -> aiosmtplib.SMTP:
        """An open connection: an idle one that still answers, else a new one."""
        while self._idle:
            since, client = self._idle.pop()
            if client.is_connected and time.monotonic() - since < IDLE_S:
                try:
                    await client.noop()
                    return client
                except (aiosmtplib.SMTPException, OSError):
                    pass
            await _close(client)
        s = self._server
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout_s, use_tls=s.security == "tls",
            start_tls=s.security == "starttls", username=s.username, password=s.password,
            tls_context=ssl.create_default_context() if s.security != "none" else None,
        )  # fmt: skip
        await client.connect()
        return client


IDLE_S = 30.0
"""An idle connection older than this is closed rather than reused (servers drop them)."""


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        client.close()


def bounce_address(identity: MailIdentity, delivery_id: UUID) -> str:
    """The envelope sender of one delivery (VERP): delivery reports come back to it, and
    its signature lets only a report about this very message suppress its address."""
    mac = hmac.new(identity.reply_secret, f"bounce/{delivery_id}".encode(), hashlib.sha256)
    signature = base64.b32encode(mac.digest()[:10]).decode().lower()
    return f"bounces+{delivery_id.hex}.{signature}@{identity.reply_domain}"


_BOUNCE = re.compile(r"^bounces\+([0-9a-f]{32})\.([a-z2-7]{16})@(.+)$")


def delivery_of_bounce(identity: MailIdentity, address: str) -> UUID | None:
    """The delivery a bounce address names, if it is one of ours and not forged."""
    match = _BOUNCE.match(address.lower())
    if not match or match[3] != identity.reply_domain:
        return None
    delivery = UUID(match[1])
    expected = bounce_address(identity, delivery).split("@")[0].split(".")[-1]
    return delivery if hmac.compare_digest(expected, match[2]) else None


async def _send_one(client: aiosmtplib.SMTP, item: Outgoing, identity: MailIdentity) -> Result:
    try:
        raw = build_message(identity, item)
        if identity.dkim is not None:
            raw = identity.dkim.sign(raw)
    except Exception as exc:  # a message that cannot be built will not be built later
        return Failed(Failure.PERMANENT, f"the message cannot be built: {_describe(exc)}")
    try:
        if not client.is_connected:
            await client.connect()
        refused, response = await client.sendmail(
            bounce_address(identity, item.delivery_id), [item.address], raw
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [r.code for r in exc.recipients]
        kind = Failure.PERMANENT if all(500 <= c < 600 for c in codes) else Failure.TEMPORARY
        detail = "; ".join(f"{r.code} {r.message}" for r in exc.recipients)
        return Failed(kind, _redact(detail, item.address))
    except (aiosmtplib.SMTPRecipientRefused, aiosmtplib.SMTPDataError) as exc:
        kind = Failure.PERMANENT if 500 <= exc.code < 600 else Failure.TEMPORARY
        return Failed(kind, _redact(f"{exc.code} {exc.message}", item.address))
    except (aiosmtplib.SMTPException, OSError) as exc:
        return Failed(Failure.TEMPORARY, _redact(_describe(exc), item.address))
    if refused:
        return Failed(Failure.PERMANENT, "; ".join(
            f"{c} {_redact(m, item.address)}" for c, m in refused.values()))  # fmt: skip
    return Sent(response[:500])


def _redact(detail: str, address: str) -> str:
    """A server's words without the recipient's address (the log is read by agents)."""
    return re.sub(re.escape(address), "<recipient>", detail, flags=re.IGNORECASE)[:500]


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
