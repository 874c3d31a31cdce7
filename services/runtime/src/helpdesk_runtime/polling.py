"""A background job that publishes what its table says is pending, pass after pass."""

import asyncio
from abc import ABC, abstractmethod
from contextlib import suppress

from helpdesk_runtime.logging import FailureStreak


class PendingPublisher(ABC):
    """Runs `publish_pending` until stopped: again at once while it finds work, after
    `interval_s` when it found none or failed (the broker or the database is away: a run
    of failures is logged in a few lines, and `last_error` tells readiness)."""

    def __init__(self, what: str, interval_s: float) -> None:
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._failures = FailureStreak(what)
        self.last_error: str | None = None

    @abstractmethod
    async def publish_pending(self) -> int:
        """One pass; how many records it published."""

    async def run(self) -> None:
        while not self._stopping.is_set():
            try:
                done = await self.publish_pending()
                self._failures.succeeded()
                self.last_error = None
            except Exception as exc:
                self._failures.failed(exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                done = 0
            if not done:
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), self._interval_s)

    def stop(self) -> None:
        self._stopping.set()
