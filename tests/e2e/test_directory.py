"""The customer directory end to end, through the real Kafka and PostgreSQL: a CRM keeps it
in sync, tickets are linked to customers and organisations, agents work with it over HTTP."""

from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerUpserted,
    EventEnvelope,
    OrganisationUpserted,
    Requester,
    TicketOpened,
    TicketOrganisationChanged,
    TicketSubmitted,
    kafka_key,
    parse_envelope,
)
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from ticketing.config import Settings
from ticketing.domain.directory import customer_stream
from ticketing.handlers import ticket_id_for_submission
from ticketing.intake import DIRECTORY_SYNC_TOPIC

from support.chaos import eventually
from support.fixtures import find_keyed
from support.service import RunningService, ticketing_service

TICKETS = "ticketing.tickets.v2"
INTAKE = "ticketing.intake.v1"
DIRECTORY = "ticketing.directory.v1"
Service = RunningService[Settings]


@pytest.fixture
async def service(database_url: str, kafka_bootstrap: str) -> AsyncIterator[Service]:
    async with ticketing_service(database_url, kafka_bootstrap) as running:
        yield running


@pytest.fixture
async def tenant(service: Service) -> str:
    name = f"t{uuid4().hex[:8]}"
    await service.register_tenant(name)
    return name


def _upsert(tenant: str, payload: CustomerUpserted | OrganisationUpserted) -> OutgoingMessage:
    envelope = EventEnvelope.new(payload, tenant_id=tenant, producer="crm")
    return OutgoingMessage(DIRECTORY_SYNC_TOPIC, envelope.to_json(), kafka_key(envelope))


def _customer(customer_id: str, version: int, **fields: Any) -> CustomerUpserted:
    return CustomerUpserted.model_validate(
        {"source": "crm", "customer_id": customer_id, "version": version, **fields}
    )


def _key_account(version: int = 1, manager: str = "agent-17") -> OrganisationUpserted:
    return OrganisationUpserted(source="crm", organisation_id="org-1", version=version,
                                name="Jensen Design", domains=("jensen-design.dk",),
                                tier="key_account", account_manager_id=manager)  # fmt: skip


def _submission(tenant: str, external_id: str, requester: Requester) -> OutgoingMessage:
    envelope = EventEnvelope.new(
        TicketSubmitted(source="webshop", external_id=external_id, subject="Broken glasses",
                        description="Two of three arrived broken.", requester=requester),
        tenant_id=tenant, producer="webshop",
    )  # fmt: skip
    return OutgoingMessage(INTAKE, envelope.to_json(), kafka_key(envelope))


async def _opened(
    service: Service, kafka_bootstrap: str, tenant: str, external_id: str
) -> TicketOpened:
    ticket_id = str(ticket_id_for_submission(tenant, "webshop", external_id)).encode()
    [record] = await find_keyed(kafka_bootstrap, TICKETS, ticket_id)
    payload = (await service.opened(record.value)).payload
    assert isinstance(payload, TicketOpened)
    return payload


async def _page(service: Service, tenant: str, customer_id: str) -> Any:
    response = await service.client.get(
        f"/v1/customers/{customer_id}", headers=service.auth(tenant=tenant), follow_redirects=True
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_a_crm_keeps_the_directory_and_tickets_are_linked_to_it(
    service: Service, tenant: str, producer: Producer, kafka_bootstrap: str
) -> None:
    contacts = [{"kind": "email", "address": "Maria@Jensen-Design.dk"},
                {"kind": "phone", "address": "+45 20 12 34 56"}]  # fmt: skip
    await producer.send_many([
        _upsert(tenant, _key_account()),
        _upsert(tenant, _customer("cus-1", 1, name="Maria Jensen", contacts=contacts,
                                  organisation_id="org-1", language="da")),
    ])  # fmt: skip

    async def known() -> bool:
        r = await service.client.get("/v1/customers/cus-1", headers=service.auth(tenant=tenant))
        return r.status_code == 200

    await eventually(known, timeout_s=30)
    # Known by her email (any case), though the webshop names her by its own id.
    await producer.send_many([
        _submission(tenant, "o-1", Requester(customer_id="web-77", email="maria@jensen-design.dk")),
        _submission(tenant, "o-2", Requester(customer_id="web-78", name="Piotr",
                                             email="piotr@jensen-design.dk")),
        _submission(tenant, "o-3", Requester(customer_id="web-79", phone="+4520123456")),
        _submission(tenant, "o-4", Requester(customer_id="web-80", email="x@elsewhere.org")),
    ])  # fmt: skip

    maria = await _opened(service, kafka_bootstrap, tenant, "o-1")
    assert maria.requester.customer_id == "cus-1"
    assert (maria.requester.name, maria.requester.language) == ("Maria Jensen", "da")
    assert maria.organisation is not None
    assert (maria.organisation.id, maria.organisation.tier) == ("org-1", "key_account")
    assert maria.organisation.account_manager_id == "agent-17"
    # A colleague not in the directory: her organisation by the email's domain.
    piotr = await _opened(service, kafka_bootstrap, tenant, "o-2")
    assert piotr.requester.customer_id == "web-78"
    assert piotr.organisation is not None
    assert piotr.organisation.tier == "key_account"
    by_phone = await _opened(service, kafka_bootstrap, tenant, "o-3")
    assert by_phone.requester.customer_id == "cus-1"
    stranger = await _opened(service, kafka_bootstrap, tenant, "o-4")
    assert (stranger.requester.customer_id, stranger.organisation) == ("web-80", None)

    page = await _page(service, tenant, "cus-1")
    assert page["organisation"]["profile"]["tier"] == "key_account"
    assert page["counts"]["tickets"] == 2
    assert page["counts"]["tickets_this_month"] == 2
    assert page["counts"]["open"] == 2
    assert {t["status"] for t in page["open_tickets"]} == {"new"}


async def test_duplicate_and_out_of_order_upserts_are_applied_once_and_in_order(
    service: Service, tenant: str, producer: Producer, kafka_bootstrap: str
) -> None:
    await producer.send_many([
        _upsert(tenant, _customer("cus-2", 5, name="Newest")),
        _upsert(tenant, _customer("cus-2", 3, name="Older, arrived late")),
        _upsert(tenant, _customer("cus-2", 5, name="Newest")),
        _upsert(tenant, _customer("cus-2", 6, language="ru")),  # the name is kept
    ])  # fmt: skip

    async def latest() -> bool:
        r = await service.client.get("/v1/customers/cus-2", headers=service.auth(tenant=tenant))
        return r.status_code == 200 and r.json()["customer"]["version"] == 2

    await eventually(latest, timeout_s=30)
    page = await _page(service, tenant, "cus-2")
    profile = page["customer"]["profile"]
    assert (profile["name"], profile["language"]) == ("Newest", "ru")
    stream = str(customer_stream(tenant, "cus-2")).encode()
    records = await find_keyed(kafka_bootstrap, DIRECTORY, stream, until=2)
    kinds = [parse_envelope(r.value).event_type for r in records]
    assert kinds == ["CustomerRegistered", "CustomerProfileChanged"]


async def test_an_upsert_that_takes_another_customers_address_is_dead_lettered(
    service: Service, tenant: str, producer: Producer, kafka_bootstrap: str
) -> None:
    email = [{"kind": "email", "address": "shared@example.com"}]
    # Two customers' upserts travel on their own partitions: nothing orders one against the
    # other, so the second is sent once the first is in.
    await producer.send_many([_upsert(tenant, _customer("cus-a", 1, contacts=email))])

    async def known() -> bool:
        r = await service.client.get("/v1/customers/cus-a", headers=service.auth(tenant=tenant))
        return r.status_code == 200

    await eventually(known, timeout_s=30)
    await producer.send_many([_upsert(tenant, _customer("cus-b", 1, contacts=email))])
    [letter] = await find_keyed(kafka_bootstrap, f"{DIRECTORY_SYNC_TOPIC}.dlq", b"cus-b",
                                tenant=tenant)  # fmt: skip
    headers = dict(letter.headers)
    assert headers["dlq-error-type"] == b"rejected"
    assert b"belongs to customer 'cus-a'" in headers["dlq-reason"]


async def test_agents_keep_customers_merge_duplicates_and_admins_set_the_tier(
    service: Service, tenant: str, kafka_bootstrap: str
) -> None:
    agent, admin = service.auth(tenant=tenant), service.auth(tenant=tenant, role="admin")
    client = service.client
    org = await client.post("/v1/organisations", headers=agent,
                            json={"organisation_id": "acme-corp", "name": "ACME",
                                  "domains": ["acme.test"]})  # fmt: skip
    assert org.status_code == 201, org.text
    anna = await client.post("/v1/customers", headers=agent, json={
        "customer_id": "anna", "name": "Anna", "contacts": [
            {"kind": "email", "address": "anna@acme.test"}], "organisation_id": "acme-corp",
    })  # fmt: skip
    assert anna.status_code == 201, anna.text
    twin = await client.post("/v1/customers", headers=agent, json={
        "contacts": [{"kind": "email", "address": "ANNA@acme.test"}]})  # fmt: skip
    assert twin.status_code == 409
    assert "belongs to customer 'anna'" in twin.json()["detail"]
    bad = await client.post("/v1/customers", headers=agent, json={
        "contacts": [{"kind": "email", "address": "not-an-email"}], "preferred_channel": "phone",
        "time_zone": "Mars/Olympus"})  # fmt: skip
    assert bad.status_code == 422
    assert "is not an email address" in bad.text
    assert "Mars/Olympus" in bad.text

    # A second identity of Anna, created before anyone noticed, with a ticket of its own.
    other = await client.post("/v1/customers", headers=agent, json={
        "customer_id": "anna-2", "contacts": [{"kind": "phone", "address": "+7 900 000-00-00"}],
        "language": "ru"})  # fmt: skip
    assert other.status_code == 201
    opened = []
    for customer_id in ("anna", "anna-2"):
        r = await client.post("/v1/tickets", headers=agent, json={
            "subject": "Help", "description": "Please.",
            "requester": {"customer_id": customer_id}})  # fmt: skip
        assert r.status_code == 201, r.text
        opened.append(r.json()["id"])
    merged = await client.post("/v1/customers/anna/merge", headers=agent,
                               json={"duplicate_customer_id": "anna-2"})  # fmt: skip
    assert merged.status_code == 200, merged.text
    profile = merged.json()["profile"]
    assert {c["kind"] for c in profile["contacts"]} == {"email", "phone"}
    assert profile["language"] == "ru"  # Anna had none: the duplicate's fills the gap
    page = await _page(service, tenant, "anna-2")  # redirected to the survivor
    assert page["customer"]["customer_id"] == "anna"
    assert page["customer"]["merged_ids"] == ["anna-2"]
    assert {t["ticket_id"] for t in page["open_tickets"]} == set(opened)
    again = {"subject": "Again", "description": "x", "requester": {"customer_id": "anna-2"}}
    later = await client.post("/v1/tickets", headers=agent, json=again)
    assert later.json()["requester"]["customer_id"] == "anna"
    acme = (await client.get("/v1/organisations/acme-corp", headers=agent)).json()
    assert (acme["customers"], acme["open_tickets"]) == (1, 2)  # Anna's first and her later

    # The tier is an admin's: it changes the SLA of every open ticket of the organisation.
    refused = await client.patch("/v1/organisations/acme-corp", headers=agent,
                                 json={"tier": "key_account"})  # fmt: skip
    assert refused.status_code == 403
    key_account = {"tier": "key_account", "account_manager_id": "agent-9"}
    changed = await client.patch("/v1/organisations/acme-corp", headers=admin, json=key_account)
    assert changed.status_code == 200, changed.text
    records = await find_keyed(kafka_bootstrap, TICKETS, opened[0].encode(), until=2)
    change = parse_envelope(records[-1].value)
    assert isinstance(change.payload, TicketOrganisationChanged)
    assert change.payload.organisation is not None
    assert change.payload.organisation.tier == "key_account"
    assert change.payload.changed_by == Actor(kind=ActorKind.AGENT, id="agent-7")
    ticket = (await client.get(f"/v1/tickets/{opened[0]}", headers=agent)).json()
    assert ticket["version"] == 2
    assert UUID(opened[0]) == change.aggregate_id
