"""What an incoming email is: a reply to one of ours, a new request, an autoresponder's
answer, a bounce or a complaint (pure: parsing and rules, no I/O).

Autoresponders and bounces must never reopen a ticket or start a mail loop between our
acknowledgement and someone's "out of office": they are recognised by the headers RFC 3834
and the big mail systems set, by the delivery reports of RFC 3464 and the abuse reports of
RFC 5965, and by our own delivery id coming back.
"""

import email
import email.policy
import hashlib
import mimetypes
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from enum import StrEnum
from pathlib import PurePath
from uuid import UUID

from inscriptis import get_text
from mailparser_reply import EmailReplyParser

REPLY_MARKER = "##-"
"""Our customer-facing messages start with "##- Please type your reply above this line -##"
(in the message's language): whatever a mail client quotes below it is cut, in any language."""

_REPLY_PARSER = EmailReplyParser(languages=["en", "de", "fr", "es", "it", "nl", "pl"])
_AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_DAEMONS = re.compile(r"^(mailer-daemon|postmaster|bounces?|no-?reply)@", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f]")
MAX_NAME = 255
"""Characters of a file name (AttachmentRef.filename)."""


class Kind(StrEnum):
    REPLY = "reply"
    """To a reply address of ours: a message on that ticket."""
    NEW = "new"
    """To a support address: a new conversation."""
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    COMPLAINT = "complaint"
    LOOP = "loop"
    """One of our own messages, come back."""


@dataclass(frozen=True)
class Report:
    """A delivery report or a complaint about a message of ours."""

    delivery_id: UUID | None
    """X-Helpdesk-Delivery-Id of the message reported, when the report quotes its headers."""
    recipients: tuple[str, ...]
    hard: bool
    """A permanent failure (5.x.x) or a complaint: the address is suppressed."""
    status: str


@dataclass(frozen=True)
class MailFile:
    """A file that came with a message: an attachment, an image its HTML shows, a message
    it forwards (as .eml)."""

    name: str
    """Without a path or control characters, at most MAX_NAME characters (personal data:
    never logged)."""
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass(frozen=True)
class Inbound:
    kind: Kind
    message_id: str
    from_address: str
    from_name: str | None
    to: tuple[str, ...]
    subject: str
    text: str
    thread_root: str
    """The conversation: the first of References, else In-Reply-To, else this message."""
    why: str = ""
    report: Report | None = None
    files: tuple[MailFile, ...] = ()


def read(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def classify(message: EmailMessage, reply_domain: str, recipients: Sequence[str] = ()) -> Inbound:
    """What this message is, with what the intake needs of it. `recipients` are the SMTP
    envelope's (Bcc and aliases are only there)."""
    message_id = (_angle(str(message.get("Message-ID", ""))) or _fallback_id(message))[:200]
    name, sender = parseaddr(str(message.get("From", "")))
    headers = getaddresses(
        [str(v) for h in ("To", "Cc", "Delivered-To") for v in message.get_all(h, [])]
    )
    to = tuple(dict.fromkeys(a.lower() for a in [*recipients, *(a for _, a in headers)] if a))
    references = [_angle(r) for r in str(message.get("References", "")).split() if r.strip()]
    root = next((r for r in references if r), None) or _angle(
        str(message.get("In-Reply-To", ""))
    ) or message_id  # fmt: skip
    subject = " ".join(str(message.get("Subject", "")).split())[:250] or "(no subject)"
    base = Inbound(Kind.NEW, message_id, sender.lower(), name or None, to, subject, "", root)
    report = _report(message)
    if report is not None:
        kind = Kind.COMPLAINT if report.status == "complaint" else Kind.BOUNCE
        return replace(base, kind=kind, why=report.status, report=report)
    if message.get("X-Helpdesk-Delivery-Id"):
        return replace(base, kind=Kind.LOOP, why="our own message came back")
    if why := _automatic(message, sender):
        return replace(base, kind=Kind.AUTO_REPLY, why=why)
    kind = Kind.REPLY if any(a.endswith("@" + reply_domain) for a in to) else Kind.NEW
    return replace(base, kind=kind, text=new_text(message), files=files_of(message))


def reply_local_parts(inbound: Inbound, reply_domain: str) -> list[str]:
    return [a.rsplit("@", 1)[0] for a in inbound.to if a.endswith("@" + reply_domain)]


def customer_id_for(address: str) -> str:
    """The id a new sender gets: ticketing links it to the directory's customer with this
    email when there is one. A hash, so no address is written into ids."""
    return "mail-" + hashlib.sha256(address.strip().lower().encode()).hexdigest()[:24]


def address_hash(address: str) -> str:
    """How suppressed addresses are kept: never in plain text."""
    return hashlib.sha256(address.strip().lower().encode()).hexdigest()


def new_text(message: EmailMessage) -> str:
    """What the customer wrote this time: the text part (or the HTML one as text), without
    what their mail client quoted of earlier messages."""
    body = message.get_body(("plain", "html"))
    if body is None:
        return ""
    content = body.get_content() if isinstance(body, EmailMessage) else ""
    text = get_text(content) if body.get_content_type() == "text/html" else str(content)
    return strip_quoted(text)


def files_of(message: EmailMessage) -> tuple[MailFile, ...]:
    """The message's files, in order: every part but the text we read and its alternative
    (a text or HTML part without a file name). Empty ones are left out."""
    body = message.get_body(("plain", "html"))
    files: list[MailFile] = []

    def visit(part: Message) -> None:
        if part is body:
            return
        if part.get_content_type() == "message/rfc822":  # forwarded: the whole message
            inner = _inner(part)
            forwarded = inner.as_bytes() if inner is not None else b""
            files.append(MailFile(_file_name(part, len(files) + 1, ".eml"), forwarded))
        elif part.is_multipart():
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    visit(sub)
        elif part.get_filename() or part.get_content_maintype() != "text" or (
            part.get_content_disposition() == "attachment"
        ):  # fmt: skip
            data = part.get_payload(decode=True)
            files.append(MailFile(_file_name(part, len(files) + 1),
                                  data if isinstance(data, bytes) else b""))  # fmt: skip

    visit(message)
    return tuple(f for f in files if f.data)


def _file_name(part: Message, number: int, default_suffix: str = "") -> str:
    """The part's file name, as the contracts take one; else "attachment-<n>.<ext>"."""
    name = _CONTROL.sub("", str(part.get_filename() or "")).replace("\\", "/")
    name = name.rsplit("/", 1)[-1].strip()
    if not name:
        suffix = default_suffix or mimetypes.guess_extension(part.get_content_type()) or ".bin"
        name = f"attachment-{number}{suffix}"
    if len(name) > MAX_NAME:  # keep the extension: it tells what the file is
        suffix = PurePath(name).suffix[:20]
        name = name[: MAX_NAME - len(suffix)] + suffix
    return name


def strip_quoted(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines):  # our marker, in any language
        if REPLY_MARKER in line:
            lines = _drop_header(lines[:i])
            break
    text = "\n".join(lines)
    parsed = _REPLY_PARSER.parse_reply(text=text) or text
    lines = parsed.split("\n")
    for i, line in enumerate(lines):  # a quoted block, whatever introduced it
        if line.lstrip().startswith(">"):
            lines = _drop_header(lines[:i])
            break
    return "\n".join(lines).strip()


def _drop_header(lines: list[str]) -> list[str]:
    """Without the "<someone> wrote:" line (any language) that introduces a quote."""
    while lines and not lines[-1].strip():
        lines = lines[:-1]
    if lines and lines[-1].rstrip().endswith(":") and ("@" in lines[-1] or len(lines[-1]) < 200):
        lines = lines[:-1]
    return lines


def _automatic(message: Message, sender: str) -> str:
    """Why this is an automatic message (an autoresponder, a list), or ""."""
    auto = str(message.get("Auto-Submitted", "no")).strip().lower()
    if auto != "no":
        return f"Auto-Submitted: {auto}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Autogenerated"):
        if message.get(header) is not None:
            return f"{header} present"
    precedence = str(message.get("Precedence", "")).strip().lower()
    if precedence in _AUTO_PRECEDENCE:
        return f"Precedence: {precedence}"
    suppress = str(message.get("X-Auto-Response-Suppress", "")).lower()
    if "oof" in suppress or "autoreply" in suppress:
        return f"X-Auto-Response-Suppress: {suppress}"
    if _DAEMONS.match(sender or "") or str(message.get("Return-Path", "")).strip() == "<>":
        return "sent by a mail system, not a person"
    return ""


def _report(message: EmailMessage) -> Report | None:
    if message.get_content_type() != "multipart/report":
        return None
    report_type = str(message.get_param("report-type", "")).lower()
    parts = list(message.iter_parts())
    quoted = ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers")
    original = next((p for p in parts if p.get_content_type() in quoted), None)
    delivery = _delivery_id_in(original)
    if report_type == "feedback-report":
        to = _original_recipients(original)
        return Report(delivery, to, hard=True, status="complaint")
    if report_type != "delivery-status":
        return None
    status_part = next(
        (p for p in parts if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    recipients: list[str] = []
    hard, status = False, ""
    for block in blocks if isinstance(blocks, list) else []:
        if not isinstance(block, Message):
            continue
        action = str(block.get("Action", "")).strip().lower()
        code = str(block.get("Status", "")).strip()
        final = str(block.get("Final-Recipient", "") or block.get("Original-Recipient", ""))
        if not action:
            continue  # the per-message block
        if final:
            recipients.append(final.split(";")[-1].strip().lower())
        if action == "failed" and code.startswith("5"):
            hard, status = True, code
        elif not status:
            status = code or action
    return Report(delivery, tuple(recipients), hard=hard, status=status or "unknown")


def _delivery_id_in(part: Message | None) -> UUID | None:
    if part is None:
        return None
    headers: Message | None = part
    if part.get_content_type() == "message/rfc822":
        headers = _inner(part)
    elif part.get_content_type() in ("text/rfc822-headers", "message/rfc822-headers"):
        content = part.get_payload(decode=True)
        raw = content if isinstance(content, bytes) else b""
        headers = email.message_from_bytes(raw, policy=email.policy.default)
    value = str(headers.get("X-Helpdesk-Delivery-Id", "")) if headers is not None else ""
    try:
        return UUID(value.strip()) if value.strip() else None
    except ValueError:
        return None


def _original_recipients(part: Message | None) -> tuple[str, ...]:
    if part is None or part.get_content_type() != "message/rfc822":
        return ()
    original = _inner(part)
    if original is None:
        return ()
    return tuple(a.lower() for _, a in getaddresses([str(original.get("To", ""))]) if a)


def _inner(part: Message) -> Message | None:
    """The message a message/rfc822 part carries."""
    inner = part.get_payload()
    first = inner[0] if isinstance(inner, list) and inner else None
    return first if isinstance(first, Message) else None


def _angle(value: str) -> str:
    value = value.strip()
    return value[1:-1].strip() if value.startswith("<") and value.endswith(">") else value


def _fallback_id(message: Message) -> str:
    """A message without a Message-ID still gets one id, the same on a re-send."""
    digest = hashlib.sha256(message.as_bytes()).hexdigest()[:32]
    return f"{digest}@no-message-id"
