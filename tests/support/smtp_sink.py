"""An SMTP server for benchmarks, as a process of its own: accepts every message and
writes `<X-Helpdesk-Delivery-Id> <accepted at, epoch seconds>` per message to a file, a
line at a time (one write each, so a kill -9 loses no accepted line).

    python tests/support/smtp_sink.py <port> <file>

It stands for the mail provider, which in production runs on machines of its own; here it
shares the two cores with the service, PostgreSQL and Kafka. So it speaks just enough SMTP
(RFC 5321: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) as a bare asyncio protocol, costing
the machine about a fifth of what aiosmtpd's full server did (the benchmark prints its CPU
per message). The tests' SMTP server (support/mail.py) is aiosmtpd.
"""

import asyncio
import os
import re
import sys
import time

_DELIVERY = re.compile(rb"^X-Helpdesk-Delivery-Id: *([0-9a-f-]{36})", re.MULTILINE | re.IGNORECASE)
_END = b"\r\n.\r\n"
_REPLIES = {
    b"EHLO": b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n",
    b"HELO": b"250 sink\r\n",
    b"MAIL": b"250 2.1.0 OK\r\n",
    b"RCPT": b"250 2.1.5 OK\r\n",
    b"RSET": b"250 2.0.0 OK\r\n",
    b"NOOP": b"250 2.0.0 OK\r\n",
    b"DATA": b"354 End data with <CR><LF>.<CR><LF>\r\n",
    b"QUIT": b"221 2.0.0 Bye\r\n",
}


class SinkProtocol(asyncio.Protocol):
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._buffer = b""
        self._in_data = False
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"220 sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        replies: list[bytes] = []
        while True:
            if self._in_data:
                end = self._buffer.find(_END)
                if end < 0:
                    break
                message, self._buffer = self._buffer[:end], self._buffer[end + len(_END) :]
                found = _DELIVERY.search(message)
                delivery = found[1].decode() if found else "-"
                os.write(self._fd, f"{delivery} {time.time():.3f}\n".encode())
                replies.append(b"250 2.0.0 OK\r\n")
                self._in_data = False
                continue
            end = self._buffer.find(b"\r\n")
            if end < 0:
                break
            line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
            verb = line[:4].upper()
            replies.append(_REPLIES.get(verb, b"500 5.5.2 Unknown command\r\n"))
            if verb == b"DATA":
                self._in_data = True
            elif verb == b"QUIT":
                self._transport.write(b"".join(replies))
                self._transport.close()
                return
        if replies:
            self._transport.write(b"".join(replies))


async def main(port: int, path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SinkProtocol(fd), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
