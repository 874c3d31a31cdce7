"""Batch-first idempotent consumers.

A batch is decoded record by record. A tolerant reader skips (and counts) a well-formed
envelope of an event type it does not handle: one its contracts release does not know yet
(a newer producer added it to a backward-compatible topic) or one it does not consume.
What cannot be decoded, is not a valid envelope, fails its type's validation (an
unknown schema_version of a handled type included), or is a known type published to the
wrong topic goes to the dead-letter topic with the reason. The rest is applied in ONE
transaction, with the inbox rows that make redelivery harmless, because a transaction per
event would cap the service at the disk's fsync rate. Failures are split in two kinds:

- transient (`transient.is_transient`: the database or broker unavailable or read-only, a
  serialisation conflict): the whole batch is retried a few times with backoff, then the
  error propagates and the subscription pauses until they are back (subscriptions.py);
- anything else is taken to be caused by one event: the batch is re-applied one event at
  a time and only the events that still fail are dead-lettered.
"""

import asyncio
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, TypeAlias, Union

import asyncpg
from aiokafka.structs import ConsumerRecord
from pydantic import Discriminator, Tag, TypeAdapter, ValidationError
from pydantic_core import from_json

from helpdesk_contracts import (
    PLATFORM_TENANT,
    ContractError,
    EventEnvelope,
    envelope_model,
    parse_envelope,
    registered_events,
    topic_for,
)
from helpdesk_contracts.pii import READING_SEALED
from helpdesk_runtime import inbox, tenancy
from helpdesk_runtime.db import Connection
from helpdesk_runtime.deadletters import DeadLetter, DeadLetterPublisher
from helpdesk_runtime.eventstore import Envelope
from helpdesk_runtime.logging import bound, get_logger
from helpdesk_runtime.metrics import Metrics
from helpdesk_runtime.telemetry import Span, SpanKind, Tracer
from helpdesk_runtime.trace import HEADER, by_cause, continued
from helpdesk_runtime.transient import is_transient

log = get_logger(__name__)

Record: TypeAlias = ConsumerRecord[bytes, bytes]


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
    skipped: int = 0


@dataclass(frozen=True)
class _Decoded:
    envelope: Envelope
    record: Record


@dataclass(frozen=True)
class Skipped:
    """A record of an event type this consumer does not handle, and why."""

    record: Record
    event_type: str
    reason: str  # unknown_event_type | not_consumed


# An envelope whose payload is left as it came: what a message of a type this consumer does
# not handle must still be, to be skipped rather than dead-lettered.
_AnyPayload: Any = EventEnvelope[dict[str, Any]]  # type: ignore[type-var]


def _direct_reader(accepts: frozenset[str]) -> TypeAdapter[Envelope] | None:
    """One validator for every envelope this consumer handles, straight from the bytes.

    The discriminator picks the payload's class from event_type and schema_version, so a
    message is parsed and validated in one pass, without the dict `parse_envelope` builds
    first (a third of decoding, measured for issue 9). What it refuses, for whatever
    reason, takes the full path, which says why or skips a type not handled.
    """
    tagged = [
        Annotated[envelope_model(c), Tag(f"{c.event_type}/{c.schema_version}")]
        for c in registered_events()
        if c.event_type in accepts
    ]
    if not tagged:
        return None

    def tag(value: Any) -> str | None:
        if isinstance(value, dict):
            return f"{value.get('event_type')}/{value.get('schema_version')}"
        return None

    if len(tagged) == 1:  # a union of one is its member, which has no tag to check
        tagged.append(Annotated[None, Tag("none")])
    choices: Any = Annotated[Union[tuple(tagged)], Discriminator(tag)]  # noqa: UP007
    return TypeAdapter(choices)


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
        metrics: Metrics | None = None,
        tracer: Tracer | None = None,
    ) -> None:
        self.name = name
        self.metrics = metrics or Metrics()
        self._tracer = tracer or Tracer()
        self._logged_skips: set[tuple[str, str]] = set()
        self._pool = pool
        self._handler = handler
        self._dead_letters = dead_letters
        self._accepts = accepts
        self._direct = _direct_reader(accepts)
        # Events with personal data arrive with it sealed (helpdesk_contracts.pii).
        self._context = (
            READING_SEALED
            if any(c.personal_fields for c in registered_events() if c.event_type in accepts)
            else None
        )
        self._max_bytes = max_message_bytes
        self._attempts = retry_attempts
        self._backoff = retry_backoff_s

    async def process(self, records: Sequence[Record]) -> BatchOutcome:
        """Handle one batch; returns normally only when every record is applied or dead-lettered."""
        started = time.perf_counter()
        outcome = BatchOutcome()
        decoded, letters, skipped = self._decode(records)
        self._count_skipped(skipped)
        outcome.skipped += len(skipped)
        copies = len(records) - len(decoded) - len(letters) - len(skipped)
        if copies:  # the same event twice in one batch: applied once, counted as a duplicate
            self.metrics.duplicates.labels(self.name, records[0].topic).inc(copies)
            outcome.duplicates += copies
        await self._dead_letters.publish(letters)
        self._count_dead_letters(letters)
        outcome.dead_lettered += len(letters)
        if decoded:
            await self._apply_with_retry(decoded, outcome)
        self.metrics.batch_size.labels(self.name).observe(len(records))
        self.metrics.handler_seconds.labels(self.name).observe(time.perf_counter() - started)
        return outcome

    def _decode(
        self, records: Sequence[Record]
    ) -> tuple[list[_Decoded], list[DeadLetter], list[Skipped]]:
        decoded: dict[Any, _Decoded] = {}
        letters: list[DeadLetter] = []
        skipped: list[Skipped] = []
        for r in records:
            result = self._decode_one(r)
            if isinstance(result, DeadLetter):
                letters.append(result)
            elif isinstance(result, Skipped):
                skipped.append(result)
            else:  # a redelivered copy inside the same batch is applied once
                decoded.setdefault(result.event_id, _Decoded(result, r))
        return list(decoded.values()), letters, skipped

    def _decode_one(self, r: Record) -> Envelope | DeadLetter | Skipped:
        size = len(r.value or b"")
        if size > self._max_bytes:
            reason = f"message is {size} bytes; the limit is {self._max_bytes}"
            return DeadLetter(r, reason, "oversize")
        if self._direct is not None:
            with suppress(ValidationError):
                envelope: Envelope | None = self._direct.validate_json(
                    r.value or b"", context=self._context
                )
                if envelope is not None:
                    return envelope
        try:
            data = from_json(r.value or b"", allow_inf_nan=False)
        except ValueError as exc:
            return DeadLetter(r, f"invalid JSON: {exc}", "invalid")
        event_type = data.get("event_type") if isinstance(data, dict) else None
        if isinstance(event_type, str) and event_type not in self._accepts:
            try:
                home: str | None = topic_for(event_type).name
            except ContractError:
                home = None  # newer than our contracts
            if home is not None and home != r.topic:
                reason = f"event type {event_type!r} belongs on {home}, not {r.topic}"
                return DeadLetter(r, reason, "unexpected_event_type")
            # Skipped only if it is a well-formed envelope: a type we do not handle is fine,
            # a broken message is not, whatever type it names.
            try:
                _AnyPayload.model_validate(data)
            except ValidationError as exc:
                return DeadLetter(
                    r, str(ContractError.from_validation_error("envelope", exc)), "invalid"
                )
            return Skipped(r, event_type, "not_consumed" if home else "unknown_event_type")
        try:
            return parse_envelope(data)
        except ContractError as exc:
            return DeadLetter(r, str(exc), "invalid")

    def _count_skipped(self, skipped: Sequence[Skipped]) -> None:
        for x in skipped:
            label = self.metrics.event_type_label(x.event_type)
            self.metrics.skipped.labels(self.name, x.record.topic, label, x.reason).inc()
            if (x.record.topic, label) not in self._logged_skips:  # once per type, not per event
                self._logged_skips.add((x.record.topic, label))
                log.info(
                    "skipping an event type this consumer does not handle",
                    consumer=self.name, topic=x.record.topic, event_type=x.event_type[:100],
                    reason=x.reason,
                )  # fmt: skip

    def _count_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        for x in letters:
            self.metrics.dead_lettered.labels(self.name, x.record.topic, x.error_type).inc()

    async def _apply_with_retry(self, batch: list[_Decoded], outcome: BatchOutcome) -> None:
        for attempt in range(1, self._attempts + 1):
            try:
                # The batch's connection sees the rows of the batch's tenants, no others.
                with tenancy.scoped_to(d.envelope.tenant_id for d in batch):
                    await self._apply(batch, outcome)
                return
            except Exception as exc:
                if is_transient(exc):
                    if attempt == self._attempts:
                        # Nothing was committed: the subscription pauses until the
                        # database and the broker answer, then the batch comes again.
                        raise
                    log.warning(
                        "batch failed, retrying",
                        consumer=self.name,
                        attempt=attempt,
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    await asyncio.sleep(self._backoff * 2 ** (attempt - 1))
                    continue
                if len(batch) == 1:
                    reason = f"handler failed: {type(exc).__name__}: {exc}"
                    log.exception("handler failed on one event", consumer=self.name)
                    letter = DeadLetter(batch[0].record, reason, "failed")
                    await self._dead_letters.publish([letter])
                    self._count_dead_letters([letter])
                    outcome.dead_lettered += 1
                    return
                for single in batch:  # find the event that fails; apply the others
                    await self._apply_with_retry([single], outcome)
                return

    async def _apply(self, batch: list[_Decoded], outcome: BatchOutcome) -> None:
        by_id = {d.envelope.event_id: d for d in batch}
        # Records about the platform itself (watermarks, a few a second on every partition)
        # are idempotent by nature and would fill the inbox: they are not claimed.
        platform = {d.envelope.event_id for d in batch if d.envelope.tenant_id == PLATFORM_TENANT}
        # Each consumed event continues its publisher's trace in the events it causes: in a
        # span of its own while the tracer records, else only its ids (the fast path).
        spans = self._start_spans(batch) if self._tracer.recording else {}
        contexts = (
            {event_id: span.context for event_id, span in spans.items()}
            if spans
            else {d.envelope.event_id: continued(_trace_header(d.record)) for d in batch}
        )
        fresh: set[Any] = set()
        rejections: Sequence[Rejection] = ()
        failure: str | None = None
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                claimed = [(d.envelope.event_id, d.envelope.tenant_id) for d in batch
                           if d.envelope.event_id not in platform]  # fmt: skip
                fresh = await inbox.claim(conn, self.name, claimed) | platform
                todo = [d.envelope for d in batch if d.envelope.event_id in fresh]
                # A batch mixes many requests; one event alone can be traced by its own ids.
                trace = (
                    {"correlation_id": str(todo[0].correlation_id),
                     "event_id": str(todo[0].event_id)}
                    if len(todo) == 1
                    else {}
                )  # fmt: skip
                with bound(consumer=self.name, batch_size=len(todo), **trace), by_cause(contexts):
                    rejections = await self._handler(conn, todo) if todo else []
                # Published before the commit: if the commit is lost the batch is redelivered
                # and the letter sent twice, whereas publishing after it could lose the letter.
                letters = [
                    DeadLetter(by_id[x.event_id].record, x.reason, "rejected") for x in rejections
                ]
                await self._dead_letters.publish(letters)
        except BaseException as exc:
            failure = f"{type(exc).__name__}: {exc}"
            raise
        finally:
            if spans:
                _end_spans(spans, failure, fresh, {x.event_id: x.reason for x in rejections})
        self._count_dead_letters(letters)
        outcome.applied += len(todo) - len(rejections)
        outcome.duplicates += len(batch) - len(todo)
        outcome.dead_lettered += len(rejections)
        self._count_applied(batch, fresh, {x.event_id for x in rejections})

    def _start_spans(self, batch: Sequence[_Decoded]) -> dict[Any, Span]:
        spans = {}
        for d in batch:
            span = self._tracer.start(
                f"process {d.record.topic}", _trace_header(d.record), SpanKind.CONSUMER
            )
            if span.recorded:  # attributes only for the traces kept: most are not, at scale
                span.set_all(self._attributes(d))
            spans[d.envelope.event_id] = span
        return spans

    def _attributes(self, d: _Decoded) -> dict[str, str | int]:
        return {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": d.record.topic,
            "messaging.destination.partition.id": str(d.record.partition),
            "messaging.kafka.offset": d.record.offset,
            "messaging.kafka.message.key": (d.record.key or b"").decode(errors="replace"),
            "messaging.consumer.group.name": self.name,
            "messaging.message.id": str(d.envelope.event_id),
            "helpdesk.event_type": d.envelope.event_type,
            "helpdesk.tenant_id": d.envelope.tenant_id,
        }

    def _count_applied(self, batch: Sequence[_Decoded], fresh: set[Any], refused: set[Any]) -> None:
        # Counted per (topic, type) first: one labelled update per group, not per event.
        applied: Counter[tuple[str, str]] = Counter()
        repeats: Counter[str] = Counter()
        ages: dict[str, list[datetime]] = defaultdict(list)
        for d in batch:
            topic, envelope = d.record.topic, d.envelope
            if envelope.event_id not in fresh:
                repeats[topic] += 1
                continue
            ages[topic].append(envelope.occurred_at)
            if envelope.event_id not in refused:
                applied[(topic, envelope.event_type)] += 1
        m = self.metrics
        for topic, n in repeats.items():
            m.duplicates.labels(self.name, topic).inc(n)
        for (topic, event_type), n in applied.items():
            m.consumed.labels(self.name, topic, event_type).inc(n)
        now = datetime.now(UTC)
        for topic, occurred in ages.items():
            histogram = m.event_age.labels(self.name, topic)
            for at in occurred:
                histogram.observe(max((now - at).total_seconds(), 0.0))

    def observe_lag(
        self, records: Sequence[Record], highwater: Callable[[str, int], int | None]
    ) -> None:
        """Each partition's distance from its end after this batch (`highwater` of the client)."""
        last: dict[tuple[str, int], int] = {}
        for r in records:
            last[(r.topic, r.partition)] = max(r.offset, last.get((r.topic, r.partition), -1))
        for (topic, partition), offset in last.items():
            end = highwater(topic, partition)
            if end is not None:
                self.metrics.lag.labels(self.name, topic, str(partition)).set(
                    max(end - offset - 1, 0)
                )


def _end_spans(
    spans: Mapping[Any, Span], failure: str | None, fresh: set[Any], rejected: Mapping[Any, str]
) -> None:
    """End each consumed event's span, saying what became of the event."""
    for event_id, span in spans.items():
        if failure is not None:
            span.fail(failure)  # rolled back: the event comes again
        elif event_id in rejected:
            span.set("helpdesk.dead_letter.reason", rejected[event_id][:500])
            span.fail("dead-lettered")
        elif event_id not in fresh:
            span.set("helpdesk.duplicate", True)
        span.end()


def _trace_header(record: Record) -> bytes | None:
    return next((v for k, v in record.headers or () if k == HEADER), None)
