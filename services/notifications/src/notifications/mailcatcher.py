"""A local SMTP server that keeps every message it receives: `make up` runs it on port
1025 and writes each mail to `.local/mail/` as an .eml file (open it with any mail
program); the tests run it in-process and read the messages back.

    python -m notifications.mailcatcher [--host 127.0.0.1] [--port 1025] [--dir .local/mail]
"""

import argparse
import asyncio
import email
import email.policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session


class MailCatcher:
    """aiosmtpd's handler: accepts every message, unless told to refuse (`refusing`, an
    SMTP reply such as "451 4.3.0 try again later") to stand for a failing provider."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        self.messages: list[EmailMessage] = []
        self.refusing: str | None = None
        self.attempts = 0
        """Messages offered (DATA), accepted or refused."""
        self.received = asyncio.Event()

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:  # noqa: N802
        self.attempts += 1
        if self.refusing is not None:
            return self.refusing
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        if self.directory is not None:
            name = f"{len(self.messages):06d}-{message.get('X-Helpdesk-Delivery-Id', 'mail')}.eml"
            (self.directory / name).write_bytes(raw)
        self.received.set()
        return "250 2.0.0 OK: queued"


async def serve(handler: MailCatcher, host: str, port: int) -> asyncio.Server:
    """Listen until the returned server is closed."""
    loop = asyncio.get_running_loop()

    def protocol() -> Any:
        return SMTP(handler, hostname="mailcatcher.local", decode_data=False)

    return await loop.create_server(protocol, host, port)


async def _main(host: str, port: int, directory: Path) -> None:
    server = await serve(MailCatcher(directory), host, port)
    print(f"mail catcher: smtp://{host}:{port}, mail kept in {directory}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--dir", type=Path, default=Path(".local/mail"))
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    asyncio.run(_main(args.host, args.port, args.dir))
