"""Webhooks: a JSON POST per message, signed as the Standard Webhooks specification says
(standardwebhooks.com, with its reference library), so a receiver can check it with any
of that spec's libraries.

Headers: `webhook-id` (the delivery id: the same on every retry, so a receiver drops a
copy), `webhook-timestamp` (seconds since the epoch, when sent) and `webhook-signature`
(`v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`). A receiver refuses a timestamp
more than five minutes away from its clock, so a captured request cannot be replayed later,
and one it has seen the id of.
"""

import asyncio
import ipaddress
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.channels import Failed, Outgoing, Result, Sent
from notifications.domain.retries import Failure

__all__ = ["WebhookSender", "WebhookVerificationError", "body_of", "verify"]


def body_of(item: Outgoing) -> dict[str, Any]:
    """What a receiver gets: the message, rendered, and what it is about."""
    return {
        "id": str(item.delivery_id),
        "type": "notification",
        "event_type": item.event_type,
        "template": item.template,
        "tenant_id": item.tenant_id,
        "recipient": item.recipient,
        "ticket": {"id": str(item.ticket_id), "number": item.ticket_number}
        if item.ticket_id is not None else None,
        "subject": item.rendered.subject,
        "text": item.rendered.text,
        "language": item.rendered.language,
        "sent_at": item.sent_at.isoformat(),
    }  # fmt: skip


def verify(secret: str, body: bytes, headers: dict[str, str]) -> Any:
    """What a receiver does (here for tests and as documentation): the parsed body, or
    WebhookVerificationError for a bad signature or a timestamp out of tolerance."""
    return Webhook(secret).verify(body, headers)


class WebhookSender:
    """POSTs each message to its URL, `concurrency` at a time. 2xx is delivered; 408, 429,
    5xx and network errors are temporary; any other status is permanent (the receiver
    refuses it: a wrong URL, 410 Gone)."""

    def __init__(
        self, secret: str, *, timeout_s: float = 10.0, concurrency: int = 16,
        private_targets: bool = False,
    ) -> None:  # fmt: skip
        self._webhook = Webhook(secret)
        self._timeout_s = timeout_s
        self._concurrency = concurrency
        self._private_targets = private_targets

    async def send_many(self, items: Sequence[Outgoing]) -> list[Result]:
        gate = asyncio.Semaphore(self._concurrency)
        async with httpx.AsyncClient(timeout=self._timeout_s, follow_redirects=False) as client:

            async def one(item: Outgoing) -> Result:
                async with gate:
                    return await self._post(client, item)

            return list(await asyncio.gather(*(one(i) for i in items)))

    async def _post(self, client: httpx.AsyncClient, item: Outgoing) -> Result:
        if not self._private_targets and (why := await _internal(item.address)):
            return Failed(Failure.PERMANENT, why)
        body = json.dumps(body_of(item), ensure_ascii=False, separators=(",", ":"))
        now = datetime.now(UTC)  # when it leaves: receivers refuse old timestamps
        headers = {
            "content-type": "application/json",
            "user-agent": "helpdesk-notifications",
            "webhook-id": str(item.delivery_id),
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._webhook.sign(str(item.delivery_id), now, body),
        }
        if item.traceparent is not None:
            headers["traceparent"] = item.traceparent
        try:
            response = await client.post(item.address, content=body.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Failed(Failure.TEMPORARY, f"{type(exc).__name__}: {exc}"[:500])
        status = response.status_code
        if 200 <= status < 300:
            return Sent(f"HTTP {status}")
        kind = Failure.TEMPORARY if status in (408, 429) or status >= 500 else Failure.PERMANENT
        return Failed(kind, f"HTTP {status}")  # not the body: what a host says stays there


async def _internal(url: str) -> str:
    """Why `url` may not be called (it reaches this network, not the internet), or "".
    Agents set their own webhook URLs: without this one could make the service call its
    neighbours or the cloud's metadata address."""
    parts = urlsplit(url)
    try:
        found = await asyncio.get_running_loop().getaddrinfo(
            parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
        )
    except OSError as exc:
        return f"{parts.hostname} does not resolve: {exc}"
    for *_, sockaddr in found:
        ip = ipaddress.ip_address(sockaddr[0])
        if not ip.is_global:
            return f"refused: {parts.hostname} is a private address ({ip})"
    return ""
