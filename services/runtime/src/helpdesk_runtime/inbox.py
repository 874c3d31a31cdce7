"""The idempotent consumer's inbox: claimed in the same transaction as the effect."""

from collections.abc import Sequence
from uuid import UUID

from helpdesk_runtime.db import Connection


async def claim(conn: Connection, consumer: str, events: Sequence[tuple[UUID, str]]) -> set[UUID]:
    """Record (event_id, tenant_id) pairs for `consumer`; returns the ids not seen before.

    One statement for the whole batch: the rows commit or roll back with the effects,
    so an event is either applied and remembered, or neither.
    """
    if not events:
        return set()
    rows = await conn.fetch(
        """
        INSERT INTO inbox (consumer, event_id, tenant_id)
        SELECT $1, i, t FROM unnest($2::uuid[], $3::text[]) AS x(i, t)
        ON CONFLICT DO NOTHING
        RETURNING event_id
        """,
        consumer,
        [i for i, _ in events],
        [t for _, t in events],
    )
    return {r["event_id"] for r in rows}
