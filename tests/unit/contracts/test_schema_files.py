"""The committed schema files are current, and every example matches schema and model."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from helpdesk_contracts import (
    TOPICS,
    ContractError,
    Event,
    Topic,
    Watermark,
    kafka_key,
    parse_envelope,
)
from helpdesk_contracts.schema_files import check, example_path, main, render, schema_path

pytestmark = pytest.mark.unit

CONTRACTS_DIR = Path(__file__).resolve().parents[3] / "contracts"
EVENTS = [(topic, event) for topic in TOPICS.values() for event in topic.event_types]
EVENT_IDS = [event.event_type for _, event in EVENTS]


def _is_rfc3339_date_time(value: object) -> bool:
    # jsonschema only checks date-time with an optional extra; RFC 3339 needs "T" and an offset.
    if not isinstance(value, str):
        return True
    parsed = datetime.fromisoformat(value)
    return "T" in value.upper() and parsed.tzinfo is not None


FORMATS = FormatChecker()
FORMATS.checks("date-time", raises=ValueError)(_is_rfc3339_date_time)


@pytest.fixture
def contracts_dir() -> Path:
    return CONTRACTS_DIR


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def validator(contracts_dir: Path, topic: Topic, event: type[Event]) -> Draft202012Validator:
    schema = load(contracts_dir / schema_path(topic, event))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FORMATS)


def test_committed_schema_files_are_up_to_date(contracts_dir: Path) -> None:
    problems = check(contracts_dir)
    assert not problems, (
        "schema files are out of date; run "
        "`uv run python -m helpdesk_contracts.schema_files write contracts`:\n"
        + "\n".join(problems)
    )


def test_rendering_is_deterministic() -> None:
    assert render() == render()
    for text in render().values():
        assert text.endswith("}\n")
        assert (
            text
            == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        )


def test_every_event_type_has_one_example_and_nothing_else_is_there(contracts_dir: Path) -> None:
    expected = {example_path(topic, event) for topic, event in EVENTS}
    present = {
        path.relative_to(contracts_dir).as_posix()
        for path in (contracts_dir / "examples").rglob("*")
        if path.is_file()
    }
    assert present == expected


@pytest.mark.parametrize(("topic", "event"), EVENTS, ids=EVENT_IDS)
def test_example_matches_the_schema_and_the_model(
    contracts_dir: Path, topic: Topic, event: type[Event]
) -> None:
    raw = (contracts_dir / example_path(topic, event)).read_bytes()
    schema = validator(contracts_dir, topic, event)
    schema.validate(json.loads(raw))
    envelope = parse_envelope(raw)
    assert type(envelope.payload) is event
    if event is Watermark:  # written to each partition directly, without a key
        with pytest.raises(ContractError, match="has no key"):
            kafka_key(envelope)
    else:
        assert kafka_key(envelope)
    # What we publish ourselves matches the published schema too.
    schema.validate(json.loads(envelope.to_json()))


def _opened_example(contracts_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = load(
        contracts_dir / "examples/ticketing.tickets.v2/TicketOpened.v1.json"
    )
    return data


@pytest.mark.parametrize(
    ("change", "path", "message"),
    [
        ({"occurred_at": "2025-03-03T09:14:06"}, "occurred_at", "occurred_at"),
        ({"event_id": "not-a-uuid"}, "event_id", "event_id"),
        ({"event_type": "TicketClosed"}, "event_type", "payload.closed_by: Field required"),
        ({"schema_version": 2}, "schema_version", "unsupported schema_version 2"),
        ({"tenant_id": "North Wind"}, "tenant_id", "tenant_id"),
        ({"aggregate_id": None}, "aggregate_id", "aggregate_version requires aggregate_id"),
        ({"payload": {"custom_fields": {"bad key": 1}}}, "custom_fields", "custom_fields"),
        ({"payload": {"tags": ["x" * 51]}}, "tags", r"payload\.tags\[0\]"),
        ({"payload": {"priority": "asap"}}, "priority", "payload.priority"),
    ],
)
def test_schema_and_model_refuse_the_same_mistakes(
    contracts_dir: Path, change: dict[str, Any], path: str, message: str
) -> None:
    data = _opened_example(contracts_dir)
    envelope_change = {k: v for k, v in change.items() if k != "payload"}
    data = data | envelope_change | {"payload": data["payload"] | change.get("payload", {})}
    topic = TOPICS["ticketing.tickets.v2"]
    errors = list(validator(contracts_dir, topic, topic.event_types[0]).iter_errors(data))
    assert any(path in error.json_path for error in errors), [e.json_path for e in errors]
    with pytest.raises(ContractError, match=message):
        parse_envelope(data)


@pytest.mark.parametrize(("survey", "score"), [("csat", 0), ("csat", 6), ("ces", 8), ("nps", 11)])
def test_the_schema_knows_the_score_range_of_each_survey(
    contracts_dir: Path, survey: str, score: int
) -> None:
    topic = TOPICS["feedback.received.v1"]
    data = load(contracts_dir / example_path(topic, topic.event_types[0]))
    data["payload"] |= {"survey": survey, "score": score}
    assert not validator(contracts_dir, topic, topic.event_types[0]).is_valid(data)
    with pytest.raises(ContractError, match="score"):
        parse_envelope(data)


class TestCommandLine:
    def test_check_lists_missing_differing_and_stale_files(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        shutil.copytree(CONTRACTS_DIR / "schemas", tmp_path / "schemas")
        (tmp_path / "schemas/topics.json").unlink()
        (tmp_path / "schemas/ticketing.intake.v1/TicketSubmitted.v1.schema.json").write_text("{}")
        (tmp_path / "schemas/ticketing.intake.v1/TicketWithdrawn.v1.schema.json").write_text("{}")
        assert main(["check", str(tmp_path)]) == 1
        err = capsys.readouterr().err
        assert "missing: schemas/topics.json" in err
        assert "differs: schemas/ticketing.intake.v1/TicketSubmitted.v1.schema.json" in err
        assert "stale: schemas/ticketing.intake.v1/TicketWithdrawn.v1.schema.json" in err

    def test_write_brings_an_empty_directory_up_to_date(self, tmp_path: Path) -> None:
        assert main(["write", str(tmp_path)]) == 0
        assert check(tmp_path) == []
        assert main(["check", str(tmp_path)]) == 0
