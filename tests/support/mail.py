"""A real SMTP server for the tests (the service's own mail catcher, aiosmtpd), in-process."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from email.message import EmailMessage
from uuid import uuid4

from notifications.mailcatcher import MailCatcher, serve

from support.service import free_port


class Mailbox(MailCatcher):
    port: int

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if str(m["To"]) == address]

    async def wait_for(
        self, address: str, count: int = 1, timeout_s: float = 60
    ) -> list[EmailMessage]:
        """The messages to `address`, once there are `count` of them."""
        async with asyncio.timeout(timeout_s):
            while len(self.to(address)) < count:
                self.received.clear()
                await self.received.wait()
        return self.to(address)


@asynccontextmanager
async def smtp_server() -> AsyncIterator[Mailbox]:
    box = Mailbox()
    box.port = free_port()
    server = await serve(box, "127.0.0.1", box.port)
    try:
        yield box
    finally:
        server.close()
        await server.wait_closed()


def reply_to(mail: EmailMessage, body: str, **headers: str) -> EmailMessage:
    """What the recipient's mail program sends when they answer `mail` (more headers as
    keyword arguments, `_` for `-`)."""
    reply = EmailMessage()
    reply["From"] = str(mail["To"])
    reply["To"] = str(mail["Reply-To"])
    reply["Subject"] = f"Re: {mail['Subject']}"
    reply["Message-ID"] = f"<{uuid4()}@mail.example.com>"
    reply["In-Reply-To"] = str(mail["Message-ID"])
    reply["References"] = f"{mail['References']} {mail['Message-ID']}"
    for name, value in headers.items():
        reply[name.replace("_", "-")] = value
    reply.set_content(body)
    return reply
