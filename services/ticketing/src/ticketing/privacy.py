"""A data subject's rights over what ticketing holds: erasure and export.

Erasure is crypto-shredding: the person's keys are destroyed, so every personal field
sealed with them - in the event log, on every topic, in every copy and backup - reads as
erased from then on, while the events themselves stay and so do ticket counts, statuses and
SLA verdicts. `CustomerErased` tells the other services to drop what they keep; this service
drops its own in the same transaction: the directory rows, the personal columns of the
ticket list (refolded from the events as they now read), and the attached files.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from helpdesk_contracts import Actor, CustomerProfile
from helpdesk_runtime.blobs import BlobStore
from helpdesk_runtime.eventstore import histories
from ticketing import attachments_store, directory_projection, privacy_store, projection
from ticketing.directory import RecordNotFoundError, load_customer
from ticketing.domain.directory import Customer
from ticketing.handlers import CommandContext, wrap
from ticketing.privacy_store import Erasure
from ticketing.unit_of_work import UnitOfWork


async def erase_customer(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, customer_id: str, at: datetime,
    blobs: BlobStore,
) -> Erasure:  # fmt: skip
    """Erase a customer (the person: with the duplicates merged into it, or, asked for a
    duplicate, the customer it was merged into). Asked again, the erasure already done."""
    tenant, conn = ctx.tenant_id, uow.conn
    done = await privacy_store.erasure(conn, tenant, customer_id)
    if done is not None:
        return done
    customer = await _person(uow, tenant, customer_id)
    erased = customer.erase(by)
    subjects = list(erased.erased_subjects)
    await uow.keys.destroy(conn, tenant, subjects)
    await uow.events.append(wrap(customer.stream, customer.pending_versions(), ctx, at))
    await directory_projection.forget(conn, tenant, subjects)  # the duplicates' rows too
    tickets = (await privacy_store.streams_of(conn, tenant, subjects)).tickets
    refolded = await histories(conn, [(tenant, t) for t in tickets], uow.keys)
    await projection.refold_personal_data(conn, list(refolded.values()))
    files = await attachments_store.forget_files_of(conn, tenant, tickets)
    # Before the commit: should it fail, the files are gone and the rest is not (the
    # request is repeated), never the other way round.
    for storage_key in files:
        await blobs.delete(storage_key)
    done = Erasure(
        customer_id=customer.customer_id, erased_subjects=tuple(subjects),
        requested_by=by.id, requested_at=at, tickets=len(tickets), files=len(files),
    )  # fmt: skip
    await privacy_store.record(conn, tenant, done)
    return done


async def _person(uow: UnitOfWork, tenant: str, customer_id: str) -> Customer:
    customer = await load_customer(uow, tenant, customer_id)
    if customer is not None and customer.merged_into is not None:
        return await _person(uow, tenant, customer.merged_into)
    if customer is not None:
        return customer
    if await privacy_store.holds_data_of(uow.conn, tenant, customer_id):
        return Customer.unknown(tenant, customer_id)  # known only from tickets
    raise RecordNotFoundError("customer", customer_id)


@dataclass(frozen=True)
class Export:
    """Everything ticketing holds about a person, readable."""

    customer_id: str
    profile: CustomerProfile | None
    merged_customers: tuple[str, ...]
    erasure: Erasure | None
    directory_events: list[dict[str, Any]]
    tickets: dict[UUID, list[dict[str, Any]]]
    """Each ticket the person requested, with every event of it (personal data opened)."""
    files: list[dict[str, Any]]


async def export_customer(uow: UnitOfWork, tenant: str, customer_id: str) -> Export:
    """The person's directory record and history, tickets and files (right of access)."""
    conn = uow.conn
    erasure = await privacy_store.erasure(conn, tenant, customer_id)
    customer: Customer | None = None
    if erasure is not None:
        subjects = list(erasure.erased_subjects)
    else:
        customer = await _person(uow, tenant, customer_id)
        subjects = [customer.customer_id, *customer.merged_ids]
    found_in = await privacy_store.streams_of(conn, tenant, subjects)
    streams, tickets = found_in.directory, found_in.tickets
    found = await histories(conn, [(tenant, s) for s in (*streams, *tickets)], uow.keys)
    return Export(
        customer_id=customer.customer_id if customer else customer_id,
        profile=customer.profile if customer else None,
        merged_customers=tuple(subjects[1:]),
        erasure=erasure,
        directory_events=[_plain(e) for s in streams for e in found.get((tenant, s), [])],
        tickets={t: [_plain(e) for e in found.get((tenant, t), [])] for t in tickets},
        files=await attachments_store.files_of(conn, tenant, tickets),
    )


def _plain(envelope: Any) -> dict[str, Any]:
    data: dict[str, Any] = envelope.model_dump(mode="json", serialize_as_any=True)
    return data
