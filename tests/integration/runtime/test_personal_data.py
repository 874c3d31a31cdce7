"""Personal data in the event log: sealed in the rows, opened on load, erased with its key."""

import json
from typing import Any
from uuid import uuid4

import asyncpg
import pytest

from helpdesk_contracts import TicketOpened
from helpdesk_contracts.pii import ERASED, is_sealed
from helpdesk_runtime.event_log import insert_in_commit_order
from helpdesk_runtime.eventstore import PostgresEventStore, histories
from helpdesk_runtime.keyring import KeyRing
from helpdesk_runtime.personal_data import SubjectKeys, rewrap_all, seal_plain_events
from helpdesk_runtime.settings import DEV_PII_MASTER_KEYS

from support.events import note, opened
from support.privacy import DEV_KEYS


async def _raw(pool: asyncpg.Pool, ticket: object) -> list[asyncpg.Record]:
    async with pool.acquire() as conn:
        return await conn.fetch(
            "SELECT payload::text AS payload, subject_id FROM events WHERE stream_id = $1"
            " ORDER BY version",
            ticket,
        )


async def test_the_rows_hold_personal_fields_sealed_and_the_store_loads_them_plain(
    pool: asyncpg.Pool,
) -> None:
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=DEV_KEYS).append([opened(ticket, tenant)])
    async with pool.acquire() as conn, conn.transaction():
        store = PostgresEventStore(conn, keys=DEV_KEYS)
        await store.load(tenant, ticket)  # as a handler does before it appends
        await store.append([note(ticket, 2, tenant)])
    async with pool.acquire() as conn, conn.transaction():  # a writer that did not load it
        await PostgresEventStore(conn, keys=DEV_KEYS).append([note(ticket, 3, tenant)])

    rows = await _raw(pool, ticket)
    assert [r["subject_id"] for r in rows] == ["c-1", "c-1", "c-1"]  # the requester's
    text = " ".join(r["payload"] for r in rows)
    for plain in ("Invoice shows", "charged twice", "Anna", "anna@example.com", "note 2"):
        assert plain not in text
    stored = json.loads(rows[0]["payload"])
    assert is_sealed(stored["subject"])
    assert is_sealed(stored["requester"]["email"])
    assert stored["requester"]["customer_id"] == "c-1"  # ids stay plain: statistics need them
    assert stored["priority"] == "normal"

    async with pool.acquire() as conn:
        loaded = await PostgresEventStore(conn, keys=DEV_KEYS).load(tenant, ticket)
        without_keys = (await histories(conn, [(tenant, ticket)]))[(tenant, ticket)]
    assert loaded[0] == opened(ticket, tenant).model_copy(
        update={"event_id": loaded[0].event_id, "correlation_id": loaded[0].correlation_id,
                "occurred_at": loaded[0].occurred_at}
    )  # fmt: skip
    assert [e.payload.body for e in loaded[1:]] == ["note 2", "note 3"]
    assert is_sealed(without_keys[0].payload.subject)  # a reader not entitled sees ciphertext


async def test_destroying_a_subjects_key_erases_their_fields_and_nothing_else(
    pool: asyncpg.Pool,
) -> None:
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=DEV_KEYS).append(
            [opened(ticket, tenant), note(ticket, 2, tenant)]
        )
        assert await DEV_KEYS.destroy(conn, tenant, ["c-1"]) == 1
    async with pool.acquire() as conn:
        first, second = await PostgresEventStore(conn, keys=DEV_KEYS).load(tenant, ticket)
    payload = first.payload
    assert isinstance(payload, TicketOpened)
    assert (payload.subject, payload.description) == (ERASED, ERASED)
    assert (payload.requester.name, payload.requester.email) == (ERASED, ERASED)
    assert payload.requester.customer_id == "c-1"
    assert payload.number == 1
    assert second.payload.body == ERASED
    # New data about the same person later gets a new key: what was erased stays erased.
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=DEV_KEYS).append([note(ticket, 3, tenant)])
    async with pool.acquire() as conn:
        history = await PostgresEventStore(conn, keys=DEV_KEYS).load(tenant, ticket)
    assert [e.payload.body for e in history[1:]] == [ERASED, "note 3"]


async def test_events_stored_plain_before_are_sealed_once_by_the_migration(
    pool: asyncpg.Pool,
) -> None:
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():  # as a release before 2.0 wrote them
        await insert_in_commit_order(
            conn, "events", [opened(ticket, tenant), note(ticket, 2, tenant)]
        )
    assert "anna@example.com" in " ".join(r["payload"] for r in await _raw(pool, ticket))

    assert await seal_plain_events(pool, DEV_KEYS, batch=1) >= 2
    assert await seal_plain_events(pool, DEV_KEYS) == 0  # once

    rows = await _raw(pool, ticket)
    assert [r["subject_id"] for r in rows] == ["c-1", "c-1"]
    assert "anna@example.com" not in " ".join(r["payload"] for r in rows)
    async with pool.acquire() as conn:
        loaded = await PostgresEventStore(conn, keys=DEV_KEYS).load(tenant, ticket)
    assert loaded[0].payload.requester.email == "anna@example.com"
    assert loaded[1].payload.body == "note 2"


async def test_a_new_master_key_rewraps_every_subject_key_and_nothing_sealed_changes(
    pool: asyncpg.Pool,
) -> None:
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=DEV_KEYS).append([opened(ticket, tenant)])
    before = await _raw(pool, ticket)
    rotated = KeyRing.parse(f"{DEV_PII_MASTER_KEYS},2:{'A' * 43}")  # a second version

    assert await rewrap_all(pool, rotated) >= 1
    assert await rewrap_all(pool, rotated) == 0
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT master_version, published FROM subject_keys"
            " WHERE tenant_id = $1 AND subject_id = 'c-1'",
            tenant,
        )
        assert row is not None
        assert (row["master_version"], row["published"]) == (2, False)  # to go out again
        only_new = SubjectKeys(KeyRing.parse(f"2:{'A' * 43}"))  # the old version removed
        loaded = await PostgresEventStore(conn, keys=only_new).load(tenant, ticket)
    assert loaded[0].payload.subject == "Invoice shows the wrong amount"
    assert await _raw(pool, ticket) == before  # not one event was touched


async def test_a_plain_value_that_looks_sealed_is_sealed_like_any_other(
    pool: asyncpg.Pool,
) -> None:
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    looks_sealed = "pii:v1:k1:abcdefghijklmnopqrstuvwxyz0123456789ABCDEF"  # typed by someone
    event = opened(ticket, tenant)
    event = event.model_copy(update={"payload": event.payload.model_copy(
        update={"subject": looks_sealed})})  # fmt: skip
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=DEV_KEYS).append([event])
    [row] = await _raw(pool, ticket)
    assert looks_sealed not in row["payload"]
    async with pool.acquire() as conn:
        [loaded] = await PostgresEventStore(conn, keys=DEV_KEYS).load(tenant, ticket)
    assert loaded.payload.subject == looks_sealed


async def test_a_subjects_key_is_unwrapped_once_and_still_erased_with_its_row(
    pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = SubjectKeys(KeyRing.parse(DEV_PII_MASTER_KEYS))
    unwrapped: list[str] = []
    unwrap = KeyRing.unwrap

    def counted(ring: KeyRing, tenant: str, subject: str, wrapped: Any) -> bytes:
        unwrapped.append(subject)
        return unwrap(ring, tenant, subject, wrapped)

    monkeypatch.setattr(KeyRing, "unwrap", counted)
    ticket, tenant = uuid4(), f"t{uuid4().hex[:8]}"
    async with pool.acquire() as conn, conn.transaction():
        await PostgresEventStore(conn, keys=keys).append([opened(ticket, tenant)])
    for version in (2, 3):  # batch after batch about the same customer
        async with pool.acquire() as conn, conn.transaction():
            await PostgresEventStore(conn, keys=keys).append([note(ticket, version, tenant)])
    async with pool.acquire() as conn:
        history = await PostgresEventStore(conn, keys=keys).load(tenant, ticket)
    assert [e.payload.body for e in history[1:]] == ["note 2", "note 3"]
    assert unwrapped == []  # made here, kept opened
    async with pool.acquire() as conn, conn.transaction():
        assert await keys.destroy(conn, tenant, ["c-1"]) == 1
    async with pool.acquire() as conn:
        history = await PostgresEventStore(conn, keys=keys).load(tenant, ticket)
    assert [e.payload.body for e in history[1:]] == [ERASED, ERASED]
