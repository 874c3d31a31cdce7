"""Sealed personal data: a field opens only with its subject's key, in its own place."""

import os

import pytest

from helpdesk_contracts import ContractError
from helpdesk_contracts.pii import associated_data, is_sealed, key_id_of, seal, unseal

pytestmark = pytest.mark.unit

KEY = os.urandom(32)
HERE = associated_data("acme", "cus-1", "payload.requester.email")


def test_a_sealed_field_opens_with_its_key_in_its_place() -> None:
    sealed = seal("мария@example.com", KEY, "k-1", HERE)
    assert is_sealed(sealed)
    assert sealed.startswith("pii:v1:k-1:")
    assert "example" not in sealed
    assert key_id_of(sealed) == "k-1"
    assert unseal(sealed, KEY, HERE) == "мария@example.com"
    assert seal("same", KEY, "k-1", HERE) != seal("same", KEY, "k-1", HERE)  # fresh nonces


@pytest.mark.parametrize(
    "place",
    [
        associated_data("globex", "cus-1", "payload.requester.email"),  # another tenant
        associated_data("acme", "cus-2", "payload.requester.email"),  # another customer
        associated_data("acme", "cus-1", "payload.requester.name"),  # another field
    ],
)
def test_a_sealed_field_moved_elsewhere_does_not_open(place: bytes) -> None:
    with pytest.raises(ContractError, match="does not open"):
        unseal(seal("secret", KEY, "k-1", HERE), KEY, place)


def test_a_destroyed_or_wrong_key_and_altered_bytes_do_not_open() -> None:
    sealed = seal("secret", KEY, "k-1", HERE)
    with pytest.raises(ContractError, match="does not open"):
        unseal(sealed, os.urandom(32), HERE)
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(ContractError, match="does not open"):
        unseal(flipped, KEY, HERE)
    for garbage in ("plain text", "pii:v1:k-1:", "pii:v1:k 1:abcd"):
        assert not is_sealed(garbage)
        with pytest.raises(ContractError, match="not a sealed field"):
            unseal(garbage, KEY, HERE)
    with pytest.raises(ContractError, match="too short"):  # the shape, not the bytes
        unseal("pii:v1:k-1:abcd", KEY, HERE)
    with pytest.raises(ValueError, match="32 bytes"):
        seal("x", b"short", "k-1", HERE)
