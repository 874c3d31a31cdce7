"""What files a ticket accepts: the type is read from the bytes, never from the name.

Images, PDF, plain text (logs, CSV) and the office formats, by default; everything else
(executables, archives of unknown content, HTML served as a page) is refused. Text has no
magic number: it is text when it is UTF-8 without NUL bytes, and it is served as
`text/plain` (and as a download), so an uploaded page or SVG never runs in a browser.
"""

from dataclasses import dataclass
from pathlib import PurePath
from uuid import UUID, uuid5

import puremagic

_IDS = UUID("0d6f3a52-8e4b-4c1a-9a57-2f1e6b9c4d83")
TEXT = "text/plain"
DEFAULT_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", TEXT,
    "application/zip",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
})  # fmt: skip


def attachment_id_for_idempotency_key(tenant_id: str, key: str) -> UUID:
    """The id of an upload sent with an Idempotency-Key: sent again (a client's retry), it
    names the file stored the first time instead of storing another."""
    return uuid5(_IDS, f"upload\x1f{tenant_id}\x1f{key}")


class AttachmentRefusedError(Exception):
    """A file or a reference refused; `reason` says which kind (for the HTTP status)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # "too_large", "unsupported_type" or "invalid"


@dataclass(frozen=True)
class AttachmentPolicy:
    max_file_bytes: int
    max_ticket_bytes: int
    allowed_types: frozenset[str] = DEFAULT_TYPES

    def content_type(self, data: bytes, filename: str) -> str:
        """The type of these bytes, if allowed; AttachmentRefusedError otherwise."""
        if not data:
            raise AttachmentRefusedError("invalid", f"{filename!r} is empty")
        if len(data) > self.max_file_bytes:
            raise AttachmentRefusedError(
                "too_large", f"{filename!r} is over the limit of {self.max_file_bytes} bytes"
            )
        found = sniff(data, filename)
        if found not in self.allowed_types:
            raise AttachmentRefusedError(
                "unsupported_type",
                f"{filename!r} is {found or 'of no known type'}; allowed: "
                + ", ".join(sorted(self.allowed_types)),
            )
        return found

    def fits(self, ticket_bytes: int, adding: int) -> None:
        if ticket_bytes + adding > self.max_ticket_bytes:
            raise AttachmentRefusedError(
                "too_large",
                f"the ticket's files would take {ticket_bytes + adding} bytes; the limit is"
                f" {self.max_ticket_bytes}",
            )


def sniff(data: bytes, filename: str) -> str:
    """The content type the bytes show ("" when none is known). Among the types one
    signature stands for (an OOXML document is a ZIP), the file name's extension picks."""
    try:
        candidates = puremagic.magic_string(data[:65536])
    except (puremagic.PureError, ValueError):
        candidates = []
    if not candidates:
        return TEXT if _is_text(data) else ""
    best = max(c.confidence for c in candidates)
    top = [c for c in candidates if c.confidence == best and c.mime_type]
    suffix = PurePath(filename).suffix.lower()
    chosen = next((c for c in top if c.extension == suffix), None)
    if chosen is None and any(c.byte_match.startswith(b"PK\x03\x04") for c in top):
        return "application/zip"  # a container whose name does not say which
    return (chosen or top[0]).mime_type if top else ""


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
