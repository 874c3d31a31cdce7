"""Intake from other company systems: tickets and messages from `ticketing.intake.v1`,
customers and organisations from `ticketing.directory-sync.v1`."""

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_contracts import (
    AttachmentRef,
    CustomerMessageReceived,
    CustomerUpserted,
    EventEnvelope,
    OrganisationUpserted,
    TicketSubmitted,
    topic_for,
)
from helpdesk_runtime.consumer import BatchHandler, Rejection
from helpdesk_runtime.db import Connection
from helpdesk_runtime.personal_data import SubjectKeys
from helpdesk_runtime.tenants import known
from ticketing import (
    attachments_store,
    directory,
    directory_store,
    fields_store,
    publishers,
)
from ticketing.conversations import receive_customer_messages
from ticketing.directory_store import LinkRequest
from ticketing.handlers import Link, open_submitted_tickets
from ticketing.unit_of_work import unit_of_work

_REGISTER = "not registered, or suspended (`python -m ticketing tenants add|resume <id>`)"
ACCEPTS = frozenset({TicketSubmitted.event_type, CustomerMessageReceived.event_type})
DIRECTORY_SYNC_TOPIC = topic_for(CustomerUpserted.event_type).name
DIRECTORY_SYNC_ACCEPTS = frozenset({CustomerUpserted.event_type, OrganisationUpserted.event_type})


def intake_handler(
    clock: Callable[[], datetime], keys: SubjectKeys, publisher: str | None = None
) -> BatchHandler:
    """The batch handler the intake consumer runs inside its transaction; of an outside
    `publisher`'s topic, only for the tenants registered for it."""

    async def handle(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> Sequence[Rejection]:
        batch, rejections = await _of_known_tenants(conn, batch)
        if publisher is not None:
            batch, not_its = await _of_its_tenants(conn, publisher, batch)
            rejections += not_its
        if not batch:
            return rejections
        uow, now = unit_of_work(conn, keys), clock()
        # The two kinds are keyed independently (external id vs thread), so each keeps its
        # own order; nothing orders one kind against the other.
        submissions = [e for e in batch if isinstance(e.payload, TicketSubmitted)]
        messages = [e for e in batch if isinstance(e.payload, CustomerMessageReceived)]
        refused = await attachments_store.unknown_files(
            conn, [(e.tenant_id, e.payload.attachments) for e in messages]
        )
        rejections += [Rejection(messages[i].event_id, why) for i, why in refused.items()]
        messages = [e for i, e in enumerate(messages) if i not in refused]
        attached: list[tuple[str, UUID, Sequence[AttachmentRef]]] = []
        fields = await fields_store.of_tenants(conn, (e.tenant_id for e in submissions))
        links = await _links(conn, batch)
        rejections += await open_submitted_tickets(
            submissions, store=uow.events, numbers=uow.numbers, now=now, fields=fields,
            links=links,
        )  # fmt: skip
        rejections += await receive_customer_messages(
            messages, store=uow.events, numbers=uow.numbers, threads=uow.threads, now=now,
            links=links, attached=attached,
        )  # fmt: skip
        await attachments_store.bind(conn, attached)
        return rejections

    return handle


async def _links(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> dict[UUID, Link]:
    """What the directory knows of each requester, by event id (one lookup per batch)."""
    found = await directory_store.links(conn, [
        LinkRequest(e.tenant_id, e.payload.requester, e.payload.organisation, e.payload.source)
        for e in batch
    ])  # fmt: skip
    return {e.event_id: link for e, link in zip(batch, found, strict=True)}


def directory_sync_handler(clock: Callable[[], datetime], keys: SubjectKeys) -> BatchHandler:
    """The batch handler of the directory sync consumer."""

    async def handle(conn: Connection, batch: Sequence[EventEnvelope[Any]]) -> Sequence[Rejection]:
        batch, rejections = await _of_known_tenants(conn, batch)
        return rejections + await directory.apply_upserts(unit_of_work(conn, keys), batch, clock())

    return handle


async def _of_its_tenants(
    conn: Connection, publisher: str, batch: Sequence[EventEnvelope[Any]]
) -> tuple[list[EventEnvelope[Any]], list[Rejection]]:
    allowed = await publishers.allowed(conn, publisher, (e.tenant_id for e in batch))
    refused = [
        Rejection(e.event_id, f"publisher {publisher!r} may not open tickets for tenant"
                              f" {e.tenant_id!r} (ops: `python -m ticketing publishers allow`)")
        for e in batch
        if e.tenant_id not in allowed
    ]  # fmt: skip
    return [e for e in batch if e.tenant_id in allowed], refused


async def _of_known_tenants(
    conn: Connection, batch: Sequence[EventEnvelope[Any]]
) -> tuple[list[EventEnvelope[Any]], list[Rejection]]:
    registered = await known(conn, (e.tenant_id for e in batch))
    rejections = [
        Rejection(e.event_id, f"tenant {e.tenant_id!r} is {_REGISTER}")
        for e in batch
        if e.tenant_id not in registered
    ]
    return [e for e in batch if e.tenant_id in registered], rejections
