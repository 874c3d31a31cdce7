"""The directory's rules: identities, upserts in order, merges, linking a requester."""

from typing import Any

import pytest
from pydantic import ValidationError

from helpdesk_contracts import (
    Actor,
    ActorKind,
    Channel,
    CustomerMerged,
    CustomerProfile,
    CustomerUpserted,
    DuplicateCustomerMerged,
    EventEnvelope,
    Organisation,
    OrganisationProfile,
    OrganisationUpserted,
    Requester,
)
from ticketing.domain.directory import (
    Customer,
    DirectoryError,
    KnownCustomer,
    KnownOrganisation,
    OrganisationRecord,
    identities,
    linked,
    normalise,
    requester_identities,
    serves_tickets_differently,
)

pytestmark = pytest.mark.unit

AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def profile(**fields: Any) -> CustomerProfile:
    return CustomerProfile.model_validate(fields)


def upsert(version: int, **fields: Any) -> CustomerUpserted:
    return CustomerUpserted.model_validate(
        {"source": "crm", "customer_id": "cus-1", "version": version, **fields}
    )


def stored(record: Customer | OrganisationRecord) -> list[EventEnvelope[Any]]:
    return [
        EventEnvelope.new(e, tenant_id="acme", producer="ticketing", aggregate_id=record.stream,
                          aggregate_version=v)
        for v, e in record.pending_versions()
    ]  # fmt: skip


def test_addresses_are_matched_in_one_form() -> None:
    assert normalise("email", " Maria@Example.COM ") == "maria@example.com"
    assert normalise("phone", "+45 (20) 12-34.56") == "+4520123456"
    assert normalise("phone", "8 900 000 00 00") == "89000000000"
    found = identities("cus-1", profile(
        contacts=[{"kind": "email", "address": "Maria@Example.com"},
                  {"kind": "telegram", "address": "@Maria"}],
        external_ids=[{"source": "billing", "external_id": "B-7"}]))  # fmt: skip
    assert found == {("id", "cus-1"), ("email", "maria@example.com"), ("telegram", "@maria"),
                     ("ext:billing", "B-7")}  # fmt: skip
    requester = Requester(customer_id="w-1", email="MARIA@example.com", phone="+45 20 12 34 56")
    assert requester_identities(requester, "webshop") == [
        ("id", "w-1"), ("ext:webshop", "w-1"), ("email", "maria@example.com"),
        ("phone", "+4520123456"),
    ]  # fmt: skip


def test_a_profile_is_checked_whole() -> None:
    with pytest.raises(ValidationError, match="needs a contact of that kind"):
        profile(preferred_channel="phone", contacts=[{"kind": "email", "address": "a@b.co"}])
    with pytest.raises(ValidationError, match="is not a phone number"):
        profile(contacts=[{"kind": "phone", "address": "call me"}])
    with pytest.raises(ValidationError, match="listed twice"):
        profile(contacts=[{"kind": "email", "address": "a@b.co"},
                          {"kind": "email", "address": "A@b.co"}])  # fmt: skip
    with pytest.raises(ValidationError, match="unknown time zone"):
        profile(time_zone="Europe/Atlantis")


def test_upserts_apply_in_their_source_order_and_keep_what_they_do_not_send() -> None:
    customer = Customer.register("acme", "cus-1", profile(name="Maria"), AGENT)
    assert customer.sync(upsert(5, language="da"))
    assert (customer.profile.name, customer.profile.language) == ("Maria", "da")
    assert not customer.sync(upsert(4, name="Older"))  # arrived late
    assert not customer.sync(upsert(5, name="Same version again"))
    assert not customer.sync(upsert(6, language="da"))  # newer, but changes nothing
    assert customer.sync(upsert(7, contacts=[{"kind": "email", "address": "m@jensen.dk"}]))
    # The source's versions survive a reload: they are in the events.
    reloaded = Customer.from_history(stored(customer))
    assert reloaded is not None
    assert reloaded.synced == {"crm": 7}
    assert not reloaded.sync(upsert(6, name="Late"))
    # Another system's versions are its own.
    other = upsert(1, name="From billing").model_copy(update={"source": "billing"})
    assert reloaded.sync(other)


def test_a_merge_moves_the_duplicates_contacts_and_id_to_the_survivor() -> None:
    anna = Customer.register("acme", "anna", profile(
        name="Anna", contacts=[{"kind": "email", "address": "anna@acme.test"}]), AGENT)  # fmt: skip
    twin = Customer.register("acme", "anna-2", profile(
        name="A. K.", language="ru", contacts=[
            {"kind": "email", "address": "ANNA@acme.test"},
            {"kind": "phone", "address": "+7 900 000 00 00"}],
        external_ids=[{"source": "crm", "external_id": "C-9"}]), AGENT)  # fmt: skip
    anna.changes.clear()
    twin.changes.clear()

    twin.merge_into(anna, AGENT)

    [gone] = twin.changes
    assert gone == CustomerMerged(customer_id="anna-2", into_customer_id="anna", merged_by=AGENT)
    [took] = anna.changes
    assert isinstance(took, DuplicateCustomerMerged)
    assert anna.profile.name == "Anna"  # the survivor's own details win
    assert anna.profile.language == "ru"  # the gaps are filled
    assert [c.address for c in anna.profile.contacts] == ["anna@acme.test", "+7 900 000 00 00"]
    assert ("id", "anna-2") in anna.identities
    assert ("ext:crm", "C-9") in anna.identities
    assert twin.identities == set()
    with pytest.raises(DirectoryError, match="was merged into 'anna'"):
        twin.change(profile(name="x"), AGENT)
    with pytest.raises(DirectoryError, match="into itself"):
        anna.merge_into(anna, AGENT)


def test_a_known_requester_opens_the_ticket_as_the_directory_knows_them() -> None:
    customer = KnownCustomer("cus-1", profile(
        name="Maria Jensen", language="da", preferred_channel="telegram",
        contacts=[{"kind": "telegram", "address": "@maria"},
                  {"kind": "phone", "address": "+45 20 12 34 56"}]))  # fmt: skip
    org = KnownOrganisation("org-1", OrganisationProfile(
        name="Jensen Design", tier="key_account", account_manager_id="agent-17"))  # fmt: skip
    submitted = Requester(customer_id="web-1", name="maria", email="maria@jensen.dk")
    requester, organisation = linked(submitted, Organisation(id="web-org"), customer, org)
    assert requester == Requester(customer_id="cus-1", name="Maria Jensen",
                                  email="maria@jensen.dk", phone="+45 20 12 34 56",
                                  preferred_channel=Channel.MESSENGER, language="da")  # fmt: skip
    assert organisation == Organisation(id="org-1", name="Jensen Design", tier="key_account",
                                        account_manager_id="agent-17")  # fmt: skip
    # Unknown: the ticket keeps what was submitted.
    assert linked(submitted, None, None, None) == (submitted, None)


def test_organisation_upserts_and_what_reaches_open_tickets() -> None:
    first = OrganisationUpserted(source="crm", organisation_id="org-1", version=1, name="Jensen")
    record = OrganisationRecord.register("acme", "org-1", OrganisationProfile(name="Jensen"), AGENT)
    assert not record.sync(first)  # the same name, tier "standard" by default
    assert record.sync(first.model_copy(update={"version": 2, "tier": "key_account"}))
    assert record.profile is not None
    assert record.profile.tier == "key_account"
    before = record.profile
    notes = before.model_copy(update={"notes": "Calls on Mondays."})
    assert not serves_tickets_differently(before, notes)
    assert serves_tickets_differently(
        before, notes.model_copy(update={"account_manager_id": "a-1"})
    )
