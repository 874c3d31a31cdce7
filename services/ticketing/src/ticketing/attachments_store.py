"""The attachments table: uploads, and the tickets they are attached to."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_contracts import AttachmentRef
from helpdesk_runtime.db import Connection
from ticketing.domain.attachments import AttachmentPolicy, AttachmentRefusedError


async def record_upload(
    conn: Connection, tenant_id: str, ref: AttachmentRef, storage_key: str, uploaded_by: str
) -> tuple[AttachmentRef, bool]:
    """The upload recorded, and True; or, when its id was taken already (an upload re-sent
    with its Idempotency-Key), the one recorded first, and False."""
    row = await conn.fetchrow(
        "INSERT INTO attachments (tenant_id, attachment_id, filename, content_type, size,"
        " sha256, storage_key, uploaded_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (tenant_id, attachment_id) DO NOTHING RETURNING *",
        tenant_id, ref.attachment_id, ref.filename, ref.content_type, ref.size, ref.sha256,
        storage_key, uploaded_by,
    )  # fmt: skip
    if row is not None:
        return _ref(row), True
    first = await conn.fetchrow(
        "SELECT * FROM attachments WHERE tenant_id = $1 AND attachment_id = $2",
        tenant_id, ref.attachment_id,
    )  # fmt: skip
    return _ref(first), False


async def upload(conn: Connection, tenant_id: str, attachment_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        "SELECT * FROM attachments WHERE tenant_id = $1 AND attachment_id = $2",
        tenant_id, attachment_id,
    )  # fmt: skip
    return None if row is None else dict(row)


def _ref(row: Any) -> AttachmentRef:
    return AttachmentRef(attachment_id=row["attachment_id"], filename=row["filename"],
                         content_type=row["content_type"], size=row["size"],
                         sha256=row["sha256"])  # fmt: skip


async def attach(
    conn: Connection, tenant_id: str, ticket_id: UUID, ids: Sequence[UUID],
    policy: AttachmentPolicy, *, claimed: Sequence[AttachmentRef] = (),
) -> list[AttachmentRef]:  # fmt: skip
    """The references of these uploads of the tenant, now attached to the ticket; refused
    when one is unknown, belongs to another ticket, does not match what a publisher claims
    of it (`claimed`: the same ids, with size and checksum), or the ticket's files would
    exceed the limit. Locks the rows until the caller commits."""
    if not ids:
        return []
    if len(set(ids)) != len(ids):
        raise AttachmentRefusedError("invalid", "an attachment is listed twice")
    rows = {
        r["attachment_id"]: r
        for r in await conn.fetch(
            "SELECT * FROM attachments WHERE tenant_id = $1 AND attachment_id = ANY($2::uuid[])"
            " ORDER BY attachment_id FOR UPDATE",
            tenant_id,
            list(ids),
        )
    }
    refs = []
    for attachment_id in ids:
        row = rows.get(attachment_id)
        if row is None:
            raise AttachmentRefusedError("invalid", f"no upload {attachment_id}; upload it first")
        if row["ticket_id"] not in (None, ticket_id):
            raise AttachmentRefusedError(
                "invalid", f"attachment {attachment_id} belongs to another ticket"
            )
        refs.append(_ref(row))
    for ref, said in zip(refs, claimed, strict=False):
        if (said.size, said.sha256) != (ref.size, ref.sha256):
            raise AttachmentRefusedError(
                "invalid", f"attachment {ref.attachment_id} is not the file that was uploaded"
            )
    new = [r for r in refs if rows[r.attachment_id]["ticket_id"] is None]
    if new:
        total: int = await conn.fetchval(
            "SELECT coalesce(sum(size), 0) FROM attachments"
            " WHERE tenant_id = $1 AND ticket_id = $2",
            tenant_id, ticket_id,
        )  # fmt: skip
        policy.fits(total, sum(r.size for r in new))
        await conn.execute(
            "UPDATE attachments SET ticket_id = $3 WHERE tenant_id = $1"
            " AND attachment_id = ANY($2::uuid[])",
            tenant_id, [r.attachment_id for r in new], ticket_id,
        )  # fmt: skip
    return refs


async def unknown_files(
    conn: Connection, claims: Sequence[tuple[str, Sequence[AttachmentRef]]]
) -> dict[int, str]:
    """Which of these (tenant, references) claims, by index, name a file that is not one
    of the tenant's uploads as uploaded (id, size and checksum), and why: an intake
    message may only reference what was uploaded to us."""
    wanted = [(i, tenant, ref) for i, (tenant, refs) in enumerate(claims) for ref in refs]
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT a.tenant_id, a.attachment_id, a.size, a.sha256 FROM attachments a"
        " JOIN unnest($1::text[], $2::uuid[]) AS x(t, i)"
        " ON a.tenant_id = x.t AND a.attachment_id = x.i"
        " FOR SHARE OF a",  # held until the batch binds them: the sweep skips them
        [t for _, t, _ in wanted], [r.attachment_id for _, _, r in wanted],
    )  # fmt: skip
    stored = {(r["tenant_id"], r["attachment_id"]): (r["size"], r["sha256"]) for r in rows}
    reasons: dict[int, str] = {}
    for i, tenant, ref in wanted:
        found = stored.get((tenant, ref.attachment_id))
        if found is None:
            reasons.setdefault(i, f"no upload {ref.attachment_id}; upload the file first")
        elif found != (ref.size, ref.sha256):
            reasons.setdefault(i, f"attachment {ref.attachment_id} is not the file uploaded")
    return reasons


async def bind(
    conn: Connection, attached: Sequence[tuple[str, UUID, Sequence[AttachmentRef]]]
) -> None:
    """Record the (tenant, ticket) each file went to (the first, if several claim it)."""
    rows = [(tenant, ticket, ref.attachment_id) for tenant, ticket, refs in attached
            for ref in refs]  # fmt: skip
    if not rows:
        return
    await conn.execute(
        "UPDATE attachments a SET ticket_id = x.ticket"
        " FROM unnest($1::text[], $2::uuid[], $3::uuid[]) AS x(tenant, ticket, id)"
        " WHERE a.tenant_id = x.tenant AND a.attachment_id = x.id AND a.ticket_id IS NULL",
        [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
    )  # fmt: skip


async def forget_files_of(conn: Connection, tenant_id: str, tickets: Sequence[UUID]) -> list[str]:
    """Delete the rows of the files attached to these tickets; their storage keys, whose
    bytes the caller deletes."""
    rows = await conn.fetch(
        "DELETE FROM attachments WHERE tenant_id = $1 AND ticket_id = ANY($2::uuid[])"
        " RETURNING storage_key",
        tenant_id, list(tickets),
    )  # fmt: skip
    return [r["storage_key"] for r in rows]


async def forget_unattached(conn: Connection, uploaded_before: datetime, limit: int) -> list[str]:
    """Delete up to `limit` uploads that no ticket took and that came before
    `uploaded_before`; their storage keys, whose bytes the caller deletes. An upload a
    request or an intake batch is attaching right now is locked, and skipped."""
    rows = await conn.fetch(
        """
        DELETE FROM attachments a USING (
            SELECT tenant_id, attachment_id FROM attachments
            WHERE ticket_id IS NULL AND uploaded_at < $1
            ORDER BY uploaded_at LIMIT $2
            FOR UPDATE SKIP LOCKED
        ) AS old
        WHERE a.tenant_id = old.tenant_id AND a.attachment_id = old.attachment_id
        RETURNING a.storage_key
        """,
        uploaded_before, limit,
    )  # fmt: skip
    return [r["storage_key"] for r in rows]


async def files_of(
    conn: Connection, tenant_id: str, tickets: Sequence[UUID]
) -> list[dict[str, Any]]:
    """What is known of the files attached to these tickets (not their bytes)."""
    rows = await conn.fetch(
        "SELECT attachment_id, ticket_id, filename, content_type, size, sha256, uploaded_by,"
        " uploaded_at FROM attachments WHERE tenant_id = $1 AND ticket_id = ANY($2::uuid[])"
        " ORDER BY uploaded_at",
        tenant_id, list(tickets),
    )  # fmt: skip
    return [dict(r) for r in rows]
