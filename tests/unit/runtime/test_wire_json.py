"""The relay's envelope JSON, assembled as text, is the envelope pydantic would write."""

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

from helpdesk_contracts import Actor, ActorKind, EventEnvelope, parse_envelope
from helpdesk_contracts.ticketing import TicketTagsChanged
from helpdesk_runtime.event_log import wire_json

AGENT = Actor(kind=ActorKind.AGENT, id="a-1")


def _row(envelope: EventEnvelope[Any]) -> dict[str, Any]:
    """What `read_after` returns for this envelope (a Record reads like a mapping)."""
    return {
        "event_id": envelope.event_id, "event_type": envelope.event_type,
        "schema_version": envelope.schema_version, "occurred_at": envelope.occurred_at,
        "tenant_id": envelope.tenant_id, "producer": envelope.producer,
        "correlation_id": envelope.correlation_id, "causation_id": envelope.causation_id,
        "stream_id": envelope.aggregate_id, "version": envelope.aggregate_version,
        "payload": envelope.payload.model_dump_json(),
    }  # fmt: skip


def test_the_wire_json_is_the_envelopes_own() -> None:
    for producer, causation, at in (
        ("ticketing", uuid4(), datetime(2026, 11, 26, 5, 53, 15, 123456, UTC)),
        ('a "quoted" \\ producer — ünïcode', None, datetime(2026, 1, 1, tzinfo=UTC)),
        ("x", None, datetime(2026, 3, 29, 2, 30, tzinfo=timezone(timedelta(hours=3)))),
    ):
        envelope = EventEnvelope.new(
            TicketTagsChanged(previous=[], tags=["vip"], changed_by=AGENT),
            tenant_id="acme", producer=producer, causation_id=causation,
            aggregate_id=uuid4(), aggregate_version=7, occurred_at=at,
        )  # fmt: skip
        wire = wire_json(_row(envelope))  # type: ignore[arg-type]
        # The same fields, and read back the same envelope (occurred_at is "+00:00", not "Z").
        assert json.loads(wire).keys() == json.loads(envelope.to_json()).keys()
        assert parse_envelope(wire) == envelope
