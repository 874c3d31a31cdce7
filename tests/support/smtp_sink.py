"""An SMTP server for benchmarks, as a process of its own: accepts every message and
writes `<X-Helpdesk-Delivery-Id> <accepted at, epoch seconds>` per message to a file, a
line at a time (one write each, so a kill -9 loses no accepted line).

    python tests/support/smtp_sink.py <port> <file>
"""

import asyncio
import os
import re
import sys
import time
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

_DELIVERY = re.compile(rb"^X-Helpdesk-Delivery-Id: *([0-9a-f-]{36})", re.MULTILINE | re.IGNORECASE)


class Sink:
    def __init__(self, path: str) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    async def handle_DATA(self, _server: SMTP, _session: Session, envelope: Envelope) -> str:
        found = _DELIVERY.search(envelope.original_content or b"")
        delivery = found[1].decode() if found else "-"
        os.write(self._fd, f"{delivery} {time.time():.3f}\n".encode())
        return "250 2.0.0 OK"


async def main(port: int, path: str) -> None:
    sink = Sink(path)

    def protocol() -> Any:
        return SMTP(sink, hostname="sink", decode_data=False)

    server = await asyncio.get_running_loop().create_server(protocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
