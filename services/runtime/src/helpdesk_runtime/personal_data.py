"""Personal data in the event log: sealed on append with its data subject's key, opened on load.

An event's personal fields (`Event.personal_fields`) are sealed (helpdesk_contracts.pii)
before its row is written, so the log and every topic the relay fills from it hold them only
as ciphertext; the service itself works with plain events, because the store opens them when
it loads a stream. Each data subject (a customer of a tenant) has one key, made on first use
and stored wrapped by the master key ring (helpdesk_runtime.keyring) in `subject_keys`.
Destroying a subject's keys erases every field they sealed: what cannot be opened any more
reads as `pii.ERASED`, and everything else in the events (ids, times, statuses) stays.

Whose key seals an event: the subject its payload names (`Event.data_subject`: a ticket's
opening names its requester, a customer's events that customer), else the one its stream's
first event named (a reply on a ticket is sealed with the requester's key).
"""

from __future__ import annotations

import base64
import functools
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic_core import from_json, to_json

from helpdesk_contracts import EventEnvelope, event_class, parse_envelope, registered_events
from helpdesk_contracts.errors import ContractError
from helpdesk_contracts.pii import (
    ERASED,
    SubjectCipher,
    associated_data,
    is_sealed,
    key_id_of,
    transform,
)
from helpdesk_runtime.db import Connection
from helpdesk_runtime.event_log import EVENT_COLUMNS, envelope_from_row
from helpdesk_runtime.keyring import KeyRing, WrappedKey

Envelope = EventEnvelope[Any]
Subject = tuple[str, str]  # (tenant id, subject id)


@dataclass(frozen=True)
class WrappedRecord:
    """A subject's key as stored and published: wrapped by the master key ring."""

    tenant_id: str
    subject_id: str
    key: WrappedKey


@dataclass(frozen=True)
class SubjectKey:
    subject_id: str
    key_id: str
    key: bytes

    @functools.cached_property
    def cipher(self) -> SubjectCipher:
        return SubjectCipher(self.key, self.key_id)


class SubjectKeys:
    """The data subjects' keys of one service's database, wrapped by its master key ring."""

    def __init__(self, ring: KeyRing, cached: int = 100_000, cached_s: float = 600.0) -> None:
        self._ring = ring
        # Keys already unwrapped, by key id (random, never reused), with their ciphers: a
        # spike's batches meet the same customers again and again, and unwrapping each
        # subject's key and making its cipher anew cost a tenth of sealing an event. The
        # database still says which keys exist: an erased key is never fetched again. It is
        # dropped from memory at once here, and within `cached_s` in the other processes.
        self._unwrapped: dict[str, tuple[float, SubjectKey]] = {}
        self._cached, self._cached_s = cached, cached_s

    async def for_sealing(
        self, conn: Connection, subjects: Iterable[Subject]
    ) -> dict[Subject, SubjectKey]:
        """Each subject's key, made (and stored) for those that have none yet."""
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        found = await self._fetch(conn, "subject_id", wanted)
        missing = [s for s in wanted if s not in found]
        if missing:
            made = {s: self._ring.new_key(*s, _new_key_id()) for s in missing}
            inserted = await conn.fetch(
                """
                INSERT INTO subject_keys (tenant_id, subject_id, key_id, master_version, wrapped)
                SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::bytea[])
                ON CONFLICT (tenant_id, subject_id) DO NOTHING
                RETURNING tenant_id, subject_id
                """,
                [t for t, _ in missing], [s for _, s in missing],
                [made[s][1].key_id for s in missing],
                [made[s][1].master_version for s in missing],
                [made[s][1].wrapped for s in missing],
            )  # fmt: skip
            for r in inserted:
                subject = (r["tenant_id"], r["subject_id"])
                key, wrapped = made[subject]
                found[subject] = self._remember(SubjectKey(subject[1], wrapped.key_id, key))
            # A concurrent writer made some of them first: its keys win, read back (the
            # insert waited for it to commit).
            if lost := [s for s in missing if s not in found]:
                found |= await self._fetch(conn, "subject_id", lost)
        return found

    async def for_opening(
        self, conn: Connection, key_ids: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], SubjectKey]:
        """The keys that still exist among these (tenant id, key id)."""
        wanted = sorted(set(key_ids))
        if not wanted:
            return {}
        found = await self._fetch(conn, "key_id", wanted)
        return {(t, k.key_id): k for (t, _), k in found.items()}

    async def destroy(self, conn: Connection, tenant_id: str, subject_ids: Sequence[str]) -> int:
        """Delete these subjects' keys: every field they sealed is erased. The services
        holding a copy delete theirs when the tombstone reaches them (key_distribution.py)."""
        gone: list[str] = await conn.fetchval(
            """
            WITH gone AS (
                DELETE FROM subject_keys WHERE tenant_id = $1 AND subject_id = ANY($2::text[])
                RETURNING tenant_id, subject_id, key_id),
            noted AS (
                INSERT INTO destroyed_subject_keys (tenant_id, subject_id, key_id)
                SELECT $1, s, (SELECT key_id FROM gone WHERE subject_id = s)
                FROM unnest($2::text[]) AS s
                ON CONFLICT (tenant_id, subject_id) DO UPDATE SET destroyed_at = now())
            SELECT coalesce(array_agg(key_id), '{}') FROM gone
            """,
            tenant_id, list(subject_ids),
        )  # fmt: skip
        for key_id in gone:
            self._unwrapped.pop(key_id, None)
        return len(gone)

    async def destroyed(
        self, conn: Connection, tenant_id: str, subject_ids: Iterable[str]
    ) -> set[str]:
        """Which of these subjects' keys are known to be destroyed. On a replica, a key that
        is neither here nor destroyed has not arrived yet (key_distribution.py)."""
        rows = await conn.fetch(
            "SELECT subject_id FROM destroyed_subject_keys"
            " WHERE tenant_id = $1 AND subject_id = ANY($2::text[])",
            tenant_id, sorted(set(subject_ids)),
        )  # fmt: skip
        return {r["subject_id"] for r in rows}

    async def store(self, conn: Connection, records: Sequence[WrappedRecord]) -> None:
        """Keep copies of keys another service owns (a replica of the keys topic)."""
        await conn.execute(
            """
            INSERT INTO subject_keys (tenant_id, subject_id, key_id, master_version, wrapped,
                published)
            SELECT *, true FROM unnest($1::text[], $2::text[], $3::text[], $4::int[],
                $5::bytea[])
            ON CONFLICT (tenant_id, subject_id) DO UPDATE SET key_id = excluded.key_id,
                master_version = excluded.master_version, wrapped = excluded.wrapped
            """,
            [r.tenant_id for r in records], [r.subject_id for r in records],
            [r.key.key_id for r in records], [r.key.master_version for r in records],
            [r.key.wrapped for r in records],
        )  # fmt: skip
        await conn.execute(
            "DELETE FROM destroyed_subject_keys d USING unnest($1::text[], $2::text[]) AS x(t, s)"
            " WHERE d.tenant_id = x.t AND d.subject_id = x.s",
            [r.tenant_id for r in records], [r.subject_id for r in records],
        )  # fmt: skip

    async def _fetch(
        self, conn: Connection, column: str, wanted: Sequence[tuple[str, str]]
    ) -> dict[Subject, SubjectKey]:
        assert column in ("subject_id", "key_id")
        rows = await conn.fetch(
            f"""
            SELECT k.tenant_id, k.subject_id, k.key_id, k.master_version, k.wrapped
            FROM subject_keys k
            JOIN unnest($1::text[], $2::text[]) AS w(t, v) ON k.tenant_id = w.t AND k.{column} = w.v
            """,
            [t for t, _ in wanted], [v for _, v in wanted],
        )  # fmt: skip
        return {(r["tenant_id"], r["subject_id"]): self._open(r) for r in rows}

    def _open(self, row: asyncpg.Record) -> SubjectKey:
        known = self._unwrapped.get(row["key_id"])
        if known is not None and known[0] > time.monotonic():
            return known[1]
        wrapped = WrappedKey(row["key_id"], row["master_version"], bytes(row["wrapped"]))
        key = self._ring.unwrap(row["tenant_id"], row["subject_id"], wrapped)
        return self._remember(SubjectKey(row["subject_id"], row["key_id"], key))

    def _remember(self, key: SubjectKey) -> SubjectKey:
        if len(self._unwrapped) >= self._cached:  # bounded: start again
            self._unwrapped.clear()
        self._unwrapped[key.key_id] = (time.monotonic() + self._cached_s, key)
        return key


def _new_key_id() -> str:
    return base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()


def sealed_payload(envelope: Envelope, key: SubjectKey | None) -> str:
    """The payload's JSON text as stored and published: personal fields sealed with `key`."""
    fields = type(envelope.payload).personal_fields
    if not fields:
        plain: str = envelope.payload.model_dump_json()
        return plain
    if key is None:
        raise ValueError(f"{envelope.event_type} {envelope.event_id} has personal data, no key")
    document = envelope.payload.model_dump(mode="json")
    cipher = key.cipher
    bound = associated_data(envelope.tenant_id, key.subject_id, "")  # + the field's path

    def sealing(path: str, value: str) -> str:
        # Erased stays erased. Everything else is sealed, a value that merely looks sealed
        # too: events are held plain until stored, so none is sealed already.
        return value if value == ERASED else cipher.seal(value, bound + path.encode())

    transform(document, fields, sealing)
    return str(to_json(document), "utf-8")


async def open_documents(
    conn: Connection, documents: Sequence[dict[str, Any]], keys: SubjectKeys
) -> list[Envelope]:
    """Envelopes from stored or published (wire) JSON documents, personal fields opened
    where their key still exists, else ERASED. (A reader without keys, not entitled,
    parses the events as they are: their personal fields stay sealed.)"""
    wanted: set[tuple[str, str]] = set()
    fields_of: list[tuple[str, ...]] = []
    for document in documents:
        fields = _personal_fields(document)
        fields_of.append(fields)
        if fields:
            tenant = document["tenant_id"]

            def collect(_: str, value: str, tenant: str = tenant) -> str:
                if is_sealed(value):
                    wanted.add((tenant, key_id_of(value)))
                return value

            transform(document["payload"], fields, collect)
    found = await keys.for_opening(conn, wanted) if wanted else {}
    for document, fields in zip(documents, fields_of, strict=True):
        if fields:
            transform(document["payload"], fields, _opener(document["tenant_id"], found))
    return [parse_envelope(document) for document in documents]


def _personal_fields(document: dict[str, Any]) -> tuple[str, ...]:
    try:
        return event_class(document["event_type"], document["schema_version"]).personal_fields
    except (ContractError, KeyError):
        return ()  # parse_envelope says what is wrong with it


def _opener(tenant: str, found: dict[tuple[str, str], SubjectKey]) -> Any:
    def opening(path: str, value: str) -> str:
        if not is_sealed(value):
            return value
        key = found.get((tenant, key_id_of(value)))
        if key is None:
            return ERASED
        return key.cipher.unseal(value, associated_data(tenant, key.subject_id, path))

    return opening


def document_of(wire: bytes) -> dict[str, Any]:
    """A stored event's wire JSON as a document to open."""
    document: dict[str, Any] = from_json(wire)
    return document


async def open_published(conn: Connection, value: bytes, keys: SubjectKeys) -> Envelope:
    """One event as published on a topic (a Kafka record's value), its personal data
    opened with the keys this service holds."""
    [envelope] = await open_documents(conn, [document_of(value)], keys)
    return envelope


async def seal_plain_events(pool: asyncpg.Pool, keys: SubjectKeys, batch: int = 500) -> int:
    """Seal, once, the personal fields of events stored before they were sealed (the rows
    without a subject); returns how many it sealed. Run with the migrations: safe to run
    again, and from several processes at once (each takes rows the others do not hold)."""
    personal = sorted({c.event_type for c in registered_events() if c.personal_fields})
    total = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE subject_id IS NULL"
                " AND event_type = ANY($1::text[]) ORDER BY position LIMIT $2"
                " FOR UPDATE SKIP LOCKED",
                personal, batch,
            )  # fmt: skip
            if not rows:
                return total
            envelopes = [envelope_from_row(row) for row in rows]
            subjects = await _stream_subjects(conn, envelopes)
            named = [
                e.payload.data_subject() or subjects.get((e.tenant_id, e.aggregate_id))
                for e in envelopes
            ]
            if None in named:
                raise RuntimeError(f"event {envelopes[named.index(None)].event_id}: no subject")
            found = await keys.for_sealing(
                conn, {(e.tenant_id, s) for e, s in zip(envelopes, named, strict=True) if s}
            )
            stored = [
                (row["position"], sealed_payload(e, found[(e.tenant_id, s)]), s)
                for row, e, s in zip(rows, envelopes, named, strict=True)
                if s is not None
            ]
            await conn.execute(
                """
                UPDATE events e SET payload = x.payload::jsonb, subject_id = x.subject
                FROM unnest($1::bigint[], $2::text[], $3::text[]) AS x(position, payload, subject)
                WHERE e.position = x.position
                """,
                *map(list, zip(*stored, strict=True)),
            )
            total += len(stored)


async def _stream_subjects(
    conn: Connection, envelopes: Sequence[Envelope]
) -> dict[tuple[str, Any], str]:
    """The subject each stream's first event names (customer ids are never sealed)."""
    streams = {(e.tenant_id, e.aggregate_id) for e in envelopes if e.aggregate_id is not None}
    rows = await conn.fetch(
        f"""
        SELECT {EVENT_COLUMNS} FROM events e
        JOIN unnest($1::text[], $2::uuid[]) AS k(t, s)
          ON e.tenant_id = k.t AND e.stream_id = k.s AND e.version = 1
        """,
        [t for t, _ in streams], [s for _, s in streams],
    )  # fmt: skip
    found: dict[tuple[str, Any], str] = {}
    for row in rows:
        subject = envelope_from_row(row).payload.data_subject()
        if subject is not None:
            found[(row["tenant_id"], row["stream_id"])] = subject
    return found


async def rewrap_all(pool: asyncpg.Pool, ring: KeyRing, batch: int = 1000) -> int:
    """Rotate the master key: wrap every subject key that an older master version wrapped
    under the current one (the subject keys, and so every sealed event, stay as they are).
    The keys go out on the keys topic again, so replicas hold the new wrapping; once this
    returns 0 the old master version can be removed from PII_MASTER_KEYS."""
    done = 0
    while True:
        async with pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT tenant_id, subject_id, key_id, master_version, wrapped FROM subject_keys"
                " WHERE master_version <> $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                ring.current, batch,
            )  # fmt: skip
            if not rows:
                return done
            new = [
                ring.rewrap(r["tenant_id"], r["subject_id"], WrappedKey(
                    r["key_id"], r["master_version"], bytes(r["wrapped"])))
                for r in rows
            ]  # fmt: skip
            await conn.execute(
                """
                UPDATE subject_keys k SET master_version = x.version, wrapped = x.wrapped,
                    published = false
                FROM unnest($1::text[], $2::int[], $3::bytea[]) AS x(key_id, version, wrapped)
                WHERE k.key_id = x.key_id
                """,
                [w.key_id for w in new], [w.master_version for w in new],
                [w.wrapped for w in new],
            )  # fmt: skip
            done += len(new)
