"""What every channel is given to send, and what it answers for each message."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from notifications.domain.retries import Failure
from notifications.rendering import Rendered


@dataclass(frozen=True)
class Outgoing:
    """One rendered message for one person on one channel."""

    delivery_id: UUID
    """Stable per (event, recipient, channel): receivers deduplicate by it."""
    tenant_id: str
    recipient: str
    address: str
    """Where, on this channel: an email address, a webhook URL, a messenger chat id."""
    rendered: Rendered
    event_type: str
    template: str
    ticket_id: UUID | None
    ticket_number: int | None
    auto_submitted: str | None
    """RFC 3834 for mail: "auto-replied" for the acknowledgement, "auto-generated" for
    notices, None for an agent's own reply."""
    sent_at: datetime
    unsubscribe_url: str | None = None
    """One-click unsubscribe (RFC 8058), for messages that are not transactional."""
    traceparent: str | None = None
    """The sending span's W3C trace context, for a receiver that continues the trace."""


@dataclass(frozen=True)
class Sent:
    detail: str


@dataclass(frozen=True)
class Failed:
    failure: Failure
    detail: str


Result = Sent | Failed


class Sender(Protocol):
    """A channel: sends a batch, one result per message, in order, never raising for a
    message's failure (a temporary one is retried, a permanent one is a dead letter)."""

    async def send_many(self, items: Sequence[Outgoing]) -> list[Result]: ...
