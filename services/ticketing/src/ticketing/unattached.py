"""Uploads no ticket took are deleted, bytes and all, once they are old.

An upload is a first step: a request or an intake message attaches it to a ticket soon
after. One that nothing attached (an agent who closed the form, a publisher whose message
was refused) would otherwise keep its bytes forever, with no ticket to erase it with. It is
kept ATTACHMENT_UNATTACHED_KEEP_HOURS (7 days: as long as the intake topic keeps a message
that may reference it), then deleted by the jobs, a batch per transaction.
"""

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from helpdesk_runtime.blobs import BlobStore
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.service import ServiceRuntime
from ticketing import attachments_store
from ticketing.config import Settings

log = get_logger(__name__)

BATCH = 500


async def sweep(pool: asyncpg.Pool, blobs: BlobStore, uploaded_before: datetime) -> int:
    """Delete the uploads no ticket took that came before `uploaded_before`; how many."""
    swept = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            keys = await attachments_store.forget_unattached(conn, uploaded_before, BATCH)
            # Before the commit: should one fail, the rows stay for the next pass (deleting
            # bytes already gone is harmless), never bytes kept with no row to find them.
            for key in keys:
                await blobs.delete(key)
        swept += len(keys)
        if len(keys) < BATCH:
            return swept


async def run(runtime: ServiceRuntime, settings: Settings, clock: Callable[[], datetime]) -> None:
    """The job: a sweep every ATTACHMENT_SWEEP_INTERVAL_S."""
    keep = timedelta(hours=settings.attachment_unattached_keep_hours)
    while True:
        swept = await sweep(runtime.pool, runtime.blobs, clock() - keep)
        if swept:
            log.info("unattached uploads deleted", uploads=swept)
        await asyncio.sleep(settings.attachment_sweep_interval_s)
