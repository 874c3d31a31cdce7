"""Master keys wrap the subjects' keys; rotation keeps what older versions wrapped."""

import base64
import os

import pytest

from helpdesk_runtime.keyring import KeyRing, KeyRingError, WrappedKey

pytestmark = pytest.mark.unit


def _encoded(key: bytes) -> str:
    return base64.b64encode(key).decode()


def test_a_subject_key_is_stored_wrapped_and_unwraps_only_for_its_subject() -> None:
    ring = KeyRing({1: os.urandom(32)})
    key, wrapped = ring.new_key("acme", "cus-1", "k-1")
    assert len(key) == 32
    assert key not in wrapped.wrapped
    assert ring.unwrap("acme", "cus-1", wrapped) == key
    for tenant, subject in (("globex", "cus-1"), ("acme", "cus-2")):
        with pytest.raises(KeyRingError, match="does not unwrap"):
            ring.unwrap(tenant, subject, wrapped)
    moved = WrappedKey("k-2", wrapped.master_version, wrapped.wrapped)
    with pytest.raises(KeyRingError):
        ring.unwrap("acme", "cus-1", moved)


def test_rotation_wraps_new_keys_with_the_newest_master_and_rewraps_old_ones() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = KeyRing.parse(f"1:{_encoded(old)}")
    key, wrapped = before.new_key("acme", "cus-1", "k-1")
    after = KeyRing.parse(f"1:{_encoded(old)}, 2:{base64.urlsafe_b64encode(new).decode()}")
    assert after.current == 2
    assert after.unwrap("acme", "cus-1", wrapped) == key  # the old version still unwraps
    moved = after.rewrap("acme", "cus-1", wrapped)
    assert moved.master_version == 2
    assert KeyRing({2: new}).unwrap("acme", "cus-1", moved) == key
    with pytest.raises(KeyRingError, match="master key 1 is not configured"):
        KeyRing({2: new}).unwrap("acme", "cus-1", wrapped)


@pytest.mark.parametrize("setting", ["", "1:not-base64!", "0:" + _encoded(bytes(32)), "1:AAAA"])
def test_a_bad_master_key_setting_is_refused_at_once(setting: str) -> None:
    with pytest.raises(KeyRingError):
        KeyRing.parse(setting)
