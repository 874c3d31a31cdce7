"""Batch-first idempotent consumers.

A batch is decoded record by record: what cannot be decoded or is not expected here goes
to the dead-letter topic with the reason. The rest is applied in ONE transaction, with the
inbox rows that make redelivery harmless, because a transaction per event would cap the
service at the disk's fsync rate. Failures are split in two kinds:

- transient (database or broker unreachable, serialisation conflicts): the whole batch is
  retried with backoff, then the error propagates so the broker redelivers it later;
- anything else is taken to be caused by one event: the batch is re-applied one event at
  a time and only the events that still fail are dead-lettered.
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import asyncpg
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord

from helpdesk_contracts import ContractError, parse_envelope
from helpdesk_runtime import inbox
from helpdesk_runtime.db import Connection
from helpdesk_runtime.deadletters import DeadLetter, DeadLetterPublisher
from helpdesk_runtime.eventstore import ConcurrencyError, Envelope
from helpdesk_runtime.logging import bound, get_logger

log = get_logger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    ConnectionError,
    KafkaError,
    ConcurrencyError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.TooManyConnectionsError,
    asyncpg.CannotConnectNowError,
    asyncpg.QueryCanceledError,
)


@dataclass(frozen=True)
class Rejection:
    """A handler's refusal of one event (a business rule, not a failure)."""

    event_id: Any
    reason: str


BatchHandler = Callable[[Connection, Sequence[Envelope]], Awaitable[Sequence[Rejection]]]


@dataclass
class BatchOutcome:
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0


@dataclass(frozen=True)
class _Decoded:
    envelope: Envelope
    record: Record


class BatchConsumer:
    """Applies batches of events of one consumer group exactly once in effect."""

    def __init__(
        self,
        *,
        name: str,
        pool: asyncpg.Pool,
        handler: BatchHandler,
        dead_letters: DeadLetterPublisher,
        accepts: frozenset[str],
        max_message_bytes: int = 1_048_576,
        retry_attempts: int = 5,
        retry_backoff_s: float = 0.2,
    ) -> None:
        self.name = name
        self._pool = pool
        self._handler = handler
        self._dead_letters = dead_letters
        self._accepts = accepts
        self._max_bytes = max_message_bytes
        self._attempts = retry_attempts
        self._backoff = retry_backoff_s

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Handle one batch; returns normally only when every record is applied or dead-lettered."""
        outcome = BatchOutcome()
        decoded, letters = self._decode(records)
        await self._dead_letters.publish(letters)
        outcome.dead_lettered += len(letters)
        if decoded:
            await self._apply_with_retry(decoded, outcome)
        return outcome

    def _decode(self, records: Sequence[Record]) -> tuple[list[_Decoded], list[DeadLetter]]:
        decoded: dict[Any, _Decoded] = {}
        letters: list[DeadLetter] = []
        for r in records:
            size = len(r.value or b"")
            if size > self._max_bytes:
                reason = f"message is {size} bytes; the limit is {self._max_bytes}"
                letters.append(DeadLetter(r, reason, "oversize"))
                continue
            try:
                envelope = parse_envelope(r.value or b"")
            except ContractError as exc:
                letters.append(DeadLetter(r, str(exc), "invalid"))
                continue
            if envelope.event_type not in self._accepts:
                reason = f"event type {envelope.event_type!r} is not consumed from {r.topic}"
                letters.append(DeadLetter(r, reason, "unexpected_event_type"))
                continue
            # A redelivered copy inside the same batch is applied once.
            decoded.setdefault(envelope.event_id, _Decoded(envelope, r))
        return list(decoded.values()), letters

    async def _apply_with_retry(self, batch: list[_Decoded], outcome: BatchOutcome) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                await self._apply(batch, outcome)
                return
            except TRANSIENT_ERRORS as exc:
                if attempt == self._attempts:
                    raise  # the broker redelivers the batch; nothing was committed
                log.warning(
                    "batch failed, retrying",
                    consumer=self.name,
                    attempt=attempt,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
            except Exception as exc:
                if len(batch) == 1:
                    reason = f"handler failed: {type(exc).__name__}: {exc}"
                    log.exception("handler failed on one event", consumer=self.name)
                    await self._dead_letters.publish(
                        [DeadLetter(batch[0].record, reason, "failed")]
                    )
                    outcome.dead_lettered += 1
                    return
                for single in batch:  # find the event that fails; apply the others
                    await self._apply_with_retry([single], outcome)
                return

    async def _apply(self, batch: list[_Decoded], outcome: BatchOutcome) -> None:
        by_id = {d.envelope.event_id: d for d in batch}
        async with self._pool.acquire() as conn, conn.transaction():
            fresh = await inbox.claim(
                conn, self.name, [(d.envelope.event_id, d.envelope.tenant_id) for d in batch]
            )
            todo = [d.envelope for d in batch if d.envelope.event_id in fresh]
            # A batch mixes many requests; one event alone can be traced by its own ids.
            trace = (
                {"correlation_id": str(todo[0].correlation_id), "event_id": str(todo[0].event_id)}
                if len(todo) == 1
                else {}
            )
            with bound(consumer=self.name, batch_size=len(todo), **trace):
                rejections = await self._handler(conn, todo) if todo else []
            # Published before the commit: if the commit is lost the batch is redelivered
            # and the letter sent twice, whereas publishing after it could lose the letter.
            await self._dead_letters.publish(
                [DeadLetter(by_id[x.event_id].record, x.reason, "rejected") for x in rejections]
            )
        outcome.applied += len(todo) - len(rejections)
        outcome.duplicates += len(batch) - len(todo)
        outcome.dead_lettered += len(rejections)
