"""Files on tickets end to end: uploaded over HTTP (multipart, by agents or with our
services' tokens, once per Idempotency-Key), referenced from replies, notes and intake
messages by id, size, type and checksum, downloaded byte-identical, kept within each
tenant; what is refused gets 413, 415 or 422."""

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from helpdesk_contracts import (
    AttachmentRef,
    CustomerMessageReceived,
    EventEnvelope,
    Requester,
    ResponseSent,
    TicketOpened,
    kafka_key,
    parse_envelope,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.tokens import ServiceTokens
from ticketing import unattached
from ticketing.config import Settings
from ticketing.conversations import ticket_id_for_message

from support.fixtures import find_keyed
from support.service import RunningService, ticketing_service

TICKETS = "ticketing.tickets.v2"
INTAKE = "ticketing.intake.v1"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8  # 2 KiB that start like a PNG
LOG = "2026-11-26 10:00:01 ERROR платёж отклонён\n".encode() * 60  # 3.4 kB
LINE = LOG[: LOG.index(b"\n") + 1]
Service = RunningService[Settings]


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Service]:
    async with ticketing_service(database_url, kafka_bootstrap, attachment_max_bytes=4096,
                                 attachment_ticket_max_bytes=5000) as running:  # fmt: skip
        yield running


async def _upload(service: Service, name: str, data: bytes, tenant: str = "acme") -> Any:
    return await service.client.post(
        "/v1/attachments", files={"file": (name, data, "application/octet-stream")},
        headers=service.auth(tenant=tenant),
    )  # fmt: skip


async def _post(service: Service, path: str, body: dict[str, Any]) -> Any:
    return await service.client.post(path, headers=service.auth(), json=body)


async def _ticket(service: Service) -> str:
    r = await service.client.post("/v1/tickets", headers=service.auth(), json={
        "subject": "Payment fails", "description": "See the log.",
        "requester": {"customer_id": "c-1"}})  # fmt: skip
    assert r.status_code == 201, r.text
    ticket_id: str = r.json()["id"]
    return ticket_id


async def test_a_file_is_uploaded_referenced_from_a_reply_and_downloaded_identical(
    service: Service, kafka_bootstrap: str
) -> None:
    uploaded = await _upload(service, "screen shot №1.png", PNG)
    assert uploaded.status_code == 201, uploaded.text
    ref = AttachmentRef.model_validate(uploaded.json())
    assert (ref.filename, ref.content_type, ref.size) == (
        "screen shot №1.png",
        "image/png",
        len(PNG),
    )
    assert ref.sha256 == hashlib.sha256(PNG).hexdigest()
    ticket_id = await _ticket(service)

    reply = await _post(
        service,
        f"/v1/tickets/{ticket_id}/replies",
        {"body": "Here is what I see.", "attachment_ids": [str(ref.attachment_id)]},
    )
    assert reply.status_code == 200, reply.text

    records = await find_keyed(kafka_bootstrap, TICKETS, ticket_id.encode(), until=3)
    sent = [(await service.opened(r.value)).payload for r in records]
    [response] = [p for p in sent if isinstance(p, ResponseSent)]
    assert response.attachments == (ref,)  # referenced, never embedded
    assert ref.filename.encode() not in records[-1].value  # the file's name is sealed
    assert len(records[-1].value) < len(PNG)

    download = await service.client.get(f"/v1/attachments/{ref.attachment_id}",
                                        headers=service.auth())  # fmt: skip
    assert download.status_code == 200
    assert download.content == PNG
    assert download.headers["content-type"] == "image/png"
    assert download.headers["x-content-type-options"] == "nosniff"
    assert download.headers["content-disposition"].startswith("attachment; filename*=UTF-8''")
    # Another tenant's agents do not see it, and cannot reference it.
    other = await service.client.get(f"/v1/attachments/{ref.attachment_id}",
                                     headers=service.auth(tenant="globex"))  # fmt: skip
    assert other.status_code == 404
    # Opened with a file of its own, by an agent on the phone with the customer.
    photo = (await _upload(service, "photo.png", PNG)).json()
    opened = await _post(service, "/v1/tickets", {
        "subject": "Cracked screen", "description": "Photo attached.",
        "requester": {"customer_id": "c-2"}, "attachment_ids": [photo["attachment_id"]],
    })  # fmt: skip
    assert opened.status_code == 201, opened.text
    second = opened.json()["id"]
    [first] = await find_keyed(kafka_bootstrap, TICKETS, second.encode())
    opening = parse_envelope(first.value).payload
    assert isinstance(opening, TicketOpened)
    assert [a.attachment_id for a in opening.attachments] == [UUID(photo["attachment_id"])]
    again = await _post(
        service,
        f"/v1/tickets/{second}/notes",
        {"body": "same file", "attachment_ids": [str(ref.attachment_id)]},
    )
    assert again.status_code == 422
    assert "belongs to another ticket" in again.json()["detail"]


async def test_what_is_refused_gets_a_clear_status(service: Service) -> None:
    exe = await _upload(service, "invoice.pdf", b"MZ\x90\x00" + bytes(200))
    assert exe.status_code == 415
    assert "application/vnd.microsoft.portable-executable" in exe.json()["detail"]
    big = await _upload(service, "huge.log", b"x" * 5000)
    assert big.status_code == 413
    # Far over: refused from its Content-Length, before the form is read at all.
    huge = await _upload(service, "huge.log", b"x" * 200_000)
    assert huge.status_code == 413
    assert huge.json()["detail"].endswith(f"the limit is {4096 + 64 * 1024}")
    # Any other body stays under HTTP_MAX_BODY_BYTES (4 MiB).
    padded = await service.client.post(
        "/v1/tickets", content=b" " * (4 * 2**20 + 1),
        headers={**service.auth(), "Content-Type": "application/json"},
    )  # fmt: skip
    assert padded.status_code == 413
    empty = await _upload(service, "empty.txt", b"")
    assert empty.status_code == 422
    no_file = await service.client.post("/v1/attachments", headers=service.auth(),
                                        files={"document": ("a.txt", b"abc")})  # fmt: skip
    assert no_file.status_code == 422
    form = await service.client.post("/v1/attachments", headers=service.auth(),
                                     data={"note": "a form, not a file"})  # fmt: skip
    assert form.status_code == 415

    ticket_id = await _ticket(service)
    unknown = await _post(
        service, f"/v1/tickets/{ticket_id}/notes", {"body": "x", "attachment_ids": [str(uuid4())]}
    )
    assert unknown.status_code == 422
    assert "upload it first" in unknown.json()["detail"]
    # The ticket's files together stay under its limit (5,000 bytes here).
    first, second = await _upload(service, "a.log", LOG), await _upload(service, "b.log", LOG)
    assert first.json()["content_type"] == "text/plain"
    ids = [first.json()["attachment_id"], second.json()["attachment_id"]]
    over = await _post(
        service, f"/v1/tickets/{ticket_id}/notes", {"body": "logs", "attachment_ids": ids}
    )
    assert over.status_code == 413
    assert "the limit is 5000" in over.json()["detail"]
    one = await _post(
        service, f"/v1/tickets/{ticket_id}/notes", {"body": "one log", "attachment_ids": ids[:1]}
    )
    assert one.status_code == 200, one.text


async def test_an_intake_message_carries_files_uploaded_first_and_forged_ones_are_refused(
    service: Service, producer: Producer, kafka_bootstrap: str
) -> None:
    tenant = f"t{uuid4().hex[:8]}"
    await service.register_tenant(tenant)
    ref = AttachmentRef.model_validate((await _upload(service, "photo.png", PNG, tenant)).json())
    forged = ref.model_copy(update={"sha256": "0" * 64})

    def message(external_id: str, attachment: AttachmentRef) -> OutgoingMessage:
        envelope = EventEnvelope.new(CustomerMessageReceived(
            source="mail", external_thread_id=external_id, external_message_id=external_id,
            subject="Broken", body="Photo attached.", requester=Requester(customer_id="c-9"),
            attachments=(attachment,)), tenant_id=tenant, producer="mail")  # fmt: skip
        return OutgoingMessage(INTAKE, envelope.to_json(), kafka_key(envelope))

    await producer.send_many([message("m-1", ref), message("m-2", forged)])

    ticket_id = str(ticket_id_for_message(tenant, "mail", "m-1")).encode()
    [opened] = await find_keyed(kafka_bootstrap, TICKETS, ticket_id)
    payload = (await service.opened(opened.value)).payload
    assert isinstance(payload, TicketOpened)
    assert payload.attachments == (ref,)
    [letter] = await find_keyed(kafka_bootstrap, f"{INTAKE}.dlq", b"m-2", tenant=tenant)
    assert b"is not the file uploaded" in dict(letter.headers)["dlq-reason"]


async def test_an_upload_re_sent_with_its_idempotency_key_is_stored_once(service: Service) -> None:
    async def upload(data: bytes, key: str) -> Any:
        return await service.client.post(
            "/v1/attachments", files={"file": ("снимок.png", data, "application/octet-stream")},
            headers={**service.auth(), "Idempotency-Key": key},
        )  # fmt: skip

    key = f"mail-{uuid4()}"
    first, again = await upload(PNG, key), await upload(PNG, key)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["Location"] == f"/v1/attachments/{first.json()['attachment_id']}"
    other = await upload(PNG[:-1], key)  # other bytes under the same key: refused
    assert other.status_code == 409
    download = await service.client.get(again.headers["Location"], headers=service.auth())
    assert download.content == PNG  # the bytes of the first, untouched
    fresh = await upload(PNG, f"mail-{uuid4()}")
    assert fresh.json()["attachment_id"] != first.json()["attachment_id"]
    plain = [await _upload(service, "a.png", PNG) for _ in range(2)]  # no key: two files
    assert plain[0].json()["attachment_id"] != plain[1].json()["attachment_id"]


async def test_our_services_upload_with_a_service_token_that_opens_nothing_else(
    service: Service,
) -> None:
    # What the notifications service signs with the secret the services share.
    notifications = ServiceTokens(service.settings.model_copy(update={"service_name": "mail"}))
    token = notifications.mint("ticketing", "upload", "acme")
    uploaded = await service.client.post(
        "/v1/attachments", files={"file": ("счёт.png", PNG, "application/octet-stream")},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert uploaded.status_code == 201, uploaded.text
    download = await service.client.get(uploaded.headers["Location"], headers=service.auth())
    assert download.content == PNG  # for the agents of the token's tenant
    for path in ("/v1/tickets", uploaded.headers["Location"]):
        refused = await service.client.get(path, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401, path
    unknown = notifications.mint("ticketing", "upload", f"t{uuid4().hex[:8]}")
    elsewhere = await service.client.post(
        "/v1/attachments", files={"file": ("a.png", PNG, "application/octet-stream")},
        headers={"Authorization": f"Bearer {unknown}"},
    )  # fmt: skip
    assert elsewhere.status_code == 403  # a tenant the deployment does not serve


async def test_uploads_no_ticket_took_are_deleted_once_old_and_the_others_kept(
    service: Service, database_url: str
) -> None:
    ticket_id = await _ticket(service)
    old_attached, old_loose, new_loose = [
        AttachmentRef.model_validate((await _upload(service, name, data)).json())
        for name, data in (
            ("kept.png", PNG),
            ("forgotten.log", LOG),
            ("fresh.log", LINE),
        )
    ]
    reply = {"body": "The screenshot.", "attachment_ids": [str(old_attached.attachment_id)]}
    replied = await _post(service, f"/v1/tickets/{ticket_id}/replies", reply)
    assert replied.status_code == 200, replied.text
    runtime = service.runtime
    conn = await asyncpg.connect(database_url)
    try:  # the first two came eight days ago
        await conn.execute(
            "UPDATE attachments SET uploaded_at = now() - interval '8 days'"
            " WHERE attachment_id = ANY($1::uuid[])",
            [old_attached.attachment_id, old_loose.attachment_id],
        )
        loose_key = await conn.fetchval(
            "SELECT storage_key FROM attachments WHERE attachment_id = $1", old_loose.attachment_id
        )
        assert await runtime.blobs.get(loose_key) == LOG
        keep = timedelta(hours=service.settings.attachment_unattached_keep_hours)
        swept = await unattached.sweep(runtime.pool, runtime.blobs, datetime.now(UTC) - keep)
        left = {
            r["attachment_id"] for r in await conn.fetch("SELECT attachment_id FROM attachments")
        }
    finally:
        await conn.close()

    assert swept == 1
    assert old_loose.attachment_id not in left
    assert {old_attached.attachment_id, new_loose.attachment_id} <= left
    assert await runtime.blobs.get(loose_key) is None  # the bytes went with the row
    gone = await service.client.get(f"/v1/attachments/{old_loose.attachment_id}",
                                    headers=service.auth())  # fmt: skip
    assert gone.status_code == 404
    for ref, data in ((old_attached, PNG), (new_loose, LINE)):
        kept = await service.client.get(f"/v1/attachments/{ref.attachment_id}",
                                        headers=service.auth())  # fmt: skip
        assert (kept.status_code, kept.content) == (200, data)
