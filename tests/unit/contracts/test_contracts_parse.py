"""parse_envelope: anything that is not a valid envelope is a ContractError, nothing else."""

from __future__ import annotations

import copy
import json
import random
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from helpdesk_contracts import ContractError, TicketOpened, parse_envelope

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[3] / "contracts" / "examples"
OPENED = json.loads((EXAMPLES / "ticketing.tickets.v2" / "TicketOpened.v1.json").read_bytes())


def opened(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(OPENED)
    payload = changes.pop("payload", {})
    result: dict[str, Any] = data | changes | {"payload": data["payload"] | payload}
    return result


def error_of(data: bytes | str | dict[str, Any]) -> ContractError:
    with pytest.raises(ContractError) as info:
        parse_envelope(data)
    return info.value


def test_parses_a_valid_envelope() -> None:
    envelope = parse_envelope(json.dumps(OPENED))
    assert isinstance(envelope.payload, TicketOpened)
    assert envelope.payload.number == 10482


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "invalid JSON"),
        (b"\xff\xfe\x00", "invalid JSON"),
        (b'{"event_type": ', "invalid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (b'"TicketOpened"', "expected a JSON object"),
        (b'{"payload": {"score": NaN}}', "invalid JSON"),
        (b"[" * 10_000, "invalid JSON"),
    ],
)
def test_garbage_is_refused(data: bytes, message: str) -> None:
    assert message in str(error_of(data))


def test_missing_fields_are_all_listed() -> None:
    error = error_of(b'{"event_type": "TicketOpened"}')
    for field in ("schema_version", "event_id", "occurred_at", "tenant_id", "payload"):
        assert f"{field}: Field required" in str(error)
    assert "schema_version: Field required" in error.errors


def test_unknown_event_type_is_named() -> None:
    error = error_of(opened(event_type="TicketExploded"))
    assert "unknown event_type 'TicketExploded'" in str(error)
    assert "TicketOpened" in str(error)  # the known types are listed


def test_unsupported_version_is_named() -> None:
    message = str(error_of(opened(schema_version=7)))
    assert "unsupported schema_version 7 of TicketOpened (supported: 1)" in message


def test_invalid_payload_fields_are_reported_with_their_path() -> None:
    data = opened(payload={"subject": "x" * 251, "priority": "asap"})
    data["payload"]["requester"] = {"customer_id": "cus_1", "email": "not-an-address"}
    message = str(error_of(data))
    assert message.startswith("invalid TicketOpened v1 envelope: ")
    assert "payload.subject: String should have at most 250 characters" in message
    assert "payload.priority: Input should be 'low', 'normal', 'high' or 'urgent'" in message
    assert "payload.requester.email: String should match pattern" in message


def test_list_positions_are_shown_as_indexes() -> None:
    message = str(error_of(opened(payload={"tags": ["ok", "x" * 51]})))
    assert "payload.tags[1]: String should have at most 50 characters" in message


def test_naive_datetime_message_says_how_to_fix_it() -> None:
    message = str(error_of(opened(occurred_at="2025-03-03T09:14:06")))
    assert "occurred_at: a datetime needs a UTC offset, e.g. 2025-03-03T09:30:00Z" in message


def test_datetimes_that_overflow_in_utc_are_refused() -> None:
    message = str(error_of(opened(occurred_at="0001-01-01T00:00:00+05:00")))
    assert "occurred_at: datetime is out of range once converted to UTC" in message


def test_error_summaries_are_capped() -> None:
    data = opened(payload={"tags": [""] * 40})
    error = error_of(data)
    assert len(error.errors) == 40
    assert str(error).endswith("; and 30 more")


def test_non_finite_numbers_are_refused() -> None:
    assert "custom_fields" in str(error_of(opened(payload={"custom_fields": {"x": float("inf")}})))


# A pool of awkward JSON values for the structural fuzzing below.
ODD_VALUES: list[Any] = [
    None,
    True,
    0,
    -1,
    10**30,
    1.5,
    "",
    " ",
    "x" * 300,
    "\x00",
    "2025-13-01T00:00:00Z",
    "9999-12-31T23:59:59-23:59",
    "60cca9ec-18d7-42fc-bee4-3a1afdd863cf",
    [],
    [None],
    {},
    {"kind": "agent"},
]


def _mutate(value: Any, rng: random.Random) -> Any:
    """Replace one randomly chosen node of a JSON tree with an odd value (or delete it)."""
    if isinstance(value, dict) and value and rng.random() < 0.8:
        key = rng.choice(list(value))
        if rng.random() < 0.15:
            return {k: v for k, v in value.items() if k != key}
        return value | {key: _mutate(value[key], rng)}
    if isinstance(value, list) and value and rng.random() < 0.8:
        index = rng.randrange(len(value))
        return [*value[:index], _mutate(value[index], rng), *value[index + 1 :]]
    return rng.choice(ODD_VALUES)


# Every refusal names what is wrong in one of these ways (they end up in dlq-reason headers).
REFUSAL = re.compile(
    r"^(invalid JSON: |invalid envelope: |invalid \w+ v\d+ envelope: "
    r"|unknown event_type |unsupported schema_version )"
)


def _outcome(data: bytes | str | dict[str, Any]) -> str:
    """Whether `data` was "parsed" or "refused"; anything but a ContractError fails the test."""
    try:
        envelope = parse_envelope(data)
    except ContractError as error:
        refusal = str(error)
    else:
        # What was accepted is a valid envelope: published again, it reads back the same.
        assert parse_envelope(envelope.to_json()) == envelope
        return "parsed"
    assert REFUSAL.match(refusal), refusal
    return "refused"


def test_random_bytes_never_raise_anything_else() -> None:
    rng = random.Random(20250303)
    outcomes = Counter(_outcome(rng.randbytes(rng.randrange(64))) for _ in range(3000))
    assert outcomes == {"refused": 3000}


def test_damaged_messages_never_raise_anything_else() -> None:
    rng = random.Random(4711)
    original = json.dumps(OPENED).encode()
    outcomes: Counter[str] = Counter()
    for _ in range(2000):
        damaged = bytearray(original)
        for _ in range(rng.randrange(1, 4)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        if rng.random() < 0.3:
            damaged = damaged[: rng.randrange(len(damaged))]
        outcomes[_outcome(bytes(damaged))] += 1
    # Both paths are exercised: damage inside free text parses, damage elsewhere is refused.
    assert outcomes["parsed"] >= 50
    assert outcomes["refused"] >= 1000


def test_odd_field_values_never_raise_anything_else() -> None:
    rng = random.Random(10482)
    outcomes = Counter(_outcome(_mutate(OPENED, rng)) for _ in range(3000))
    assert outcomes["parsed"] >= 100
    assert outcomes["refused"] >= 1000
