"""The customer directory: customers and their organisations, kept by the ticketing service.

Two topics:
- `ticketing.directory.v1`, published by ticketing: every change to a customer or an
  organisation, in order per record (the envelope's `aggregate_id` names the record's
  stream, `aggregate_version` the change). Each event carries the whole profile after the
  change, so a reader keeps its own copy from the latest event alone.
- `ticketing.directory-sync.v1`, published by other company systems (a CRM, billing):
  `CustomerUpserted` and `OrganisationUpserted`, keyed by the record's id. Each carries the
  source's own `version` of the record (a row version, or its update time in milliseconds):
  an upsert not newer than the last one applied from that source changes nothing, so
  duplicates and late arrivals are harmless. A field left out or null keeps its value; a
  field sent replaces it (`contacts` and `external_ids` as a whole, `[]` empties them).

Customer and organisation ids are the company's own (e.g. the CRM's "cus_48213"); a ticket
whose requester matches a customer carries that id as `requester.customer_id`.
"""

from __future__ import annotations

from enum import StrEnum
from functools import cache
from typing import Annotated, ClassVar, Self
from zoneinfo import available_timezones

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, model_validator

from helpdesk_contracts.envelope import MAX_BIGINT, Event
from helpdesk_contracts.pii import ERASED, Sealed, is_sealed
from helpdesk_contracts.values import (
    Actor,
    ContractModel,
    Description,
    Email,
    ExternalRef,
    Identifier,
    Language,
    Name,
    Phone,
    SystemName,
    Tier,
)


class ContactKind(StrEnum):
    """A way to reach a person; also the channel a customer prefers."""

    EMAIL = "email"
    PHONE = "phone"
    TELEGRAM = "telegram"
    WHATSAPP = "whatsapp"


_ADDRESS_CHECKS: dict[ContactKind, tuple[TypeAdapter[str], str]] = {
    ContactKind.EMAIL: (TypeAdapter(Email), "an email address such as maria@example.com"),
    ContactKind.PHONE: (TypeAdapter(Phone), "a phone number such as +45 20 12 34 56"),
}


class Contact(ContractModel):
    """One address of a customer in one channel; an address belongs to one customer."""

    kind: ContactKind
    address: Annotated[str, StringConstraints(min_length=1, max_length=254)] | Sealed
    """Email address, phone number (digits, spaces and + - ( ) . /), or messenger user id."""

    @property
    def readable(self) -> bool:
        """False for an address that is sealed or erased (helpdesk_contracts.pii): it
        identifies no one."""
        return not (self.address == ERASED or is_sealed(self.address))

    @model_validator(mode="after")
    def _an_address_of_its_kind(self) -> Self:
        check = _ADDRESS_CHECKS.get(self.kind)
        if check is not None and self.readable:
            try:
                check[0].validate_python(self.address)
            except ValueError:
                raise ValueError(f"{self.address!r} is not {check[1]}") from None
        return self


def _a_time_zone(value: str) -> str:
    if value not in _zones():
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Europe/Moscow")
    return value


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())  # walks the tz database: once


TimeZone = Annotated[str, AfterValidator(_a_time_zone)]
"""An IANA time zone name, e.g. "Europe/Moscow"."""

Domain = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, to_lower=True, max_length=253,
        pattern=r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$",
    ),
]  # fmt: skip
"""An email domain, e.g. "example.com" (stored lower-case)."""

Notes = Annotated[Description, Field(max_length=10_000)]


def _no_repeats(contacts: tuple[Contact, ...]) -> tuple[Contact, ...]:
    seen: set[tuple[ContactKind, str]] = set()
    for c in filter(lambda c: c.readable, contacts):
        key = (c.kind, c.address.lower())
        if key in seen:
            raise ValueError(f"{c.kind.value} {c.address!r} is listed twice")
        seen.add(key)
    return contacts


Contacts = Annotated[tuple[Contact, ...], Field(max_length=50), AfterValidator(_no_repeats)]
ExternalIds = Annotated[tuple[ExternalRef, ...], Field(max_length=20)]


class CustomerProfile(ContractModel):
    """What the directory knows about a customer."""

    name: Name | Sealed | None = None
    contacts: Contacts = ()
    preferred_channel: ContactKind | None = None
    """The channel to answer in; one of the customer's contacts, when set."""
    language: Language | None = None
    time_zone: TimeZone | None = None
    organisation_id: Identifier | None = None
    external_ids: ExternalIds = ()
    """The customer's records in other systems (a CRM, billing, the webshop)."""
    notes: Notes | Sealed | None = None

    @model_validator(mode="after")
    def _a_preferred_channel_it_can_be_reached_in(self) -> Self:
        if self.preferred_channel is not None and not any(
            c.kind is self.preferred_channel for c in self.contacts
        ):
            raise ValueError(
                f"preferred_channel {self.preferred_channel.value!r} needs a contact of that kind"
            )
        return self


class OrganisationProfile(ContractModel):
    """What the directory knows about an organisation."""

    name: Name
    domains: Annotated[tuple[Domain, ...], Field(max_length=50)] = ()
    """Email domains: a requester from one of them belongs to this organisation."""
    tier: Tier = "standard"
    """Service tier, e.g. "standard" or "key_account"; the SLA service matches policies on it."""
    account_manager_id: Identifier | None = None
    """The personal account manager (an agent id) of a key account."""
    notes: Notes | None = None


SourceVersion = Annotated[int, Field(ge=0, le=MAX_BIGINT)]


class DirectoryEvent(Event):
    """Base of the directory events: the envelope names the record's stream and version."""

    requires_aggregate: ClassVar[bool] = True


_PROFILE = ("profile.name", "profile.contacts.*.address", "profile.notes")
"""A customer's personal fields, sealed with that customer's key."""


class CustomerEvent(DirectoryEvent):
    """Base of the events of a customer's stream: their data subject is that customer."""

    customer_id: Identifier

    def data_subject(self) -> str:
        return self.customer_id


class CustomerRegistered(CustomerEvent):
    """A customer was added to the directory (by an agent, or by a system's upsert)."""

    event_type = "CustomerRegistered"
    personal_fields = _PROFILE

    profile: CustomerProfile
    registered_by: Actor
    source_version: SourceVersion | None = None
    """The syncing system's version of the record, when a system registered it."""


class CustomerProfileChanged(CustomerEvent):
    """A customer's profile changed; `profile` is the whole profile after the change."""

    event_type = "CustomerProfileChanged"
    personal_fields = _PROFILE

    profile: CustomerProfile
    changed_by: Actor
    source_version: SourceVersion | None = None


class CustomerMerged(CustomerEvent):
    """This customer was a duplicate and is now part of `into_customer_id` (the last event
    of its stream); its contacts and tickets belong to that customer from now on."""

    event_type = "CustomerMerged"

    into_customer_id: Identifier
    merged_by: Actor


class DuplicateCustomerMerged(CustomerEvent):
    """A duplicate was merged into this customer, which took over its contacts and
    external ids (`profile` is this customer's profile after the merge)."""

    event_type = "DuplicateCustomerMerged"
    personal_fields = _PROFILE

    duplicate_customer_id: Identifier
    profile: CustomerProfile
    merged_by: Actor


class CustomerErased(CustomerEvent):
    """The customer's personal data was erased on request (GDPR Art. 17, 152-FZ): the keys
    of `erased_subjects` (this customer and the duplicates merged into it) are destroyed,
    so every field sealed with them reads as erased, wherever it was copied. A reader
    deletes or blanks what it keeps of these customers; counts, verdicts and scores stay.
    The last event of the customer's stream; it holds no personal data."""

    event_type = "CustomerErased"

    erased_subjects: Annotated[tuple[Identifier, ...], Field(min_length=1, max_length=1000)]
    requested_by: Actor


class OrganisationRegistered(DirectoryEvent):
    """An organisation was added to the directory."""

    event_type = "OrganisationRegistered"

    organisation_id: Identifier
    profile: OrganisationProfile
    registered_by: Actor
    source_version: SourceVersion | None = None


class OrganisationProfileChanged(DirectoryEvent):
    """An organisation's profile changed; `profile` is the whole profile after the change.
    When its tier or account manager changed, each of its open tickets gets a
    `TicketOrganisationChanged` on `ticketing.tickets.v1`."""

    event_type = "OrganisationProfileChanged"

    organisation_id: Identifier
    profile: OrganisationProfile
    changed_by: Actor
    source_version: SourceVersion | None = None


class CustomerUpserted(Event):
    """Another system's record of a customer: creates the customer, or changes the fields
    sent. Keyed by `customer_id`; applied once per (source, version)."""

    event_type = "CustomerUpserted"

    source: SystemName
    """The publishing system, e.g. "crm"."""
    customer_id: Identifier
    version: SourceVersion
    """Grows with every change of the record in the source; older or equal ones are ignored."""
    name: Name | None = None
    contacts: Contacts | None = None
    preferred_channel: ContactKind | None = None
    language: Language | None = None
    time_zone: TimeZone | None = None
    organisation_id: Identifier | None = None
    external_ids: ExternalIds | None = None
    notes: Notes | None = None

    def partition_key(self) -> str:
        return self.customer_id


class OrganisationUpserted(Event):
    """Another system's record of an organisation: creates it, or changes the fields sent.
    Keyed by `organisation_id`; applied once per (source, version)."""

    event_type = "OrganisationUpserted"

    source: SystemName
    organisation_id: Identifier
    version: SourceVersion
    name: Name
    domains: Annotated[tuple[Domain, ...], Field(max_length=50)] | None = None
    tier: Tier | None = None
    """"standard" when a new organisation is sent without one."""
    account_manager_id: Identifier | None = None
    notes: Notes | None = None

    def partition_key(self) -> str:
        return self.organisation_id


CUSTOMER_FIELDS = frozenset(CustomerProfile.model_fields)
"""The profile fields a `CustomerUpserted` may carry."""
ORGANISATION_FIELDS = frozenset(OrganisationProfile.model_fields)
