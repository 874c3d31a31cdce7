"""The files of customers' mail, uploaded to ticketing's API (`POST /v1/attachments`).

The intake takes only references to files uploaded there (contracts' README:
Attachments), and no service reads another's database or storage: so the inbound mail
path uploads each file over HTTP before it publishes the message that lists them. It signs
in with a service token (helpdesk_runtime.tokens.ServiceTokens: this service, the mail's
tenant, ticketing's purpose "upload"), as no agent stands behind a customer's email.

Each upload carries an Idempotency-Key derived from the message and the file: a message
its sender delivers again after a failure names the files stored the first time, never a
second copy.
"""

import hashlib

import httpx

from helpdesk_contracts import AttachmentRef
from helpdesk_runtime import trace
from helpdesk_runtime.tokens import ServiceTokens
from notifications.inbound import MailFile

TICKETING, UPLOAD = "ticketing", "upload"
"""The service and the purpose our service tokens name (ticketing's upload route)."""
REFUSED = {409: "not accepted", 413: "too large", 415: "a type not accepted", 422: "not accepted"}
"""Ticketing's answers that refuse a file for good, and how to say why: its limits (413,
415, 422: empty), or other bytes stored under the file's key (409: trying again would not
help, and the message must not wait for ever)."""


class FilesUnavailableError(Exception):
    """Ticketing could not take a file now (away, overloaded, not configured): the mail is
    answered 4xx, and its sender delivers it again later."""


def upload_key(message_id: str, position: int, file: MailFile) -> str:
    """The Idempotency-Key of a mail's file: the same message, position and bytes give the
    same key (a hash: a Message-ID can be longer than a key may be)."""
    named = f"{message_id}\x1f{position}\x1f{file.sha256}".encode()
    return "inbound-mail:" + hashlib.sha256(named).hexdigest()


class TicketingFiles:
    """Uploads files to ticketing's API for a tenant."""

    def __init__(self, base_url: str, tokens: ServiceTokens, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)
        self._tokens = tokens

    async def upload(self, tenant_id: str, file: MailFile, key: str) -> AttachmentRef | str:
        """The file's reference; or why ticketing refuses it for good (REFUSED). Raises
        FilesUnavailableError when it may take it later."""
        token = self._tokens.mint(TICKETING, UPLOAD, tenant_id)
        try:
            response = await self._client.post(
                "/v1/attachments",
                files={"file": (file.name, file.data, "application/octet-stream")},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Idempotency-Key": key,
                    **trace.propagated(),
                },
            )
        except httpx.HTTPError as exc:
            raise FilesUnavailableError(f"ticketing unreachable ({type(exc).__name__})") from exc
        if response.status_code in (200, 201):
            return AttachmentRef.model_validate_json(response.content)
        if response.status_code in REFUSED:
            return REFUSED[response.status_code]
        # Not the file's fault (401/403: the service token or tenant; 5xx, 429: ticketing).
        raise FilesUnavailableError(f"ticketing answered {response.status_code}")

    async def aclose(self) -> None:
        await self._client.aclose()
