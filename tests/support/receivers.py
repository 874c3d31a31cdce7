"""Real HTTP servers standing for a webhook receiver and a messenger's API (Telegram's Bot
API), in-process, on free ports."""

import asyncio
import contextvars
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response

from support.service import free_port


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Answers every request with `status` (and `answer` as JSON, if set), keeping it."""

    base_url: str = ""
    status: int = 200
    answer: dict[str, Any] | None = None
    requests: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, count: int = 1, timeout_s: float = 30) -> list[Received]:
        async with asyncio.timeout(timeout_s):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.requests


@asynccontextmanager
async def http_receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = FastAPI()

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        receiver.requests.append(Received(path, dict(request.headers), await request.body()))
        receiver.arrived.set()
        if receiver.answer is not None:
            return Response(
                content=json.dumps(receiver.answer),
                status_code=receiver.status, media_type="application/json",
            )  # fmt: skip
        return Response(status_code=receiver.status)

    async with served(app) as receiver.base_url:
        yield receiver


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[str]:
    """`app` on a free port of 127.0.0.1 until the block ends; its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    task = asyncio.create_task(server.serve(), context=contextvars.Context())
    async with asyncio.timeout(30):
        while not server.started:  # noqa: ASYNC110  (uvicorn has no event for it)
            await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
