"""Wakes waiters when events are appended: one LISTEN connection serves every waiter."""

import asyncio
from contextlib import suppress

import asyncpg

from helpdesk_runtime.logging import get_logger

log = get_logger(__name__)


class AppendFeed:
    """`await feed.wait(timeout)` returns when something was appended (or at the timeout)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="append-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, timeout_s: float) -> None:
        async with self._changed:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def _listen(self) -> None:
        while True:  # reconnects when the database connection drops
            try:
                async with self._pool.acquire() as conn:
                    await conn.add_listener("events_appended", self._on_notify)
                    try:
                        await asyncio.Event().wait()  # until cancelled
                    finally:
                        await conn.remove_listener("events_appended", self._on_notify)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("append feed lost its connection", error=str(exc))
                await asyncio.sleep(1.0)

    def _on_notify(self, *_: object) -> None:
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()
