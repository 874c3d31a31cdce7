"""Value types shared by the events: enums, people, organisations, tags and custom fields."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from helpdesk_contracts.pii import Sealed


class ContractModel(BaseModel):
    """Base of every contract model: immutable, and unknown fields are ignored."""

    # extra="ignore" makes readers tolerant: adding an optional field is backward compatible.
    model_config = ConfigDict(
        frozen=True, extra="ignore", allow_inf_nan=False, use_attribute_docstrings=True
    )


MAX_TEXT = 65_536  # 64 Ki characters: bodies and descriptions

Identifier = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^\S(?:.*\S)?$")
]
"""An id from some system: 1..200 characters, one line, no surrounding whitespace."""

SystemName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
"""Name of a publishing system, e.g. "webshop" or "billing-eu"."""

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=250)]
Subject = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=250)]
Body = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Description = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]
Phone = Annotated[
    str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()./-]*[0-9][0-9 ()./-]*$")
]
Language = Annotated[
    str, StringConstraints(max_length=35, pattern=r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")
]
"""A BCP 47 language tag such as "de" or "pt-BR"."""


class Priority(StrEnum):
    """How urgent a ticket is."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Channel(StrEnum):
    """Where a ticket or message came from, or where a reply goes."""

    EMAIL = "email"
    WEB = "web"
    CHAT = "chat"
    PHONE = "phone"
    MESSENGER = "messenger"
    SOCIAL = "social"
    API = "api"


class TicketStatus(StrEnum):
    """Where a ticket is in its life cycle."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"


class TicketType(StrEnum):
    """What kind of request a ticket is."""

    QUESTION = "question"
    INCIDENT = "incident"
    PROBLEM = "problem"
    TASK = "task"


class ActorKind(StrEnum):
    """Who did something: an agent, the customer, or a system (then `Actor.id` names it)."""

    AGENT = "agent"
    CUSTOMER = "customer"
    SYSTEM = "system"


class Actor(ContractModel):
    """Who caused an event."""

    kind: ActorKind
    id: Identifier


class Requester(ContractModel):
    """The customer a ticket is for."""

    customer_id: Identifier
    name: Name | Sealed | None = None
    email: Email | Sealed | None = None
    phone: Phone | Sealed | None = None
    preferred_channel: Channel | None = None
    language: Language | None = None


Tier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,50}$")]
"""A service tier, e.g. "standard" or "key_account"."""


class Organisation(ContractModel):
    """The requester's organisation."""

    id: Identifier
    name: Name | None = None
    tier: Tier = "standard"
    """Service tier, e.g. "standard" or "key_account"; readers must accept unknown tiers."""
    account_manager_id: Identifier | None = None
    """The personal account manager of a key account."""


class AttachmentRef(ContractModel):
    """A file uploaded to the ticketing API (`POST /v1/attachments`), referenced by an event:
    the bytes are never in the event; `GET /v1/attachments/{attachment_id}` serves them."""

    attachment_id: UUID
    filename: (
        Annotated[
            str, StringConstraints(min_length=1, max_length=255, pattern=r"^[^/\\\x00-\x1f]+$")
        ]
        | Sealed
    )
    """The name it was uploaded with (no path)."""
    content_type: Annotated[str, StringConstraints(pattern=r"^[a-z0-9.+-]+/[a-z0-9.+-]+$")]
    """The type found in the bytes (not taken from the name), e.g. "image/png"."""
    size: int = Field(ge=1, le=2**40)
    """Bytes."""
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    """Hex SHA-256 of the bytes: readers can check what they download."""


Attachments = Annotated[tuple[AttachmentRef, ...], Field(max_length=20)]


class ExternalRef(ContractModel):
    """A record in another system, e.g. the order a ticket was submitted about."""

    source: SystemName
    external_id: Identifier


def _unique(tags: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tags))


Tag = Annotated[
    str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1, max_length=50)
]
Tags = Annotated[tuple[Tag, ...], Field(max_length=50), AfterValidator(_unique)]
"""Up to 50 tags, stored stripped, lower-case and without duplicates (first one kept)."""

_CUSTOM_FIELD_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
CustomFieldKey = Annotated[str, StringConstraints(pattern=_CUSTOM_FIELD_KEY)]
CustomFieldValue = Annotated[str, StringConstraints(max_length=4096)] | int | float | bool | None
CustomFields = Annotated[
    dict[CustomFieldKey, CustomFieldValue],
    # pydantic emits patternProperties, which alone would let other keys through.
    Field(max_length=100, json_schema_extra={"propertyNames": {"pattern": _CUSTOM_FIELD_KEY}}),
]
"""Up to 100 tenant-defined fields with scalar values."""
