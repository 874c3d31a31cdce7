"""The envelope every Kafka message carries, the payload base class and the event registry.

Wire format
-----------
- **Value**: the envelope as UTF-8 JSON (`EventEnvelope.to_json()`), for example::

      {"event_id": "<uuid>", "event_type": "TicketOpened", "schema_version": 1,
       "occurred_at": "2025-03-03T09:30:00Z", "tenant_id": "acme", "producer": "ticketing",
       "correlation_id": "<uuid>", "causation_id": null,
       "aggregate_id": "<ticket uuid>", "aggregate_version": 1, "payload": {...}}

- **Key** (`kafka_key(envelope)`): the ticket id (`aggregate_id`) as text for ticket events;
  for intake, the publisher's `external_id` of a `TicketSubmitted` and `external_thread_id`
  of a `CustomerMessageReceived`; `ticket_id`, else `feedback_id`, for feedback. One key
  always lands on one partition, so one ticket's (or one thread's) events stay in order.
- **Headers** (`kafka_headers(envelope)`): `event_type`, `schema_version`, `tenant_id`,
  `event_id` and `correlation_id` as UTF-8 text, mirroring the envelope so tools can route
  and filter without parsing the value. The value is authoritative.

Readers ignore fields they do not know, so adding an optional field is backward compatible.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Generic, Self, TypeVar, cast
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import from_json

from helpdesk_contracts.errors import ContractError
from helpdesk_contracts.pii import READING_SEALED
from helpdesk_contracts.values import ContractModel

TenantId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
"""A tenant (customer account) id: lower-case letters, digits, "_" and "-", 1..63 characters."""

PLATFORM_TENANT = "system"
"""Reserved: the tenant id of records about the platform itself (watermarks), never a tenant."""

_EVENT_TYPE_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,99}$"
EventTypeName = Annotated[str, StringConstraints(pattern=_EVENT_TYPE_PATTERN)]
SchemaVersion = Annotated[int, Field(ge=1, le=999)]
MAX_BIGINT = 2**63 - 1  # fits a PostgreSQL bigint


class Event(ContractModel):
    """Base class of event payloads; a subclass that sets `event_type` is registered."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    # Ticket events set this: their envelope must carry aggregate_id and aggregate_version.
    requires_aggregate: ClassVar[bool] = False
    personal_fields: ClassVar[tuple[str, ...]] = ()
    """Paths of the payload's personal data ("requester.email", "attachments.*.filename"):
    sealed in the event log and on the topics that say so (helpdesk_contracts.pii)."""

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if hasattr(cls, "event_type"):
            _register(cls)

    def partition_key(self) -> str | None:
        """The Kafka key, for events not keyed by the envelope's aggregate id."""
        return None

    def data_subject(self) -> str | None:
        """The customer whose key seals this event's personal fields, when the event names
        one (a ticket's opening names its requester); else its stream's first event does."""
        return None


_REGISTRY: dict[tuple[str, int], type[Event]] = {}
_LATEST: dict[str, type[Event]] = {}
EVENT_TYPES: Mapping[str, type[Event]] = MappingProxyType(_LATEST)
"""Event type name -> payload class (its highest registered schema version)."""


def _register(cls: type[Event]) -> None:
    name, version = cls.event_type, cls.schema_version
    if not isinstance(name, str) or not re.fullmatch(_EVENT_TYPE_PATTERN, name):
        raise TypeError(f"{cls.__qualname__}.event_type must be a name, not {name!r}")
    if not isinstance(version, int) or not 1 <= version <= 999:
        raise TypeError(f"{cls.__qualname__}.schema_version must be 1..999, not {version!r}")
    if (name, version) in _REGISTRY:
        other = _REGISTRY[(name, version)]
        raise TypeError(
            f"event type {name} v{version} is defined twice: "
            f"{other.__module__}.{other.__qualname__} and {cls.__module__}.{cls.__qualname__}"
        )
    _REGISTRY[(name, version)] = cls
    if name not in _LATEST or _LATEST[name].schema_version < version:
        _LATEST[name] = cls


def event_class(event_type: str, schema_version: int) -> type[Event]:
    """The payload class of an event type and version; ContractError if not registered."""
    try:
        return _REGISTRY[(event_type, schema_version)]
    except KeyError:
        if event_type not in _LATEST:
            known = ", ".join(sorted(_LATEST))
            raise ContractError(f"unknown event_type {event_type!r} (known: {known})") from None
        supported = sorted(v for n, v in _REGISTRY if n == event_type)
        raise ContractError(
            f"unsupported schema_version {schema_version} of {event_type} "
            f"(supported: {', '.join(map(str, supported))})"
        ) from None


def registered_events() -> tuple[type[Event], ...]:
    """Every registered payload class, all versions, ordered by event type and version."""
    return tuple(_REGISTRY[key] for key in sorted(_REGISTRY))


def new_id() -> UUID:
    """A random (version 4) UUID for an event or correlation id.

    From Python's generator (seeded from the OS at start, and again in a forked child),
    not from `os.urandom`: ids must be unique, not unpredictable, and a system call per id
    was most of the cost of wrapping an event (measured for the SLA service)."""
    return UUID(int=random.getrandbits(128), version=4)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before datetime.min in UTC
        raise ValueError("datetime is out of range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""RFC 3339 with a UTC offset (naive times are refused), read as UTC."""


P = TypeVar("P", bound=Event, covariant=True)
E = TypeVar("E", bound=Event)


class EventEnvelope(ContractModel, Generic[P]):
    """An event with its metadata: the JSON value of every Kafka message."""

    event_id: UUID
    """Unique per event; consumers deduplicate on it, so a re-sent event keeps its id."""
    event_type: EventTypeName
    """Name of the payload's type, e.g. "TicketOpened"."""
    schema_version: SchemaVersion
    """Version of the payload's schema."""
    occurred_at: UtcDatetime
    """When it happened: RFC 3339 with a UTC offset (read as UTC)."""
    tenant_id: TenantId
    """The tenant (customer account of the helpdesk) the event belongs to."""
    producer: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    """Name of the system or service that published the event."""
    correlation_id: UUID
    """Shared by every event that one original request led to, for tracing."""
    causation_id: UUID | None = None
    """event_id of the event (or id of the command) that directly caused this one."""
    aggregate_id: UUID | None = None
    """The ticket id, for ticket events; it is also their Kafka key."""
    aggregate_version: Annotated[int, Field(ge=1, le=MAX_BIGINT)] | None = None
    """Position of the event in its ticket's history: 1, 2, 3... without gaps."""
    payload: P

    @model_validator(mode="after")
    def _check_consistency(self) -> Self:
        if self.aggregate_version is not None and self.aggregate_id is None:
            raise ValueError("aggregate_version requires aggregate_id")
        payload_type = type(self.payload)
        if not hasattr(payload_type, "event_type"):
            return self
        declared = (payload_type.event_type, payload_type.schema_version)
        if (self.event_type, self.schema_version) != declared:
            raise ValueError(
                f"event_type/schema_version {self.event_type} v{self.schema_version} "
                f"do not match the payload, a {declared[0]} v{declared[1]}"
            )
        if payload_type.requires_aggregate and self.aggregate_version is None:
            raise ValueError(
                f"{self.event_type} needs aggregate_id (the ticket id) and aggregate_version"
            )
        return self

    @classmethod
    def new(
        cls,
        payload: E,
        *,
        tenant_id: str,
        producer: str,
        correlation_id: UUID | None = None,
        causation_id: UUID | None = None,
        aggregate_id: UUID | None = None,
        aggregate_version: int | None = None,
        occurred_at: datetime | None = None,
        event_id: UUID | None = None,
    ) -> EventEnvelope[E]:
        """Wrap a payload; ids default to new UUIDs and occurred_at to now."""
        return envelope_model(type(payload))(
            event_id=event_id or new_id(),
            event_type=payload.event_type,
            schema_version=payload.schema_version,
            occurred_at=occurred_at or datetime.now(UTC),
            tenant_id=tenant_id,
            producer=producer,
            correlation_id=correlation_id or new_id(),
            causation_id=causation_id,
            aggregate_id=aggregate_id,
            aggregate_version=aggregate_version,
            payload=payload,
        )

    def to_json(self) -> bytes:
        """The Kafka message value: this envelope as UTF-8 JSON."""
        # serialize_as_any: serialise the payload as its own class even if this envelope
        # was built unparametrised (as EventEnvelope[Event]).
        return self.model_dump_json(serialize_as_any=True).encode()


@functools.cache
def envelope_model(payload_type: type[E]) -> type[EventEnvelope[E]]:
    """`EventEnvelope[payload_type]` for a payload class known only at run time."""
    # Our own cache: pydantic's parametrisation lookup costs ~13 µs, paid per message.
    return cast("type[EventEnvelope[E]]", EventEnvelope.__class_getitem__(payload_type))


class _Routing(ContractModel):
    event_type: EventTypeName
    schema_version: SchemaVersion


def parse_envelope(data: bytes | str | Mapping[str, Any]) -> EventEnvelope[Event]:
    """Validate a message value, payload included; any problem is a ContractError."""
    if isinstance(data, bytes | bytearray | str):
        try:
            data = from_json(data, allow_inf_nan=False)
        except ValueError as exc:
            raise ContractError(f"invalid JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise ContractError("invalid envelope: expected a JSON object")
    try:
        routing = _Routing.model_validate(data)
    except ValidationError:
        raise _envelope_error(data) from None
    payload_type = event_class(routing.event_type, routing.schema_version)
    context = READING_SEALED if payload_type.personal_fields else None
    try:
        return envelope_model(payload_type).model_validate(data, context=context)
    except ValidationError as exc:
        what = f"{routing.event_type} v{routing.schema_version} envelope"
        raise ContractError.from_validation_error(what, exc) from None


def _envelope_error(data: Mapping[str, Any]) -> ContractError:
    # The routing fields are wrong; report every envelope-level problem, not only those.
    try:
        EventEnvelope[Event].model_validate(data)
    except ValidationError as exc:
        return ContractError.from_validation_error("envelope", exc)
    return ContractError("invalid envelope: bad event_type or schema_version")


def kafka_key(envelope: EventEnvelope[Event]) -> bytes:
    """The Kafka message key: the payload's own key, else the aggregate (ticket) id."""
    key = envelope.payload.partition_key()
    if key is None and envelope.aggregate_id is not None:
        key = str(envelope.aggregate_id)
    if key is None:
        raise ContractError(f"a {envelope.event_type} envelope without aggregate_id has no key")
    return key.encode()


def kafka_headers(envelope: EventEnvelope[Event]) -> list[tuple[str, bytes]]:
    """Kafka headers mirroring the envelope's routing and tracing fields."""
    return headers_of(
        envelope.event_type,
        envelope.schema_version,
        envelope.tenant_id,
        envelope.event_id,
        envelope.correlation_id,
    )


def headers_of(
    event_type: str, schema_version: int, tenant_id: str, event_id: UUID, correlation_id: UUID
) -> list[tuple[str, bytes]]:
    """The same headers from the fields alone (for publishers holding no parsed envelope)."""
    return [
        ("event_type", event_type.encode()),
        ("schema_version", str(schema_version).encode()),
        ("tenant_id", tenant_id.encode()),
        ("event_id", str(event_id).encode()),
        ("correlation_id", str(correlation_id).encode()),
    ]
