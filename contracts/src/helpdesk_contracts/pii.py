"""Sealed personal data: how a field of an event carries personal data it may forget.

Each event type lists its personal fields (`Event.personal_fields`, paths into the payload
such as "requester.email" or "attachments.*.filename"). On the topics that say so
(`Topic.sealed`: `ticketing.tickets.v2`, `ticketing.directory.v1`) and in the producer's
event log, every such field that has a value is sealed; the other fields are plain. A sealed
field is a string:

    pii:v1:<key id>:<base64url of nonce (12 bytes) + AES-256-GCM ciphertext and tag>

- The key is the data subject's own (one per tenant and customer), so destroying it erases
  every field sealed with it, wherever the bytes were copied (the event log, Kafka,
  backups), while everything else in the events stays readable.
- The associated data binds a field to its place: `associated_data(tenant, subject, field)`.
  A sealed value moved to another tenant, customer or field does not open.
- A reader without the key (erased, or not entitled) shows `ERASED`; a producer that has
  lost the key reads the field as `ERASED` too, and that is what it may publish again.
- The plaintext is the field's value as UTF-8 text.
"""

from __future__ import annotations

import base64
import functools
import os
import re
from collections.abc import Callable, MutableMapping
from types import MappingProxyType
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints, ValidationInfo

from helpdesk_contracts.errors import ContractError

PREFIX = "pii:v1:"
ERASED = "[erased]"
"""What a field reads as once its subject's key is destroyed."""
KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEALED = re.compile(r"^pii:v1:([A-Za-z0-9_-]{1,64}):([A-Za-z0-9_-]+)$")

_SEALED_OR_ERASED = r"^(?:pii:v1:[A-Za-z0-9_-]{1,64}:[A-Za-z0-9_-]{38,}|\[erased\])$"
READING_SEALED = MappingProxyType({"reading_sealed": True})
"""The validation context of a stored or published event: there, and only there, a
personal field may be sealed (parse_envelope passes it for event types with personal
fields). Anything else - an API request, an intake message - sends personal data plain."""
SENT_PLAIN = "personal data is sent in plain text, never sealed"


def _only_where_sealed_data_is_read(value: str, info: ValidationInfo) -> str:
    if value != ERASED and not (info.context or {}).get("reading_sealed"):
        raise ValueError(SENT_PLAIN)
    return value


Sealed = Annotated[
    str,
    StringConstraints(pattern=_SEALED_OR_ERASED),
    AfterValidator(_only_where_sealed_data_is_read),
]
"""A personal field as it travels: sealed, or `ERASED`. Personal fields are typed
`<plain type> | Sealed`: the producer holds them plain, readers receive them sealed."""


def associated_data(tenant_id: str, subject_id: str, field: str) -> bytes:
    """What a sealed field is bound to: its tenant, its data subject and its field's path
    (e.g. "payload.requester.email")."""
    return "\x1f".join((tenant_id, subject_id, field)).encode()


class SubjectCipher:
    """One subject's key, ready to seal and open many fields (the cipher is made once)."""

    def __init__(self, key: bytes, key_id: str) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a subject key is {KEY_BYTES} bytes")
        if not _KEY_ID.fullmatch(key_id):
            raise ValueError("a key id is 1..64 letters, digits, '-' or '_'")
        self._aead, self._prefix = AESGCM(key), f"{PREFIX}{key_id}:"

    def seal(self, plaintext: str, associated: bytes) -> str:
        """The sealed form of `plaintext` (a fresh nonce each time)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), associated)
        return self._prefix + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()

    def unseal(self, sealed: str, associated: bytes) -> str:
        """The plaintext; ContractError when the value is not sealed, or the key or the
        place is not the one it was sealed with (or the bytes were altered)."""
        _, blob = _parse(sealed)
        try:
            plain = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated)
        except (InvalidTag, ValueError) as exc:
            raise ContractError("the sealed field does not open with this key here") from exc
        return plain.decode()


def seal(plaintext: str, key: bytes, key_id: str, associated: bytes) -> str:
    """The sealed form of `plaintext` under the subject's key (a fresh nonce each time)."""
    return SubjectCipher(key, key_id).seal(plaintext, associated)


def is_sealed(value: object) -> bool:
    return (
        isinstance(value, str) and value.startswith(PREFIX) and _SEALED.fullmatch(value) is not None
    )


def key_id_of(sealed: str) -> str:
    """The id of the key that opens a sealed field."""
    return _parse(sealed)[0]


def unseal(sealed: str, key: bytes, associated: bytes) -> str:
    """The plaintext; ContractError when the value is not sealed, or the key or the place
    is not the one it was sealed with (or the bytes were altered)."""
    return SubjectCipher(key, key_id_of(sealed)).unseal(sealed, associated)


def _parse(sealed: str) -> tuple[str, bytes]:
    found = _SEALED.fullmatch(sealed)
    if found is None:
        raise ContractError("not a sealed field (pii:v1:<key id>:<base64url>)")
    body = found.group(2)
    try:
        blob = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError as exc:  # binascii.Error: a length no base64 has
        raise ContractError("a sealed field whose body is not base64url") from exc
    if len(blob) < _NONCE_BYTES + 16:
        raise ContractError("a sealed field too short to hold a nonce and a tag")
    return found.group(1), blob


def transform(
    payload: MutableMapping[str, Any], paths: tuple[str, ...], change: Callable[[str, str], str]
) -> None:
    """Replace, in place, each string at one of `paths` ("a.b", "a.*.b" for each item of a
    list) with `change(path, value)`; absent and null fields are left alone."""
    for path, parts in _split(paths):
        if "*" in parts:
            _walk(payload, parts, path, change)
            continue
        node: Any = payload  # a plain path, walked without recursion (most of them)
        for part in parts[:-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and isinstance(value := node.get(parts[-1]), str):
            node[parts[-1]] = change(path, value)


@functools.cache
def _split(paths: tuple[str, ...]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple((path, tuple(path.split("."))) for path in paths)


def _walk(node: Any, parts: tuple[str, ...], path: str, change: Callable[[str, str], str]) -> None:
    head, rest = parts[0], parts[1:]
    if head == "*":
        items = node if isinstance(node, list) else []
        for index, item in enumerate(items):
            if rest:
                _walk(item, rest, path, change)
            elif isinstance(item, str):
                items[index] = change(path, item)
        return
    # dict, not MutableMapping: a JSON document's objects are dicts, and an ABC check
    # cost a fifth of sealing an event.
    if not isinstance(node, dict) or node.get(head) is None:
        return
    if rest:
        _walk(node[head], rest, path, change)
    elif isinstance(node[head], str):
        node[head] = change(path, node[head])


SUBJECT_KEYS_TOPIC = "privacy.subject-keys.v1"
SUBJECT_KEYS_PARTITIONS = 6
"""Where the service that seals a tenant's personal data (ticketing) publishes the subjects'
keys, wrapped by the master key ring, for the services entitled to read personal data:
compacted, keyed by `subject_record_key(tenant, subject)`, the value a `SubjectKeyRecord`
as JSON; a tombstone (null value) when the subject is erased, which compaction then takes
out of Kafka too. Without the master keys (a Kubernetes Secret given only to the entitled
services) a record opens nothing; Kafka ACLs let only those services read the topic."""


class SubjectKeyRecord(BaseModel):
    """A data subject's key as published: wrapped (AES-256-GCM) under master key
    `master_version`, bound to its tenant, subject and key id."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    tenant_id: str
    subject_id: str
    key_id: str
    master_version: int
    wrapped: str
    """Base64url of the nonce and the wrapped key."""


def subject_record_key(tenant_id: str, subject_id: str) -> bytes:
    """The Kafka key of a subject's record: one per tenant and subject, for compaction."""
    return f"{tenant_id}\x1f{subject_id}".encode()
