"""The rows behind a data subject's rights: erasure records, and where a person's data is."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_runtime.db import Connection


@dataclass(frozen=True)
class Erasure:
    """An erasure as recorded: who asked, when, which customer; never what was erased."""

    customer_id: str
    erased_subjects: tuple[str, ...]
    requested_by: str
    requested_at: datetime
    tickets: int
    """Tickets whose personal data it erased (they stay, with their statistics)."""
    files: int
    """Attachments deleted."""


async def erasure(conn: Connection, tenant_id: str, customer_id: str) -> Erasure | None:
    """The erasure of this customer, or of a customer it was merged into."""
    row = await conn.fetchrow(
        "SELECT * FROM erasures WHERE tenant_id = $1 AND $2 = ANY(erased_subjects)",
        tenant_id, customer_id,
    )  # fmt: skip
    return None if row is None else _erasure(row)


async def record(conn: Connection, tenant_id: str, done: Erasure) -> None:
    await conn.execute(
        "INSERT INTO erasures (tenant_id, customer_id, erased_subjects, requested_by,"
        " requested_at, tickets, files) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        tenant_id, done.customer_id, list(done.erased_subjects), done.requested_by,
        done.requested_at, done.tickets, done.files,
    )  # fmt: skip


async def erased_subjects(conn: Connection) -> list[tuple[str, list[str]]]:
    """Every erasure's tenant and subjects (a rebuild forgets them again)."""
    rows = await conn.fetch("SELECT tenant_id, erased_subjects FROM erasures")
    return [(r["tenant_id"], list(r["erased_subjects"])) for r in rows]


async def holds_data_of(conn: Connection, tenant_id: str, subject_id: str) -> bool:
    """Whether any event names this person as its data subject."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM events WHERE tenant_id = $1 AND subject_id = $2)",
        tenant_id, subject_id,
    )  # fmt: skip
    return found


@dataclass(frozen=True)
class Streams:
    """Where a person's data is in the event log: the tickets they requested, and their
    records in the directory."""

    tickets: list[UUID]
    directory: list[UUID]


async def streams_of(conn: Connection, tenant_id: str, subjects: Sequence[str]) -> Streams:
    """The streams whose first event names one of these people as its data subject."""
    rows = await conn.fetch(
        "SELECT stream_id, event_type FROM events WHERE tenant_id = $1"
        " AND subject_id = ANY($2::text[]) AND version = 1 ORDER BY position",
        tenant_id, list(subjects),
    )  # fmt: skip
    opened = [r["stream_id"] for r in rows if r["event_type"] == "TicketOpened"]
    return Streams(opened, [r["stream_id"] for r in rows if r["event_type"] != "TicketOpened"])


def _erasure(row: Any) -> Erasure:
    return Erasure(
        customer_id=row["customer_id"],
        erased_subjects=tuple(row["erased_subjects"]),
        requested_by=row["requested_by"],
        requested_at=row["requested_at"],
        tickets=row["tickets"],
        files=row["files"],
    )
