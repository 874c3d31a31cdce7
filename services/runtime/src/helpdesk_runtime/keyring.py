"""Master keys that wrap the data subjects' keys (envelope encryption), with versions.

A subject's key (helpdesk_contracts.pii) is random and stored only wrapped: sealed with
AES-256-GCM under a master key, bound to its tenant, subject and key id. The master keys
come from the environment or a Kubernetes Secret (`PII_MASTER_KEYS="1:<base64>,2:<base64>"`);
the highest version wraps new keys, the older ones still unwrap what they wrapped, and
`rewrap` moves a wrapped key to the current version (rotation without touching a single
event). Part of issue 12: the key store and the keys' distribution come next.
"""

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from helpdesk_contracts.pii import KEY_BYTES

_NONCE = 12


class KeyRingError(Exception):
    """A master key is missing or wrong, or a wrapped key was altered."""


@dataclass(frozen=True)
class WrappedKey:
    key_id: str
    master_version: int
    wrapped: bytes
    """Nonce, then the subject key sealed under the master key."""


class KeyRing:
    def __init__(self, masters: Mapping[int, bytes]) -> None:
        if not masters:
            raise KeyRingError("no master key: set PII_MASTER_KEYS")
        for version, key in masters.items():
            if version < 1 or len(key) != KEY_BYTES:
                raise KeyRingError(f"master key {version}: versions start at 1, keys are 32 bytes")
        self._masters = {version: AESGCM(key) for version, key in masters.items()}
        self.current = max(masters)

    @classmethod
    def parse(cls, setting: str) -> "KeyRing":
        """From "1:<base64>,2:<base64>" (standard or url-safe base64 of 32 bytes)."""
        masters: dict[int, bytes] = {}
        for item in filter(None, (p.strip() for p in setting.split(","))):
            version, _, encoded = item.partition(":")
            try:
                masters[int(version)] = base64.b64decode(
                    encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True
                )
            except ValueError as exc:
                raise KeyRingError(
                    f"PII_MASTER_KEYS: {item[:4]}... is not <version>:<base64>"
                ) from exc
        return cls(masters)

    def new_key(self, tenant_id: str, subject_id: str, key_id: str) -> tuple[bytes, WrappedKey]:
        """A fresh subject key, and its wrapped form to store."""
        key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
        return key, self._wrap(key, tenant_id, subject_id, key_id, self.current)

    def unwrap(self, tenant_id: str, subject_id: str, wrapped: WrappedKey) -> bytes:
        master = self._masters.get(wrapped.master_version)
        if master is None:
            raise KeyRingError(f"master key {wrapped.master_version} is not configured")
        blob = wrapped.wrapped
        try:
            return master.decrypt(
                blob[:_NONCE], blob[_NONCE:], _bound(tenant_id, subject_id, wrapped.key_id)
            )
        except InvalidTag as exc:
            raise KeyRingError(f"key {wrapped.key_id} does not unwrap here") from exc

    def rewrap(self, tenant_id: str, subject_id: str, wrapped: WrappedKey) -> WrappedKey:
        """The same subject key, wrapped under the current master key."""
        if wrapped.master_version == self.current:
            return wrapped
        key = self.unwrap(tenant_id, subject_id, wrapped)
        return self._wrap(key, tenant_id, subject_id, wrapped.key_id, self.current)

    def _wrap(
        self, key: bytes, tenant_id: str, subject_id: str, key_id: str, version: int
    ) -> WrappedKey:
        nonce = os.urandom(_NONCE)
        sealed = self._masters[version].encrypt(nonce, key, _bound(tenant_id, subject_id, key_id))
        return WrappedKey(key_id, version, nonce + sealed)


def _bound(tenant_id: str, subject_id: str, key_id: str) -> bytes:
    return "\x1f".join(("subject-key", tenant_id, subject_id, key_id)).encode()
