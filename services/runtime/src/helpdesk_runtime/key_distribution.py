"""The data subjects' keys on Kafka: how a service entitled to read personal data gets them
without reading the owner's database (helpdesk_contracts.pii.SUBJECT_KEYS_TOPIC).

The owner (the service that seals the events: ticketing) publishes every key it makes, still
wrapped by the master key ring, on a compacted topic keyed by tenant and subject, and a
tombstone for every key it destroys; compaction then takes the key out of Kafka as well. An
entitled service runs a `SubjectKeyReplica`: it keeps the topic in its own `subject_keys`
table (the same table and `SubjectKeys` the owner uses), so it opens sealed fields exactly as
the owner does, with the master keys from its own Secret. It keeps where it has read to in
the same database (compacted.py), so a new or restored database is filled again. A service
without the master keys (or, in Kubernetes, without the ACL to read the topic) can open
nothing.

A missing key is either destroyed (erased: the replica noted the tombstone) or not here
yet (the keys topic and the events' topic are read independently): a replica reports
`caught_up` once it has read what the topic held when it started, which a consumer of
personal data waits for before it starts.
"""

import base64
from collections import defaultdict
from collections.abc import Sequence
from enum import StrEnum

import asyncpg
from aiokafka import ConsumerRecord
from faststream.security import BaseSecurity
from pydantic import ValidationError

from helpdesk_contracts.pii import SUBJECT_KEYS_TOPIC, SubjectKeyRecord, subject_record_key
from helpdesk_runtime.compacted import CompactedReplica
from helpdesk_runtime.db import Connection
from helpdesk_runtime.kafka import OutgoingMessage, Producer
from helpdesk_runtime.keyring import WrappedKey
from helpdesk_runtime.logging import get_logger
from helpdesk_runtime.personal_data import SubjectKeys, WrappedRecord
from helpdesk_runtime.polling import PendingPublisher

log = get_logger(__name__)


class KeyRole(StrEnum):
    """A service's part in key distribution (`ServiceRuntime(key_role=...)`)."""

    OWNER = "owner"
    """Makes the keys, seals the events and publishes the keys (ticketing)."""
    REPLICA = "replica"
    """Keeps a copy of the published keys to open what it reads."""


class SubjectKeyPublisher(PendingPublisher):
    """The owner's job: publishes the keys not yet on the topic, and the tombstones of the
    keys destroyed, each batch acknowledged by the broker before it is marked done."""

    def __init__(
        self, pool: asyncpg.Pool, producer: Producer, *, batch: int = 500,
        interval_s: float = 1.0,
    ) -> None:  # fmt: skip
        super().__init__("subject key publisher", interval_s)
        self._pool, self._producer, self._batch = pool, producer, batch

    async def publish_pending(self) -> int:
        """One pass; how many records it published."""
        async with self._pool.acquire() as conn, conn.transaction():
            keys = await conn.fetch(
                "SELECT tenant_id, subject_id, key_id, master_version, wrapped FROM subject_keys"
                " WHERE NOT published ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch,
            )
            gone = await conn.fetch(
                "SELECT tenant_id, subject_id FROM destroyed_subject_keys"
                " ORDER BY destroyed_at LIMIT $1 FOR UPDATE SKIP LOCKED",
                self._batch,
            )
            messages = [_record(k) for k in keys] + [_tombstone(g) for g in gone]
            if not messages:
                return 0
            await self._producer.send_many(messages)
            await conn.execute(
                "UPDATE subject_keys SET published = true WHERE key_id = ANY($1::text[])",
                [k["key_id"] for k in keys],
            )
            await conn.execute(
                "DELETE FROM destroyed_subject_keys d USING unnest($1::text[], $2::text[])"
                " AS x(t, s) WHERE d.tenant_id = x.t AND d.subject_id = x.s",
                [g["tenant_id"] for g in gone], [g["subject_id"] for g in gone],
            )  # fmt: skip
        return len(messages)


def _record(row: asyncpg.Record) -> OutgoingMessage:
    record = SubjectKeyRecord(
        tenant_id=row["tenant_id"], subject_id=row["subject_id"], key_id=row["key_id"],
        master_version=row["master_version"],
        wrapped=base64.urlsafe_b64encode(bytes(row["wrapped"])).decode(),
    )  # fmt: skip
    key = subject_record_key(row["tenant_id"], row["subject_id"])
    return OutgoingMessage(SUBJECT_KEYS_TOPIC, record.model_dump_json().encode(), key)


def _tombstone(row: asyncpg.Record) -> OutgoingMessage:
    return OutgoingMessage(
        SUBJECT_KEYS_TOPIC, None, subject_record_key(row["tenant_id"], row["subject_id"])
    )


class SubjectKeyReplica(CompactedReplica):
    """An entitled service's job: the keys topic, kept in its own `subject_keys` table."""

    def __init__(
        self, pool: asyncpg.Pool, keys: SubjectKeys, bootstrap_servers: str,
        security: BaseSecurity | None = None,
    ) -> None:  # fmt: skip
        super().__init__(SUBJECT_KEYS_TOPIC, bootstrap_servers, pool, security)
        self._keys = keys

    async def apply(
        self, conn: Connection, records: Sequence[ConsumerRecord[bytes, bytes]]
    ) -> None:
        """Store what the records say: the last record of a subject wins (a key, or its
        tombstone), so a batch is one statement for the keys and one per erasing tenant."""
        latest: dict[tuple[str, str], WrappedRecord | None] = {}
        for r in records:
            if r.value is None:
                tenant, _, subject = (r.key or b"").decode().partition("\x1f")
                latest[(tenant, subject)] = None
                continue
            try:
                record = SubjectKeyRecord.model_validate_json(r.value)
            except ValidationError as exc:
                log.warning("unreadable subject key record", offset=r.offset, error=str(exc))
                continue
            wrapped = WrappedKey(
                record.key_id, record.master_version,
                base64.urlsafe_b64decode(record.wrapped + "=" * (-len(record.wrapped) % 4)),
            )  # fmt: skip
            latest[(record.tenant_id, record.subject_id)] = WrappedRecord(
                record.tenant_id, record.subject_id, wrapped
            )
        destroyed: dict[str, list[str]] = defaultdict(list)
        for (tenant, subject), kept in latest.items():
            if kept is None:
                destroyed[tenant].append(subject)
        if kept_keys := [k for k in latest.values() if k is not None]:
            await self._keys.store(conn, kept_keys)
        for tenant, subjects in destroyed.items():
            await self._keys.destroy(conn, tenant, subjects)
