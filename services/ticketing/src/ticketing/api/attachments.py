"""Files: upload one (then reference it from a reply or a note), download one."""

import hashlib
from typing import Annotated, Any
from urllib.parse import quote
from uuid import UUID, uuid4

from fastapi import APIRouter, Depends, File, Header, HTTPException, Response, UploadFile, status

from helpdesk_contracts import AttachmentRef
from helpdesk_runtime.auth import Principal
from helpdesk_runtime.problems import problem_responses
from ticketing import attachments_store
from ticketing.api.deps import ApiDeps, http_errors
from ticketing.domain.attachments import (
    AttachmentRefusedError,
    attachment_id_for_idempotency_key,
)

CHUNK = 1 << 20
UPLOAD = "upload"
"""The purpose a service token names to upload files here ("ticketing:upload")."""


def attachments_router(deps: ApiDeps) -> APIRouter:
    api = APIRouter(tags=["attachments"])
    Agent = Annotated[Principal, Depends(deps.auth.principal)]  # noqa: N806
    # An agent, or one of our services with a service token for uploads (tokens.py).
    Uploader = Annotated[Principal, Depends(deps.auth.principal_or_service(UPLOAD))]  # noqa: N806

    @api.post(
        "/v1/attachments",
        status_code=status.HTTP_201_CREATED,
        response_model=AttachmentRef,
        responses={
            200: {"description": "Uploaded before with this Idempotency-Key"},
            **problem_responses(409, 413, 415),
        },
    )
    async def upload(
        file: Annotated[UploadFile, File(description="The file (multipart/form-data)")],
        caller: Uploader, response: Response,
        idempotency_key: Annotated[str | None, Header(
            min_length=1, max_length=200,
            description="The same file re-sent with the same key is stored once",
        )] = None,
    ) -> Any:  # fmt: skip
        """Upload a file; reference its `attachment_id` from a reply, a note or an intake
        message. Its type is read from the bytes: 415 when it is not allowed, 413 when it is
        over the limit. Downloads carry the same tenant check. Re-sent with its
        `Idempotency-Key` (after a timeout, say), it answers the file stored the first time
        (200), or 409 if these are other bytes. Besides agents, our services upload with a
        service token (the notifications service: the files of customers' mail)."""
        policy = deps.attachments
        name = (file.filename or "file").replace("\\", "/").rsplit("/", 1)[-1] or "file"
        async with http_errors():
            data = await _read_at_most(file, policy.max_file_bytes)
            content_type = policy.content_type(data, name)
            ref = AttachmentRef(
                attachment_id=(
                    attachment_id_for_idempotency_key(caller.tenant_id, idempotency_key)
                    if idempotency_key else uuid4()
                ),
                filename=name[:255], content_type=content_type, size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
            )  # fmt: skip
        # The bytes first: a row is written only for a file stored whole. Their key names
        # their checksum, so bytes re-sent under a taken id never replace a row's bytes.
        key = f"{caller.tenant_id}/{ref.attachment_id}/{ref.sha256}"
        await deps.blobs().put(key, data, content_type)
        async with deps.transaction() as uow:
            stored, created = await attachments_store.record_upload(
                uow.conn, caller.tenant_id, ref, key, caller.agent_id
            )
        if stored.sha256 != ref.sha256:
            await deps.blobs().delete(key)  # the id's row holds other bytes, under its key
            raise HTTPException(
                status.HTTP_409_CONFLICT, "this Idempotency-Key was used for another file"
            )
        response.headers["Location"] = f"/v1/attachments/{ref.attachment_id}"
        if not created:
            response.status_code = status.HTTP_200_OK
        return stored

    @api.get(
        "/v1/attachments/{attachment_id}",
        response_class=Response,
        responses={
            200: {
                "description": "The bytes, with the type found in them",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            **problem_responses(404),
        },
    )
    async def download(attachment_id: UUID, caller: Agent) -> Response:
        """The file's bytes, as a download (never shown inline: an uploaded page does not
        run in the agent's browser)."""
        async with deps.connection() as conn:
            row = await attachments_store.upload(conn, caller.tenant_id, attachment_id)
        data = None if row is None else await deps.blobs().get(row["storage_key"])
        if row is None or data is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"attachment {attachment_id} not found")
        return Response(data, media_type=row["content_type"], headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(row['filename'])}",
            "X-Content-Type-Options": "nosniff",
            "ETag": f'"{row["sha256"]}"',
            "Cache-Control": "private, max-age=86400, immutable",
        })  # fmt: skip

    return api


async def _read_at_most(file: UploadFile, limit: int) -> bytes:
    """The whole file, refused as soon as it passes `limit` (not read to the end)."""
    parts, size = [], 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > limit:
            raise AttachmentRefusedError(
                "too_large", f"{file.filename!r} is over the limit of {limit} bytes"
            )
        parts.append(chunk)
    return b"".join(parts)
