"""Sealed personal data: how a field of an event carries personal data it may forget.

This is the first step of the privacy work (issue 12): the format and the cipher. No event
carries sealed fields yet; the topics that will are new major versions, announced in the
CHANGELOG when they exist.

A sealed field is a string:

    pii:v1:<key id>:<base64url of nonce (12 bytes) + AES-256-GCM ciphertext and tag>

- The key is the data subject's own (one per tenant and customer), so destroying it erases
  every field sealed with it, wherever the bytes were copied (the event log, Kafka,
  backups), while everything else in the events stays readable.
- The associated data binds a field to its place: `associated_data(tenant, subject, field)`.
  A sealed value moved to another tenant, customer or field does not open.
- A reader without the key (erased, or not entitled) shows `ERASED`.
"""

from __future__ import annotations

import base64
import os
import re

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helpdesk_contracts.errors import ContractError

PREFIX = "pii:v1:"
ERASED = "[erased]"
"""What a field reads as once its subject's key is destroyed."""
KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SEALED = re.compile(r"^pii:v1:([A-Za-z0-9_-]{1,64}):([A-Za-z0-9_-]+)$")


def associated_data(tenant_id: str, subject_id: str, field: str) -> bytes:
    """What a sealed field is bound to: its tenant, its data subject and its field's path
    (e.g. "payload.requester.email")."""
    return "\x1f".join((tenant_id, subject_id, field)).encode()


def seal(plaintext: str, key: bytes, key_id: str, associated: bytes) -> str:
    """The sealed form of `plaintext` under the subject's key (a fresh nonce each time)."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a subject key is {KEY_BYTES} bytes")
    if not _KEY_ID.fullmatch(key_id):
        raise ValueError("a key id is 1..64 letters, digits, '-' or '_'")
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), associated)
    body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode()
    return f"{PREFIX}{key_id}:{body}"


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and _SEALED.fullmatch(value) is not None


def key_id_of(sealed: str) -> str:
    """The id of the key that opens a sealed field."""
    return _parse(sealed)[0]


def unseal(sealed: str, key: bytes, associated: bytes) -> str:
    """The plaintext; ContractError when the value is not sealed, or the key or the place
    is not the one it was sealed with (or the bytes were altered)."""
    _, blob = _parse(sealed)
    try:
        plain = AESGCM(key).decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], associated)
    except (InvalidTag, ValueError) as exc:
        raise ContractError("the sealed field does not open with this key here") from exc
    return plain.decode()


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
