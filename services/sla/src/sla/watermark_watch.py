"""Breaches wait for ticketing's watermarks; a watermark that stops moving must not hold every
breach silently. This watch measures each partition's watermark lag and the breaches it
holds, exports both as metrics (for an alert rule), and logs an error while any partition
with held breaches is stalled.
"""

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

import asyncpg
from prometheus_client import CollectorRegistry, Gauge

from helpdesk_runtime.db import Connection
from helpdesk_runtime.logging import get_logger
from sla.store import LATENESS, PARTITIONS

log = get_logger(__name__)


@dataclass(frozen=True)
class PartitionMark:
    partition: int
    up_to: datetime | None
    """None: no watermark read on this partition yet."""
    lag_s: float | None
    held: int
    """Running clocks whose deadline the wall clock has passed but the watermark has not."""
    stalled: bool


async def partition_marks(conn: Connection, now: datetime, stall_s: float) -> list[PartitionMark]:
    """Every partition's watermark, its lag behind `now`, and the breaches it holds."""
    rows = await conn.fetch(
        f"""
        SELECT p.partition, w.up_to,
            (SELECT count(*) FROM clocks c
             WHERE c.partition = p.partition AND c.state = 'running' AND c.breached_at IS NULL
                AND c.deadline <= $1
                AND (w.up_to IS NULL
                     OR c.deadline + {LATENESS} > w.up_to)) AS held
        FROM generate_series(0, $2 - 1) AS p(partition)
        LEFT JOIN watermarks w USING (partition)
        ORDER BY p.partition
        """,
        now,
        PARTITIONS,
    )
    marks = []
    for r in rows:
        lag = None if r["up_to"] is None else max((now - r["up_to"]).total_seconds(), 0.0)
        stalled = r["held"] > 0 and (lag is None or lag > stall_s)
        marks.append(PartitionMark(r["partition"], r["up_to"], lag, r["held"], stalled))
    return marks


class WatermarkWatch:
    """Checks every `every_s`; an error log at the start of a stall and every `remind_s`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        clock: Callable[[], datetime],
        registry: CollectorRegistry,
        *,
        stall_s: float,
        every_s: float = 5.0,
        remind_s: float = 300.0,
    ) -> None:
        self._pool = pool
        self._clock = clock
        self._stall_s = stall_s
        self._every_s = every_s
        self._remind_s = remind_s
        self._lag = Gauge(
            "helpdesk_sla_watermark_lag_seconds",
            "How far the last watermark read on a partition is behind the wall clock",
            ["partition"], registry=registry,
        )  # fmt: skip
        self._held = Gauge(
            "helpdesk_sla_breaches_held",
            "Running clocks past their deadline by the wall clock, waiting for the watermark",
            ["partition"], registry=registry,
        )  # fmt: skip
        self._stalled_since: float | None = None
        self._last_said = 0.0

    async def check(self) -> list[PartitionMark]:
        async with self._pool.acquire() as conn:
            marks = await partition_marks(conn, self._clock(), self._stall_s)
        for m in marks:
            self._lag.labels(str(m.partition)).set(-1 if m.lag_s is None else m.lag_s)
            self._held.labels(str(m.partition)).set(m.held)
        self._report([m for m in marks if m.stalled])
        return marks

    def _report(self, stalled: list[PartitionMark]) -> None:
        now = time.monotonic()
        if not stalled:
            if self._stalled_since is not None:
                log.warning("watermarks moving again; held breaches are declared",
                            stalled_for_s=round(now - self._stalled_since))  # fmt: skip
            self._stalled_since = None
            return
        if self._stalled_since is None or now - self._last_said >= self._remind_s:
            self._stalled_since = self._stalled_since or now
            self._last_said = now
            log.error(
                "watermarks stalled: breaches are held until ticketing's watermarks move"
                " (is ticketing's relay or its watermark job running?)",
                partitions=[m.partition for m in stalled],
                held_breaches=sum(m.held for m in stalled),
            )

    async def run(self) -> None:
        while True:
            with suppress(Exception):  # the database away: the next check tells
                await self.check()
            await asyncio.sleep(self._every_s)
