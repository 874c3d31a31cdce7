"""The directory against the real PostgreSQL: commands, their read model, matching
requesters to customers and organisations, and the rebuild."""

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from helpdesk_contracts import (
    Actor,
    ActorKind,
    CustomerProfile,
    Organisation,
    OrganisationProfile,
    Requester,
)
from helpdesk_runtime.db import Connection
from ticketing import directory, directory_store, projection
from ticketing.directory_store import LinkRequest
from ticketing.domain.directory import IdentityTakenError
from ticketing.handlers import CommandContext
from ticketing.unit_of_work import unit_of_work

from support.privacy import DEV_KEYS

AT = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
AGENT = Actor(kind=ActorKind.AGENT, id="agent-7")


def _ctx() -> CommandContext:
    return CommandContext("acme", uuid4())


async def _seed(conn: Connection) -> None:
    uow = unit_of_work(conn, DEV_KEYS)
    await directory.register_organisation(uow, _ctx(), AGENT, "org-1", OrganisationProfile(
        name="Jensen", domains=("jensen.dk",), tier="key_account", account_manager_id="a-17"),
        AT)  # fmt: skip
    await directory.register_organisation(
        uow, _ctx(), AGENT, "org-2", OrganisationProfile(name="Other"), AT
    )
    await directory.register_customer(uow, _ctx(), AGENT, "maria", CustomerProfile.model_validate({
        "name": "Maria", "organisation_id": "org-2",
        "contacts": [{"kind": "email", "address": "maria@jensen.dk"},
                     {"kind": "phone", "address": "+45 20 12 34 56"}],
        "external_ids": [{"source": "webshop", "external_id": "w-1"}]}), AT)  # fmt: skip
    await directory.register_customer(uow, _ctx(), AGENT, "boris", CustomerProfile.model_validate({
        "contacts": [{"kind": "email", "address": "boris@example.com"}]}), AT)  # fmt: skip


async def _link(conn: Connection, requester: Requester, source: str | None = None) -> Any:
    [found] = await directory_store.links(conn, [LinkRequest("acme", requester, None, source)])
    return found


async def test_requesters_are_matched_by_id_external_id_email_and_phone(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _seed(conn)
        by_external = await _link(conn, Requester(customer_id="w-1"), source="webshop")
        by_email = await _link(conn, Requester(customer_id="x", email="MARIA@jensen.dk"))
        by_phone = await _link(conn, Requester(customer_id="x", phone="+45 2012 3456"))
        # The id is the strongest: Boris's id wins over Maria's email.
        by_id = await _link(conn, Requester(customer_id="boris", email="maria@jensen.dk"))
        # Another system's id of the same value is not the webshop's.
        elsewhere = await _link(conn, Requester(customer_id="w-1"), source="billing")
        colleague = await _link(conn, Requester(customer_id="p", email="piotr@Jensen.dk"))
        [many] = [await directory_store.links(conn, [
            LinkRequest("acme", Requester(customer_id="maria"), None, None),
            LinkRequest("other-tenant", Requester(customer_id="maria"), None, None)])]  # fmt: skip

    assert {r.customer_id for r, _ in (by_external, by_email, by_phone)} == {"maria"}
    # Maria's own organisation, not the one of her email's domain.
    assert by_email[1] == Organisation(id="org-2", name="Other", tier="standard")
    assert by_id[0].customer_id == "boris"
    assert elsewhere[0].customer_id == "w-1"
    assert colleague[0].customer_id == "p"
    assert colleague[1] == Organisation(id="org-1", name="Jensen", tier="key_account",
                                        account_manager_id="a-17")  # fmt: skip
    assert [r.customer_id for r, _ in many] == ["maria", "maria"]
    assert many[1][1] is None  # tenants do not see each other's directory


async def test_an_address_belongs_to_one_customer_until_they_are_merged(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await _seed(conn)
        uow = unit_of_work(conn, DEV_KEYS)
        taken = {"contacts": [{"kind": "phone", "address": "+4520123456"}]}
        with pytest.raises(IdentityTakenError, match="belongs to customer 'maria'"):
            await directory.change_customer(uow, _ctx(), AGENT, "boris", taken, AT)
        await directory.merge_customers(uow, _ctx(), AGENT, "maria", "boris", AT)
        boris = await _link(conn, Requester(customer_id="boris"))
        by_old_email = await _link(conn, Requester(customer_id="b", email="boris@example.com"))
        page = await directory_store.customer_row(conn, "acme", "boris")

    assert boris[0].customer_id == by_old_email[0].customer_id == "maria"
    assert page is not None
    assert page["merged_into"] == "maria"


async def test_the_directory_is_rebuilt_identically_from_its_events(pool: asyncpg.Pool) -> None:
    tables = ("customers", "customer_identities", "organisations", "organisation_domains")

    async def dump(conn: Connection) -> dict[str, list[Any]]:
        return {t: [dict(r) for r in await conn.fetch(f"SELECT * FROM {t} ORDER BY 1, 2, 3")]
                for t in tables}  # fmt: skip

    async with pool.acquire() as conn, conn.transaction():
        await _seed(conn)
        await directory.merge_customers(
            unit_of_work(conn, DEV_KEYS), _ctx(), AGENT, "maria", "boris", AT
        )
    async with pool.acquire() as conn:
        before = await dump(conn)
    streams = await projection.rebuild(pool, DEV_KEYS)
    async with pool.acquire() as conn:
        after = await dump(conn)

    assert streams == 4
    assert after == before
    assert len(before["customer_identities"]) == 6  # maria's 4, her merged id, boris's email
