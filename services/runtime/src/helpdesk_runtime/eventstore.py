"""The event store: append with optimistic concurrency, load a stream.

Each envelope carries its stream (`aggregate_id`) and the version it claims
(`aggregate_version`); the version before a stream's first new event is the expected
version. The store refuses, with `ConcurrencyError`, an append whose expected version is
not the stream's current one: the primary key (stream_id, version) catches a writer that
lost a race, and a check on the preceding version catches one that skipped ahead.
"""

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from helpdesk_contracts import EventEnvelope
from helpdesk_runtime.db import Connection
from helpdesk_runtime.event_log import (
    EVENT_COLUMNS,
    envelope_from_row,
    insert_in_commit_order,
    wire_json,
)
from helpdesk_runtime.personal_data import (
    SubjectKeys,
    document_of,
    open_documents,
    sealed_payload,
)

Envelope = EventEnvelope[Any]
StreamKey = tuple[str, UUID]  # (tenant_id, stream_id): every lookup is tenant-scoped


class ConcurrencyError(Exception):
    """Another writer appended to the stream first; reload and retry, or answer 409."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"concurrent write to the same stream: {detail}")


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored, with its global position (the outbox order)."""

    position: int
    envelope: Envelope


def _first_versions(envelopes: Sequence[Envelope]) -> dict[StreamKey, int]:
    """Each stream's first new version; refuses events without one or with holes."""
    versions: dict[StreamKey, list[int]] = {}
    for e in envelopes:
        if e.aggregate_id is None or e.aggregate_version is None:
            raise ValueError(f"{e.event_type} {e.event_id} has no aggregate id/version")
        versions.setdefault((e.tenant_id, e.aggregate_id), []).append(e.aggregate_version)
    for (_, stream), numbers in versions.items():
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise ValueError(f"versions of stream {stream} are not consecutive: {numbers}")
    return {key: numbers[0] for key, numbers in versions.items()}


class EventStore(ABC):
    """The port handlers use; one instance is bound to one transaction."""

    @abstractmethod
    async def append(self, envelopes: Sequence[Envelope]) -> None:
        """Append events of one or more streams, atomically; ConcurrencyError on conflict."""

    @abstractmethod
    async def load(self, tenant_id: str, stream_id: UUID) -> list[Envelope]:
        """The stream's events in version order; empty when it does not exist (for the tenant)."""

    @abstractmethod
    async def versions(self, streams: Iterable[StreamKey]) -> dict[StreamKey, int]:
        """Current version of each stream that exists."""


InlineProjection = Callable[[Connection, Sequence[Sequence[Envelope]]], Awaitable[None]]
"""A read model kept in the append's transaction: given each changed stream's whole history
(new events included), it writes its rows. A rebuild calls it with the stored histories."""


class PostgresEventStore(EventStore):
    """Event store over one asyncpg connection inside the caller's transaction.

    Inline projections run in the same transaction as the append, so a read model is never
    behind its events and a rejected append leaves it untouched. They receive each changed
    stream's whole history: the streams this store loaded (the handler loaded them to
    decide; a concurrent writer would make the append conflict) are not read again.

    With `keys`, personal fields are sealed in the rows it writes and opened in the events
    it loads (helpdesk_runtime.personal_data); handlers and projections see them plain.
    """

    def __init__(
        self,
        conn: Connection,
        projections: Sequence[InlineProjection] = (),
        keys: SubjectKeys | None = None,
    ) -> None:
        self._conn = conn
        self._projections = projections
        self._keys = keys
        self._loaded: dict[StreamKey, list[Envelope]] = {}

    async def append(self, envelopes: Sequence[Envelope]) -> None:
        if not envelopes:
            return
        first = _first_versions(envelopes)
        if self._projections:
            # Before the insert, which takes the writers' lock: the lock is held for less.
            await self._project(envelopes)
        stored = await self._stored(envelopes) if self._keys is not None else None
        try:
            await insert_in_commit_order(self._conn, "events", envelopes, stored)
        except asyncpg.UniqueViolationError as exc:
            raise ConcurrencyError(exc.detail or str(exc)) from exc
        if all(version == 1 for version in first.values()):
            return  # new streams only: the primary key alone refuses a second writer
        skipped = await self._conn.fetch(
            """
            SELECT x.s, x.v FROM unnest($1::text[], $2::uuid[], $3::int[]) AS x(t, s, v)
            WHERE x.v > 1 AND NOT EXISTS (
                SELECT 1 FROM events e
                WHERE e.tenant_id = x.t AND e.stream_id = x.s AND e.version = x.v - 1)
            """,
            [t for t, _ in first],
            [s for _, s in first],
            list(first.values()),
        )
        if skipped:
            r = skipped[0]
            raise ConcurrencyError(f"stream {r['s']} is not at version {r['v'] - 1}")

    async def _stored(self, envelopes: Sequence[Envelope]) -> list[tuple[str, str | None]]:
        """Each event's payload as stored, sealed with its stream's subject's key."""
        assert self._keys is not None
        subjects = await self._subjects(envelopes)
        for e, subject in zip(envelopes, subjects, strict=True):
            if subject is None and type(e.payload).personal_fields and e.aggregate_version != 1:
                # Its stream has no first event naming whose data it holds: it does not exist.
                raise ConcurrencyError(
                    f"stream {e.aggregate_id} is not at version {(e.aggregate_version or 1) - 1}"
                )
        keys = await self._keys.for_sealing(
            self._conn,
            {
                (e.tenant_id, s)
                for e, s in zip(envelopes, subjects, strict=True)
                if s is not None and type(e.payload).personal_fields
            },
        )
        return [
            (sealed_payload(e, keys.get((e.tenant_id, s or ""))), s)
            for e, s in zip(envelopes, subjects, strict=True)
        ]

    async def _subjects(self, envelopes: Sequence[Envelope]) -> list[str | None]:
        """Whose data each event holds: its own subject, else its stream's first event's."""
        known: dict[StreamKey, str] = {}
        for key, history in self._loaded.items():
            if history and (subject := history[0].payload.data_subject()) is not None:
                known[key] = subject
        for e in envelopes:
            if e.aggregate_version == 1 and (subject := e.payload.data_subject()) is not None:
                known[(e.tenant_id, e.aggregate_id)] = subject  # type: ignore[index]
        unknown = {(e.tenant_id, e.aggregate_id) for e in envelopes} - known.keys()
        if unknown:
            rows = await self._conn.fetch(
                """
                SELECT e.tenant_id, e.stream_id, e.subject_id FROM events e
                JOIN unnest($1::text[], $2::uuid[]) AS k(t, s)
                  ON e.tenant_id = k.t AND e.stream_id = k.s AND e.version = 1
                WHERE e.subject_id IS NOT NULL
                """,
                [t for t, _ in unknown], [s for _, s in unknown],
            )  # fmt: skip
            known |= {(r["tenant_id"], r["stream_id"]): r["subject_id"] for r in rows}
        return [
            e.payload.data_subject() or known.get((e.tenant_id, e.aggregate_id))  # type: ignore[arg-type]
            for e in envelopes
        ]

    async def _project(self, envelopes: Sequence[Envelope]) -> None:
        new: dict[StreamKey, list[Envelope]] = defaultdict(list)
        for e in envelopes:
            assert e.aggregate_id is not None  # checked by _first_versions
            new[(e.tenant_id, e.aggregate_id)].append(e)
        # A stream whose first new event is version 1 has no history to read.
        unknown = [
            k for k, es in new.items() if k not in self._loaded and es[0].aggregate_version != 1
        ]
        stored = self._loaded | (
            await histories(self._conn, unknown, self._keys) if unknown else {}
        )
        changed = {key: [*stored.get(key, []), *events] for key, events in new.items()}
        for project in self._projections:
            await project(self._conn, list(changed.values()))
        self._loaded.update(changed)

    async def load(self, tenant_id: str, stream_id: UUID) -> list[Envelope]:
        rows = await self._conn.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE tenant_id = $1 AND stream_id = $2"
            " ORDER BY version",
            tenant_id,
            stream_id,
        )
        history = await self._open(rows)
        self._loaded[(tenant_id, stream_id)] = history
        return history

    async def versions(self, streams: Iterable[StreamKey]) -> dict[StreamKey, int]:
        keys = list(streams)
        if not keys:
            return {}
        rows = await self._conn.fetch(
            """
            SELECT e.tenant_id, e.stream_id, max(e.version) AS version
            FROM events e
            JOIN unnest($1::text[], $2::uuid[]) AS k(tenant_id, stream_id)
              ON e.tenant_id = k.tenant_id AND e.stream_id = k.stream_id
            GROUP BY e.tenant_id, e.stream_id
            """,
            [t for t, _ in keys],
            [s for _, s in keys],
        )
        return {(r["tenant_id"], r["stream_id"]): r["version"] for r in rows}

    async def _open(self, rows: Sequence[asyncpg.Record]) -> list[Envelope]:
        return await opened(self._conn, rows, self._keys)


async def opened(
    conn: Connection, rows: Sequence[asyncpg.Record], keys: SubjectKeys | None
) -> list[Envelope]:
    """Stored rows as envelopes; with `keys`, their personal fields opened."""
    if keys is None:
        return [envelope_from_row(row) for row in rows]
    return await open_documents(conn, [document_of(wire_json(row)) for row in rows], keys)


async def histories(
    conn: Connection, streams: Iterable[StreamKey], keys: SubjectKeys | None = None
) -> dict[StreamKey, list[Envelope]]:
    """The stored events of these streams, in version order, in one query."""
    wanted = list(streams)
    rows = await conn.fetch(
        f"""
        SELECT {EVENT_COLUMNS} FROM events e
        JOIN unnest($1::text[], $2::uuid[]) AS k(t, s) ON e.tenant_id = k.t AND e.stream_id = k.s
        ORDER BY e.stream_id, e.version
        """,
        [t for t, _ in wanted],
        [s for _, s in wanted],
    )
    found: dict[StreamKey, list[Envelope]] = defaultdict(list)
    for row, envelope in zip(rows, await opened(conn, rows, keys), strict=True):
        found[(row["tenant_id"], row["stream_id"])].append(envelope)
    return found


class InMemoryEventStore(EventStore):
    """A fake for unit tests, with the same conflict and isolation rules."""

    def __init__(self) -> None:
        self.recorded: list[RecordedEvent] = []

    async def append(self, envelopes: Sequence[Envelope]) -> None:
        first = _first_versions(envelopes)
        taken = {(r.envelope.aggregate_id, r.envelope.aggregate_version) for r in self.recorded}
        if taken.intersection((e.aggregate_id, e.aggregate_version) for e in envelopes):
            raise ConcurrencyError("version already taken")
        current = await self.versions(first)
        for key, version in first.items():
            if current.get(key, 0) != version - 1:
                raise ConcurrencyError(f"stream {key[1]} is not at version {version - 1}")
        start = len(self.recorded)
        self.recorded += [RecordedEvent(start + i + 1, e) for i, e in enumerate(envelopes)]

    async def load(self, tenant_id: str, stream_id: UUID) -> list[Envelope]:
        found = [
            r.envelope
            for r in self.recorded
            if r.envelope.tenant_id == tenant_id and r.envelope.aggregate_id == stream_id
        ]
        return sorted(found, key=lambda e: e.aggregate_version or 0)

    async def versions(self, streams: Iterable[StreamKey]) -> dict[StreamKey, int]:
        result: dict[StreamKey, int] = {}
        wanted = set(streams)
        for r in self.recorded:
            key = (r.envelope.tenant_id, r.envelope.aggregate_id)
            if key in wanted:
                result[key] = max(result.get(key, 0), r.envelope.aggregate_version or 0)
        return result
