"""Directory commands: register, change and merge customers and organisations (from the
agents' API and from other systems' upserts). Load, decide (domain), append; an
organisation's change reaches its open tickets in the same transaction."""

from collections.abc import Mapping, Sequence
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from pydantic import ValidationError

from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerProfile,
    CustomerUpserted,
    EventEnvelope,
    OrganisationProfile,
    OrganisationUpserted,
)
from helpdesk_runtime.consumer import Rejection
from ticketing import directory_store, handlers
from ticketing.domain.directory import (
    Customer,
    DirectoryError,
    Identity,
    IdentityTakenError,
    OrganisationRecord,
    TermsReservedError,
    customer_stream,
    organisation_profile_of,
    organisation_stream,
    profile_of,
    serves_tickets_differently,
    sets_terms,
)
from ticketing.handlers import CommandContext, StaleVersionError, wrap
from ticketing.unit_of_work import UnitOfWork

R = TypeVar("R", Customer, OrganisationRecord)


class RecordNotFoundError(Exception):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} {record_id!r} not found")


class RecordExistsError(DirectoryError):
    def __init__(self, kind: str, record_id: str) -> None:
        super().__init__(f"{kind} {record_id!r} exists already; change it instead")


class DomainTakenError(DirectoryError):
    def __init__(self, domain: str, owner: str) -> None:
        super().__init__(f"domain {domain!r} belongs to organisation {owner!r}")


async def load_customer(uow: UnitOfWork, tenant_id: str, customer_id: str) -> Customer | None:
    history = await uow.events.load(tenant_id, customer_stream(tenant_id, customer_id))
    return Customer.from_history(history)


async def load_organisation(
    uow: UnitOfWork, tenant_id: str, organisation_id: str
) -> OrganisationRecord | None:
    history = await uow.events.load(tenant_id, organisation_stream(tenant_id, organisation_id))
    return OrganisationRecord.from_history(history)


async def register_customer(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, customer_id: str, profile: CustomerProfile,
    at: datetime,
) -> Customer:  # fmt: skip
    if await load_customer(uow, ctx.tenant_id, customer_id) is not None:
        raise RecordExistsError("customer", customer_id)
    customer = Customer.register(ctx.tenant_id, customer_id, profile, by)
    await _check_identities(uow, customer, {})
    await uow.events.append(_envelopes(customer, ctx, at))
    return customer


async def change_customer(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, customer_id: str,
    changes: Mapping[str, Any], at: datetime, expected_version: int | None = None,
) -> Customer:  # fmt: skip
    """Change the profile fields in `changes`; the others keep their values."""
    customer = await _existing(uow, ctx.tenant_id, customer_id, expected_version)
    profile = CustomerProfile.model_validate({**customer.profile.model_dump(), **changes})
    if customer.change(profile, by):
        await _check_identities(uow, customer, {})
        await uow.events.append(_envelopes(customer, ctx, at))
    return customer


async def merge_customers(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, survivor_id: str, duplicate_id: str,
    at: datetime,
) -> Customer:  # fmt: skip
    """Merge `duplicate_id` into `survivor_id`; the survivor after the merge."""
    survivor = await _existing(uow, ctx.tenant_id, survivor_id, None)
    duplicate = await _existing(uow, ctx.tenant_id, duplicate_id, None)
    duplicate.merge_into(survivor, by)
    await uow.events.append(_envelopes(duplicate, ctx, at) + _envelopes(survivor, ctx, at))
    return survivor


async def register_organisation(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, organisation_id: str,
    profile: OrganisationProfile, at: datetime, *, may_set_terms: bool = True,
) -> OrganisationRecord:  # fmt: skip
    if not may_set_terms and sets_terms(None, profile):
        raise TermsReservedError()
    if await load_organisation(uow, ctx.tenant_id, organisation_id) is not None:
        raise RecordExistsError("organisation", organisation_id)
    record = OrganisationRecord.register(ctx.tenant_id, organisation_id, profile, by)
    await _check_domains(uow, record, {})
    await uow.events.append(_envelopes(record, ctx, at))
    return record


async def change_organisation(
    uow: UnitOfWork, ctx: CommandContext, by: Actor, organisation_id: str,
    changes: Mapping[str, Any], at: datetime, expected_version: int | None = None, *,
    may_set_terms: bool = True,
) -> OrganisationRecord:  # fmt: skip
    """Change the profile fields in `changes`; the others keep their values."""
    record = await load_organisation(uow, ctx.tenant_id, organisation_id)
    if record is None or record.profile is None:
        raise RecordNotFoundError("organisation", organisation_id)
    _check_version(record, expected_version)
    before = record.profile
    profile = OrganisationProfile.model_validate({**before.model_dump(), **changes})
    if not may_set_terms and sets_terms(before, profile):
        raise TermsReservedError()
    if record.change(profile, by):
        await _check_domains(uow, record, {})
        await uow.events.append(_envelopes(record, ctx, at))
        if serves_tickets_differently(before, profile):
            await _tell_open_tickets(uow, ctx, record, by, at)
    return record


async def _tell_open_tickets(
    uow: UnitOfWork, ctx: CommandContext, record: OrganisationRecord, by: Actor, at: datetime
) -> None:
    """Each open ticket of the organisation gets its new tier, manager and name."""
    org = record.known.as_ticket_organisation()
    events: list[EventEnvelope[Any]] = []
    for ticket_id in await directory_store.open_tickets_of_organisation(
        uow.conn, ctx.tenant_id, record.organisation_id
    ):
        ticket = await handlers.load(uow.events, ctx.tenant_id, ticket_id)
        if ticket.change_organisation(org, by, at):
            events += handlers.envelopes_for(ticket, ctx, at)
    await uow.events.append(events)


@dataclass
class _SyncBatch:
    """What one batch of upserts has loaded and claimed so far (in order)."""

    customers: dict[str, Customer] = field(default_factory=dict)
    organisations: dict[str, OrganisationRecord] = field(default_factory=dict)
    claimed: dict[Identity, str] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)
    events: list[EventEnvelope[Any]] = field(default_factory=list)
    retag: list[tuple[OrganisationRecord, Actor, CommandContext]] = field(default_factory=list)


async def apply_upserts(
    uow: UnitOfWork, batch: Sequence[EventEnvelope[Any]], now: datetime
) -> list[Rejection]:
    """Other systems' records, in order; one not newer than the last applied from its
    source changes nothing. A record that takes another's address or domain is refused."""
    state, rejections = _SyncBatch(), []
    for envelope in batch:
        ctx = CommandContext(envelope.tenant_id, envelope.correlation_id, envelope.event_id)
        at = min(envelope.occurred_at, now)
        try:
            if isinstance(envelope.payload, CustomerUpserted):
                await _sync_customer(uow, state, ctx, envelope.payload, at)
            elif isinstance(envelope.payload, OrganisationUpserted):
                await _sync_organisation(uow, state, ctx, envelope.payload, at)
        except (DirectoryError, ValidationError) as exc:
            rejections.append(Rejection(envelope.event_id, _reason(exc)))
    await uow.events.append(state.events)
    for record, by, ctx in state.retag:
        await _tell_open_tickets(uow, ctx, record, by, now)
    return rejections


async def _sync_customer(
    uow: UnitOfWork, state: _SyncBatch, ctx: CommandContext, upsert: CustomerUpserted,
    at: datetime,
) -> None:  # fmt: skip
    key = upsert.customer_id
    # A copy: a refused upsert must leave what the batch applied before it as it was.
    customer = deepcopy(state.customers.get(key) or await load_customer(uow, ctx.tenant_id, key))
    if customer is None:
        by = Actor(kind=ActorKind.SYSTEM, id=upsert.source)
        profile = profile_of(upsert, CustomerProfile())
        customer = Customer.register(ctx.tenant_id, key, profile, by, upsert.version)
    elif not customer.sync(upsert):
        state.customers[key] = customer
        return
    await _check_identities(uow, customer, state.claimed)
    state.customers[key] = customer
    state.claimed.update(dict.fromkeys(customer.identities, key))
    state.events += _envelopes(customer, ctx, at)
    customer.changes.clear()


async def _sync_organisation(
    uow: UnitOfWork, state: _SyncBatch, ctx: CommandContext, upsert: OrganisationUpserted,
    at: datetime,
) -> None:  # fmt: skip
    key = upsert.organisation_id
    record = deepcopy(
        state.organisations.get(key) or await load_organisation(uow, ctx.tenant_id, key)
    )
    by = Actor(kind=ActorKind.SYSTEM, id=upsert.source)
    if record is None:
        profile = organisation_profile_of(upsert, None)
        record = OrganisationRecord.register(ctx.tenant_id, key, profile, by, upsert.version)
    else:
        before = record.profile
        if not record.sync(upsert):
            state.organisations[key] = record
            return
        assert record.profile is not None
        if serves_tickets_differently(before, record.profile):
            state.retag.append((record, by, ctx))
    await _check_domains(uow, record, state.domains)
    state.organisations[key] = record
    assert record.profile is not None
    state.domains.update(dict.fromkeys(record.profile.domains, key))
    state.events += _envelopes(record, ctx, at)
    record.changes.clear()


async def _existing(
    uow: UnitOfWork, tenant_id: str, customer_id: str, expected_version: int | None
) -> Customer:
    customer = await load_customer(uow, tenant_id, customer_id)
    if customer is None:
        raise RecordNotFoundError("customer", customer_id)
    _check_version(customer, expected_version)
    return customer


def _check_version(record: Customer | OrganisationRecord, expected: int | None) -> None:
    if expected is not None and expected != record.version:
        raise StaleVersionError(expected, record.version)


async def _check_identities(
    uow: UnitOfWork, customer: Customer, claimed: dict[Identity, str]
) -> None:
    """Refuse an address or external id that another customer has (or claimed earlier in
    this batch). The read model's key is the backstop for two writers at once."""
    mine = customer.identities
    owners = await directory_store.owners(uow.conn, customer.tenant_id, mine) | {
        i: c for i, c in claimed.items() if i in mine
    }
    for identity, owner in sorted(owners.items()):
        if owner != customer.customer_id:
            raise IdentityTakenError(identity, owner)


async def _check_domains(
    uow: UnitOfWork, record: OrganisationRecord, claimed: dict[str, str]
) -> None:
    assert record.profile is not None
    domains = set(record.profile.domains)
    owners = await directory_store.domain_owners(uow.conn, record.tenant_id, domains) | {
        d: o for d, o in claimed.items() if d in domains
    }
    for domain, owner in sorted(owners.items()):
        if owner != record.organisation_id:
            raise DomainTakenError(domain, owner)


def _envelopes(record: R, ctx: CommandContext, at: datetime) -> list[EventEnvelope[Any]]:
    return wrap(record.stream, record.pending_versions(), ctx, at)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}"
                         for e in exc.errors())  # fmt: skip
    return str(exc)
