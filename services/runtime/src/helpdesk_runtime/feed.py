"""Wakes waiters when events are appended: one LISTEN connection serves every waiter."""

import asyncio
from contextlib import suppress

import asyncpg

from helpdesk_runtime.logging import FailureStreak, get_logger

log = get_logger(__name__)


class AppendFeed:
    """`await feed.wait(timeout)` returns when something was appended (or at the timeout).

    `generation` counts appends seen; a waiter that read it before looking for new events
    passes it as `after`, so an append between the look and the wait is never slept through.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._streak = FailureStreak("append feed (LISTEN)")
        self.generation = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="append-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task

    async def wait(self, timeout_s: float, after: int | None = None) -> None:
        async with self._changed:
            if after is not None and after != self.generation:
                return
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout_s)

    async def _listen(self) -> None:
        while True:
            try:
                await self._listen_until_lost()
                log.info("append feed lost its connection; listening again")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._streak.failed(exc)
                await asyncio.sleep(1.0)

    async def _listen_until_lost(self) -> None:
        async with self._pool.acquire() as conn:
            lost = asyncio.Event()

            def on_lost(_: object) -> None:
                lost.set()

            conn.add_termination_listener(on_lost)
            await conn.add_listener("events_appended", self._on_notify)
            self._streak.succeeded()
            # Listening (again): the database is back. Wake the waiters at once (the relay
            # backing off after an outage, say); appends made meanwhile sent no notice.
            await self._wake()
            try:
                await lost.wait()  # until cancelled, or the connection dies
            finally:
                # A dead connection is already detached from the pool: nothing to tidy.
                if not lost.is_set():
                    conn.remove_termination_listener(on_lost)
                    await conn.remove_listener("events_appended", self._on_notify)

    def _on_notify(self, *_: object) -> None:
        asyncio.get_running_loop().create_task(self._wake())

    async def _wake(self) -> None:
        async with self._changed:
            self.generation += 1
            self._changed.notify_all()
