"""The customer directory: customers and organisations as event-sourced records, and how a
ticket's requester is matched to them. Pure: no I/O.

A customer is known by its id and by its identities: each contact address and each
external id, normalised (see `identities`). An identity belongs to at most one customer
of a tenant; merging two customers moves the duplicate's identities, and its id, to the
survivor.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Self
from uuid import UUID, uuid5

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    ContactKind,
    CustomerErased,
    CustomerMerged,
    CustomerProfile,
    CustomerProfileChanged,
    CustomerRegistered,
    CustomerUpserted,
    DuplicateCustomerMerged,
    Event,
    EventEnvelope,
    Organisation,
    OrganisationProfile,
    OrganisationProfileChanged,
    OrganisationRegistered,
    OrganisationUpserted,
    Requester,
)
from helpdesk_contracts.directory import CUSTOMER_FIELDS, ORGANISATION_FIELDS
from helpdesk_contracts.pii import ERASED, is_sealed

_STREAMS = UUID("f2d5a1c4-8e3b-4c6f-9a7d-1b0e2c3f4a5d")

Identity = tuple[str, str]
"""(kind, normalised value): ("email", "maria@example.com"), ("phone", "+4520123456"),
("telegram", "@maria"), ("ext:crm", "cus_48213"), or ("id", a customer id)."""


class DirectoryError(Exception):
    """A change the directory refuses (the message says why)."""


class IdentityTakenError(DirectoryError):
    """An address or external id already belongs to another customer."""

    def __init__(self, identity: Identity, owner: str) -> None:
        kind, value = identity
        super().__init__(
            f"{kind} {value!r} belongs to customer {owner!r}; merge the two customers instead"
        )
        self.owner = owner


def customer_stream(tenant_id: str, customer_id: str) -> UUID:
    """The event stream of a customer: named by its id, so any writer finds it."""
    return uuid5(_STREAMS, f"customer\x1f{tenant_id}\x1f{customer_id}")


def organisation_stream(tenant_id: str, organisation_id: str) -> UUID:
    return uuid5(_STREAMS, f"organisation\x1f{tenant_id}\x1f{organisation_id}")


def normalise(kind: ContactKind | str, address: str) -> str:
    """The form an address is matched in: emails and messenger ids lower-case, phone
    numbers as digits with a leading + kept ("+45 20 12 34 56" -> "+4520123456")."""
    if kind == ContactKind.PHONE:
        digits = re.sub(r"\D", "", address)
        return f"+{digits}" if address.strip().startswith("+") else digits
    return address.strip().lower()


def identities(customer_id: str, profile: CustomerProfile) -> set[Identity]:
    """Everything a requester can be matched to this customer by (but merged ids)."""
    found: set[Identity] = {("id", customer_id)}
    found |= {(c.kind.value, normalise(c.kind, c.address)) for c in profile.contacts if c.readable}
    found |= {(f"ext:{x.source}", x.external_id) for x in profile.external_ids}
    return found


def requester_identities(requester: Requester, source: str | None) -> list[Identity]:
    """What a ticket's requester may be matched by, strongest first: the customer id (as
    ours, then as the submitting system's external id), the email, the phone."""
    found: list[Identity] = [("id", requester.customer_id)]
    if source is not None:
        found.append((f"ext:{source}", requester.customer_id))
    if requester.email and readable(requester.email):
        found.append(("email", normalise(ContactKind.EMAIL, requester.email)))
    if requester.phone and readable(requester.phone):
        found.append(("phone", normalise(ContactKind.PHONE, requester.phone)))
    return found


def email_domain(requester: Requester) -> str | None:
    email = requester.email
    return email.rsplit("@", 1)[1].lower() if email and readable(email) else None


def readable(value: str) -> bool:
    """False for personal data that was erased (or is still sealed): it identifies no one."""
    return value != ERASED and not is_sealed(value)


_CHANNELS = {
    ContactKind.EMAIL: Channel.EMAIL,
    ContactKind.PHONE: Channel.PHONE,
    ContactKind.TELEGRAM: Channel.MESSENGER,
    ContactKind.WHATSAPP: Channel.MESSENGER,
}


@dataclass(frozen=True)
class KnownOrganisation:
    organisation_id: str
    profile: OrganisationProfile

    def as_ticket_organisation(self) -> Organisation:
        p = self.profile
        return Organisation(id=self.organisation_id, name=p.name, tier=p.tier,
                            account_manager_id=p.account_manager_id)  # fmt: skip


@dataclass(frozen=True)
class KnownCustomer:
    customer_id: str
    profile: CustomerProfile


def linked(
    requester: Requester, submitted: Organisation | None, customer: KnownCustomer | None,
    organisation: KnownOrganisation | None,
) -> tuple[Requester, Organisation | None]:  # fmt: skip
    """The requester and organisation a ticket opens with, given what the directory knows:
    the customer's id and details (what the submitter sent fills the gaps), and the
    directory's organisation (else what the submitter sent)."""
    org = organisation.as_ticket_organisation() if organisation else submitted
    if customer is None:
        return requester, org
    p = customer.profile

    def first(kind: ContactKind) -> str | None:
        return next((c.address for c in p.contacts if c.kind is kind), None)

    return Requester(
        customer_id=customer.customer_id,
        name=p.name or requester.name,
        email=requester.email or first(ContactKind.EMAIL),
        phone=requester.phone or first(ContactKind.PHONE),
        preferred_channel=_CHANNELS[p.preferred_channel] if p.preferred_channel
        else requester.preferred_channel,
        language=p.language or requester.language,
    ), org  # fmt: skip


@dataclass
class _Record:
    """What customers and organisations share: a stream, its version, the changes not yet
    stored, and the last version applied from each syncing system."""

    tenant_id: str
    stream: UUID
    version: int = 0
    changes: list[Event] = field(default_factory=list)
    synced: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_history(cls, history: Sequence[EventEnvelope[Any]]) -> Self | None:
        """Rebuild from the stored stream; None when the stream is empty."""
        if not history:
            return None
        first = history[0]
        assert first.aggregate_id is not None
        record = cls(first.tenant_id, first.aggregate_id)
        for envelope in history:
            record._apply(envelope.payload)
            record.version = envelope.aggregate_version or record.version + 1
        return record

    def pending_versions(self) -> Iterable[tuple[int, Event]]:
        stored = self.version - len(self.changes)
        return ((stored + i + 1, e) for i, e in enumerate(self.changes))

    def _record(self, event: Event) -> None:
        self._apply(event)
        self.changes.append(event)
        self.version += 1

    def _apply(self, event: Event) -> None:
        raise NotImplementedError

    def _note_sync(self, by: Actor, source_version: int | None) -> None:
        if by.kind is ActorKind.SYSTEM and source_version is not None:
            self.synced[by.id] = source_version

    def is_stale(self, source: str, version: int) -> bool:
        """An upsert from `source` not newer than the last one applied from it."""
        return version <= self.synced.get(source, -1)


@dataclass
class Customer(_Record):
    customer_id: str = ""
    profile: CustomerProfile = field(default_factory=CustomerProfile)
    merged_into: str | None = None
    merged_ids: tuple[str, ...] = ()
    """Customers merged into this one: a ticket naming one of them is this customer's."""
    erased: bool = False
    """Erased on request: nothing of the person is kept, and nothing more can be recorded."""

    @classmethod
    def register(
        cls, tenant_id: str, customer_id: str, profile: CustomerProfile, by: Actor,
        source_version: int | None = None,
    ) -> Customer:  # fmt: skip
        customer = cls(tenant_id, customer_stream(tenant_id, customer_id))
        customer._record(
            CustomerRegistered(
                customer_id=customer_id,
                profile=profile,
                registered_by=by,
                source_version=source_version,
            )
        )
        return customer

    @classmethod
    def unknown(cls, tenant_id: str, customer_id: str) -> Customer:
        """A customer the directory never knew (only tickets name it): erasable all the same."""
        customer = cls(tenant_id, customer_stream(tenant_id, customer_id))
        customer.customer_id = customer_id
        return customer

    @property
    def identities(self) -> set[Identity]:
        if self.merged_into is not None or self.erased:
            return set()  # all of them went to the survivor, or are forgotten
        return identities(self.customer_id, self.profile) | {("id", i) for i in self.merged_ids}

    def change(
        self, profile: CustomerProfile, by: Actor, source_version: int | None = None
    ) -> bool:
        """Record the new profile; False when nothing changed."""
        self._still_here()
        if profile == self.profile:
            self._note_sync(by, source_version)
            return False
        self._record(
            CustomerProfileChanged(
                customer_id=self.customer_id,
                profile=profile,
                changed_by=by,
                source_version=source_version,
            )
        )
        return True

    def sync(self, upsert: CustomerUpserted) -> bool:
        """Apply another system's record: the fields it sent replace ours. False when it is
        not newer than the last one applied from that system, or changes nothing."""
        if self.is_stale(upsert.source, upsert.version):
            return False
        by = Actor(kind=ActorKind.SYSTEM, id=upsert.source)
        return self.change(profile_of(upsert, self.profile), by, upsert.version)

    def merge_into(self, survivor: Customer, by: Actor) -> None:
        """This customer is a duplicate of `survivor`, which takes its contacts, external
        ids and id (its tickets follow); the survivor's own details win."""
        self._still_here()
        survivor._still_here()
        if survivor.customer_id == self.customer_id:
            raise DirectoryError("a customer cannot be merged into itself")
        mine, theirs = self.profile, survivor.profile
        have = {(c.kind, normalise(c.kind, c.address)) for c in theirs.contacts}
        extra = [c for c in mine.contacts if (c.kind, normalise(c.kind, c.address)) not in have]
        external = {
            (x.source, x.external_id): x for x in (*theirs.external_ids, *mine.external_ids)
        }
        gaps = {
            k: getattr(mine, k)
            for k in ("name", "preferred_channel", "language", "time_zone", "organisation_id",
                      "notes")
            if getattr(theirs, k) is None
        }  # fmt: skip
        profile = CustomerProfile.model_validate({
            **theirs.model_dump(), **gaps, "contacts": (*theirs.contacts, *extra)[:50],
            "external_ids": tuple(external.values())[:20],
        })  # fmt: skip
        self._record(
            CustomerMerged(
                customer_id=self.customer_id, into_customer_id=survivor.customer_id, merged_by=by
            )
        )
        survivor._record(DuplicateCustomerMerged(
            customer_id=survivor.customer_id, duplicate_customer_id=self.customer_id,
            profile=profile, merged_by=by))  # fmt: skip

    def erase(self, by: Actor) -> CustomerErased:
        """Forget the person: this customer and every duplicate merged into it (the same
        person's other identities)."""
        self._still_here()
        erased = CustomerErased(
            customer_id=self.customer_id,
            erased_subjects=(self.customer_id, *self.merged_ids),
            requested_by=by,
        )
        self._record(erased)
        return erased

    def _still_here(self) -> None:
        if self.erased:
            raise DirectoryError(f"customer {self.customer_id!r} was erased")
        if self.merged_into is not None:
            raise DirectoryError(
                f"customer {self.customer_id!r} was merged into {self.merged_into!r}"
            )

    def _apply(self, event: Event) -> None:
        match event:
            case CustomerRegistered():
                self.customer_id, self.profile = event.customer_id, event.profile
                self._note_sync(event.registered_by, event.source_version)
            case CustomerProfileChanged():
                self.profile = event.profile
                self._note_sync(event.changed_by, event.source_version)
            case CustomerMerged():
                self.merged_into = event.into_customer_id
            case DuplicateCustomerMerged():
                self.profile = event.profile
                self.merged_ids = (*self.merged_ids, event.duplicate_customer_id)
            case CustomerErased():
                self.customer_id, self.erased = event.customer_id, True
                self.profile = CustomerProfile()


def profile_of(upsert: CustomerUpserted, current: CustomerProfile) -> CustomerProfile:
    """The profile after an upsert: what it sent (not null) replaces what we had."""
    return CustomerProfile.model_validate(
        {**current.model_dump(), **_sent(upsert, CUSTOMER_FIELDS)}
    )


def _sent(
    upsert: CustomerUpserted | OrganisationUpserted, fields: frozenset[str]
) -> dict[str, Any]:
    return {k: v for k in fields if (v := getattr(upsert, k, None)) is not None}


@dataclass
class OrganisationRecord(_Record):
    organisation_id: str = ""
    profile: OrganisationProfile | None = None

    @classmethod
    def register(
        cls, tenant_id: str, organisation_id: str, profile: OrganisationProfile, by: Actor,
        source_version: int | None = None,
    ) -> OrganisationRecord:  # fmt: skip
        record = cls(tenant_id, organisation_stream(tenant_id, organisation_id))
        record._record(
            OrganisationRegistered(
                organisation_id=organisation_id,
                profile=profile,
                registered_by=by,
                source_version=source_version,
            )
        )
        return record

    @property
    def known(self) -> KnownOrganisation:
        assert self.profile is not None
        return KnownOrganisation(self.organisation_id, self.profile)

    def change(
        self, profile: OrganisationProfile, by: Actor, source_version: int | None = None
    ) -> bool:
        if profile == self.profile:
            self._note_sync(by, source_version)
            return False
        self._record(OrganisationProfileChanged(organisation_id=self.organisation_id,
                                                profile=profile, changed_by=by,
                                                source_version=source_version))  # fmt: skip
        return True

    def sync(self, upsert: OrganisationUpserted) -> bool:
        if self.is_stale(upsert.source, upsert.version):
            return False
        by = Actor(kind=ActorKind.SYSTEM, id=upsert.source)
        return self.change(organisation_profile_of(upsert, self.profile), by, upsert.version)

    def _apply(self, event: Event) -> None:
        match event:
            case OrganisationRegistered():
                self.organisation_id, self.profile = event.organisation_id, event.profile
                self._note_sync(event.registered_by, event.source_version)
            case OrganisationProfileChanged():
                self.profile = event.profile
                self._note_sync(event.changed_by, event.source_version)


def organisation_profile_of(
    upsert: OrganisationUpserted, current: OrganisationProfile | None
) -> OrganisationProfile:
    base = current.model_dump() if current is not None else {}
    return OrganisationProfile.model_validate({**base, **_sent(upsert, ORGANISATION_FIELDS)})


class TermsReservedError(DirectoryError):
    """Only an admin sets an organisation's tier or account manager: its SLA terms, and who
    hears of its breaches."""

    def __init__(self) -> None:
        super().__init__("only an admin may set an organisation's tier or account manager")


def sets_terms(before: OrganisationProfile | None, after: OrganisationProfile) -> bool:
    """Whether a change (or a new organisation) sets a tier or an account manager."""
    base = before or OrganisationProfile(name=after.name)
    return (base.tier, base.account_manager_id) != (after.tier, after.account_manager_id)


def serves_tickets_differently(before: OrganisationProfile | None,
                               after: OrganisationProfile) -> bool:  # fmt: skip
    """Whether open tickets must hear of the change: what rides on them changed."""
    return before is None or (before.name, before.tier, before.account_manager_id) != (
        after.name, after.tier, after.account_manager_id)  # fmt: skip
