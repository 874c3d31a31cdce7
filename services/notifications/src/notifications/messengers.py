"""Messengers and SMS behind one interface (`channels.Sender`): an adapter turns a rendered
message into its provider's API call and its answer into a `Result`. Telegram's Bot API is
the one built; WhatsApp Cloud API or an SMS gateway is another class like it, registered
under the `messenger` channel (or a channel of its own) in bootstrap."""

import asyncio
from collections.abc import Sequence

import httpx

from notifications.channels import Failed, Outgoing, Result, Sent
from notifications.domain.retries import Failure

TELEGRAM_TEXT_LIMIT = 4096


class TelegramSender:
    """`sendMessage` to the person's chat id (their contact's `messenger_id`). Telegram
    answers `{"ok": true, ...}`, or `ok: false` with an `error_code`: 429 (too many
    requests) and 5xx are temporary; 400 (chat not found) and 403 (the bot was blocked)
    are permanent."""

    def __init__(
        self, token: str, *, api_base: str = "https://api.telegram.org", timeout_s: float = 10.0,
        concurrency: int = 8,
    ) -> None:  # fmt: skip
        self._url = f"{api_base.rstrip('/')}/bot{token}/sendMessage"
        self._timeout_s = timeout_s
        self._concurrency = concurrency

    async def send_many(self, items: Sequence[Outgoing]) -> list[Result]:
        gate = asyncio.Semaphore(self._concurrency)
        async with httpx.AsyncClient(timeout=self._timeout_s) as client:

            async def one(item: Outgoing) -> Result:
                async with gate:
                    return await self._send(client, item)

            return list(await asyncio.gather(*(one(i) for i in items)))

    async def _send(self, client: httpx.AsyncClient, item: Outgoing) -> Result:
        text = f"{item.rendered.subject}\n\n{item.rendered.text}".strip()
        if len(text) > TELEGRAM_TEXT_LIMIT:
            text = text[: TELEGRAM_TEXT_LIMIT - 1] + "…"
        payload = {"chat_id": item.address, "text": text, "disable_web_page_preview": True}
        try:
            response = await client.post(self._url, json=payload)
            answer = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            return Failed(Failure.TEMPORARY, f"{type(exc).__name__}: {exc}"[:500])
        if isinstance(answer, dict) and answer.get("ok"):
            message = answer.get("result", {}).get("message_id")
            return Sent(f"telegram message {message}")
        code = answer.get("error_code", response.status_code) if isinstance(answer, dict) else 0
        detail = answer.get("description", "") if isinstance(answer, dict) else response.text
        kind = Failure.TEMPORARY if code == 429 or code >= 500 else Failure.PERMANENT
        return Failed(kind, f"telegram {code}: {str(detail)[:300]}")
